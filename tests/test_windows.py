"""Tests of whole-video prediction from clip windows (ast_net.windows)."""

import numpy as np

from ast_net import windows


def test_plan_by_hand():
    # 7 frames, N = 2, Δt = 3. Phase 0 = frames [0, 3, 6] (L = 3 > N): half = 1, window starts
    # range(0, 3 - 2, 1) = [0] plus the last start 1 -> windows [0, 3] keeping positions 0, 1
    # and [3, 6] keeping position 1 only. Phases 1 = [1, 4] and 2 = [2, 5] have L = N: one
    # window each, all kept.
    plan = windows.plan(7, 2, 3)
    got = [(list(idx), list(keep)) for idx, keep in plan]
    assert got == [([0, 3], [0, 1]), ([3, 6], [1]), ([1, 4], [0, 1]), ([2, 5], [0, 1])]


def test_every_frame_predicted_exactly_once_from_its_own_phase():
    for num_frames, n, step in [(1, 50, 10), (37, 5, 3), (500, 50, 10), (1234, 50, 10)]:
        counts = np.zeros(num_frames, int)
        for idx, keep in windows.plan(num_frames, n, step):
            assert len(idx) <= n
            assert np.all(np.diff(idx) == step)  # a window samples one phase, Δt apart
            counts[idx[keep]] += 1
        # Overwrites are allowed (later windows win), but every frame must be covered.
        assert counts.min() >= 1


def test_predict_video_passthrough_and_history():
    num_frames, n, step, d = 503, 10, 4, 3
    feats = np.random.default_rng(0).normal(size=(num_frames, d)).astype(np.float32)
    # predict_fn echoes the first 2 feature dims: every frame must get its own features back.
    out = windows.predict_video(lambda b: b[..., :2], feats, n, step, batch_size=7)
    np.testing.assert_array_equal(out, feats[:, :2])

    # predict_fn returns the position inside the window (= frames of history seen). A frame at
    # phase position j must have been predicted with at least min(j, N // 2) frames of history.
    def position(batch):
        b, length, _ = batch.shape
        pos = np.broadcast_to(np.arange(length, dtype=np.float32)[None, :, None], (b, length, 2))
        return pos.copy()

    hist = windows.predict_video(position, feats, n, step)[:, 0]
    j = np.arange(num_frames) // step  # position of each frame in its phase sequence
    assert np.all(hist >= np.minimum(j, n // 2))
    assert np.all(hist <= n - 1)
