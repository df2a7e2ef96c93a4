"""Window merging of `ast_net.windows.predict_video` against plans worked out by hand.

The predict function below reports, for every position of every window it is given, the video
frame the window starts at and the position inside the window, so the output of `predict_video`
says which window (and which position of it) each frame's value came from. The tables were
written by hand from the rule in the module docstring: windows of N frames every N/2 positions
of each phase sequence, the last ending at the end, a frame taking its value from the LAST window
covering it at a position >= N/2 (the first window also gives its first N/2 positions).
"""

import numpy as np
import pytest

from ast_net import windows


def _origin(batch):
    """[B, n, D] features whose column 0 is the frame index -> [B, n, 2] (window start, pos)."""
    batch = np.asarray(batch)
    start = np.repeat(batch[:, :1, 0], batch.shape[1], axis=1)
    pos = np.broadcast_to(np.arange(batch.shape[1], dtype=np.float32), start.shape)
    return np.stack([start, pos], -1)


def _features(num_frames):
    return np.stack([np.arange(num_frames), np.zeros(num_frames)], -1).astype(np.float32)


# 11 frames, N = 4, Δt = 2. Phase 0 = frames 0 2 4 6 8 10: windows [0 2 4 6] (all positions)
# and [4 6 8 10] (positions 2, 3). Phase 1 = frames 1 3 5 7 9: windows [1 3 5 7] (all) and
# [3 5 7 9] (positions 2, 3): frame 7 is position 3 of the first and 2 of the second; the later
# window wins.
PLAN_11_4_2 = {0: (0, 0), 1: (1, 0), 2: (0, 1), 3: (1, 1), 4: (0, 2), 5: (1, 2), 6: (0, 3),
               7: (3, 2), 8: (4, 2), 9: (3, 3), 10: (4, 3)}
# 10 frames, N = 4, Δt = 1: windows start at 0, 2, 4, 6 (stride N/2 = 2).
PLAN_10_4_1 = {0: (0, 0), 1: (0, 1), 2: (0, 2), 3: (0, 3), 4: (2, 2), 5: (2, 3), 6: (4, 2),
               7: (4, 3), 8: (6, 2), 9: (6, 3)}
# 9 frames, N = 5 (half = N // 2 = 2), Δt = 1: starts 0, 2 and the last window 4 (ends at
# frame 8); later windows keep positions 2, 3, 4.
PLAN_9_5_1 = {0: (0, 0), 1: (0, 1), 2: (0, 2), 3: (0, 3), 4: (2, 2), 5: (2, 3), 6: (4, 2),
              7: (4, 3), 8: (4, 4)}
# 7 frames, N = 3 (half = 1), Δt = 1: starts 0, 1, 2, 3, 4; later windows keep positions 1, 2.
PLAN_7_3_1 = {0: (0, 0), 1: (0, 1), 2: (1, 1), 3: (2, 1), 4: (3, 1), 5: (4, 1), 6: (4, 2)}
# 5 frames, N = 4, Δt = 3: phases [0 3], [1 4], [2] are shorter than N: one window each.
PLAN_5_4_3 = {0: (0, 0), 1: (1, 0), 2: (2, 0), 3: (0, 1), 4: (1, 1)}

CASES = [((11, 4, 2), PLAN_11_4_2, 4), ((10, 4, 1), PLAN_10_4_1, 4),
         ((9, 5, 1), PLAN_9_5_1, 3), ((7, 3, 1), PLAN_7_3_1, 5),
         ((5, 4, 3), PLAN_5_4_3, 3)]


@pytest.mark.parametrize("args,table,num_windows", CASES)
@pytest.mark.parametrize("batch_size", [1, 64])
def test_each_frame_comes_from_the_window_and_position_worked_out_by_hand(
        args, table, num_windows, batch_size):
    num_frames, clip_length, frame_step = args
    assert len(windows.plan(num_frames, clip_length, frame_step)) == num_windows
    out = windows.predict_video(_origin, _features(num_frames), clip_length, frame_step,
                                batch_size=batch_size)
    expected = np.array([table[t] for t in range(num_frames)], np.float32)
    np.testing.assert_array_equal(out, expected)


def test_plan_windows_of_two_phases_by_hand():
    got = [(list(idx), list(keep)) for idx, keep in windows.plan(11, 4, 2)]
    assert got == [([0, 2, 4, 6], [0, 1, 2, 3]), ([4, 6, 8, 10], [2, 3]),
                   ([1, 3, 5, 7], [0, 1, 2, 3]), ([3, 5, 7, 9], [2, 3])]
    # A video shorter than Δt has one phase per frame, no empty ones.
    assert [(list(i), list(k)) for i, k in windows.plan(2, 4, 3)] == [([0], [0]), ([1], [0])]
    assert windows.plan(0, 4, 3) == []


def test_empty_video_and_merge_flag():
    assert windows.predict_video(_origin, _features(0), 4, 2).shape == (0, 2)
    # Raw values of frames 0..3 with Δt = 2: merged = mean of the last 2 frames, then clipped
    # to [0, 2.5]: frame 0 (0, 0) -> (0, 0); 1: (1, 0) -> (0.5, 0); 2: (0, 1) -> (0.5, 0.5);
    # 3: (1, 1) -> (0.5, 1); positions as in PLAN_5_4_3-like short phases (N = 4 > length).
    out = windows.predict_video(_origin, _features(4), 4, 2, merge=True, value_range=(0, 2.5))
    np.testing.assert_allclose(out, [[0, 0], [0.5, 0], [0.5, 0.5], [0.5, 1]])
    # No merge, clip only: raw values clipped to [0, 0.5].
    out = windows.predict_video(_origin, _features(4), 4, 2, value_range=(0, 0.5))
    np.testing.assert_allclose(out, [[0, 0], [0.5, 0], [0, 0.5], [0.5, 0.5]])


def test_merge_phases_by_hand():
    v = np.array([[4.0], [0.0], [2.0], [8.0]], np.float32)
    np.testing.assert_allclose(windows.merge_phases(v, 3, None), [[4], [2], [2], [10 / 3]],
                               rtol=1e-6)
    np.testing.assert_allclose(windows.merge_phases(v, 3, (0.0, 3.0)), [[3], [2], [2], [3]])
    np.testing.assert_allclose(windows.merge_phases(v, 0, (1.0, 5.0)), [[4], [1], [2], [5]])
    # Width larger than the video: the mean of everything so far.
    np.testing.assert_allclose(windows.merge_phases(v, 9, None), [[4], [2], [2], [3.5]])


def test_windows_are_batched_in_float32_and_the_output_is_float32():
    calls = []

    def fn(batch):
        calls.append((batch.shape, batch.dtype))
        return _origin(batch)

    feats = _features(10).astype(np.float64)  # 4 windows of N = 4, one length group
    out = windows.predict_video(fn, feats, 4, 1, batch_size=3)
    assert calls == [((3, 4, 2), np.float32), ((1, 4, 2), np.float32)]
    assert out.dtype == np.float32
    assert windows.predict_video(fn, feats[:0], 4, 1).dtype == np.float32


def test_an_empty_label_range_is_an_error():
    from ml_collections import config_dict

    from ast_net import errors

    config = config_dict.ConfigDict({"output": {"merge_phases": False, "label_range": (0.5, 0.5)}})
    with pytest.raises(errors.UserError, match="low < high"):
        windows.output_options(config)
    config.output.label_range = (0.0, 0.5)
    assert windows.output_options(config) == (False, (0.0, 0.5))
