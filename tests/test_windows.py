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
        # Every frame is kept by one window, or by two where the end-aligned last window (or,
        # for odd N, the next window) takes over; the later one wins.
        assert counts.min() == 1 and counts.max() <= 2
        # The one value each frame ends up with: a predict_fn that returns, at each position,
        # (window's first frame, position) shows the frame is its own window entry,
        # frame = start + position * Δt, at a position >= N // 2 unless at its phase start.
        feats = np.stack([np.arange(num_frames), np.zeros(num_frames)], -1).astype(np.float32)

        def origin(batch):
            start = np.repeat(batch[:, :1, 0], batch.shape[1], axis=1)
            pos = np.broadcast_to(np.arange(batch.shape[1], dtype=np.float32), start.shape)
            return np.stack([start, pos], -1)

        out = windows.predict_video(origin, feats, n, step)
        start, pos = out[:, 0].astype(int), out[:, 1].astype(int)
        frames = np.arange(num_frames)
        np.testing.assert_array_equal(start + pos * step, frames)
        assert np.all((pos >= n // 2) | (start < step))


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


def test_predict_video_merges_phases_and_clips_when_asked():
    # Δt = 2, N = 3, 8 frames; predict_fn returns each window's first feature dim as both
    # outputs. Even frames carry 1.3 + t/100, odd frames -0.3: the raw values are a saw-tooth.
    feats = np.array([[1.3 + t / 100 if t % 2 == 0 else -0.3] for t in range(8)], np.float32)
    echo = lambda b: np.repeat(b, 2, axis=-1)  # noqa: E731
    raw = windows.predict_video(echo, feats, 3, 2)
    np.testing.assert_allclose(raw[:, 0], feats[:, 0], atol=1e-7)
    clipped = windows.predict_video(echo, feats, 3, 2, value_range=(-1.0, 1.0))
    np.testing.assert_allclose(clipped[:, 0], [1, -0.3, 1, -0.3, 1, -0.3, 1, -0.3], atol=1e-7)
    merged = windows.predict_video(echo, feats, 3, 2, merge=True, value_range=(-1.0, 1.0))
    # Frame 0: 1.3 -> clipped to 1; frame t >= 1: (even value + -0.3) / 2, e.g. frame 1:
    # (1.3 - 0.3) / 2 = 0.5, frame 2: (1.32 - 0.3) / 2 = 0.51, frame 7: (1.36 - 0.3) / 2 = 0.53.
    np.testing.assert_allclose(merged[:, 0], [1.0, 0.5, 0.51, 0.51, 0.52, 0.52, 0.53, 0.53],
                               atol=1e-6)
    np.testing.assert_array_equal(merged[:, 0], merged[:, 1])


def test_streaming_equivalent_by_hand():
    # T = 7, N = 4, Δt = 1: one phase, windows start at 0 (frames 0-3), 2 (keeps 4, 5) and 3
    # (keeps 5, 6; overwrites 5). Frames 4 and 5 come from windows starting at 2 and 3, while the
    # streaming head's windows for them start at 4 - 3 = 1 and 5 - 3 = 2: they differ. Frame 6:
    # both start at 3.
    np.testing.assert_array_equal(windows.streaming_equivalent(7, 4, 1),
                                  [1, 1, 1, 1, 0, 0, 1])
    # Merged over 2 frames, frame 6 also needs frame 5.
    np.testing.assert_array_equal(windows.streaming_equivalent(7, 4, 1, merge_width=2),
                                  [1, 1, 1, 1, 0, 0, 0])


def test_streaming_equivalent_matches_where_the_windows_start():
    # predict_fn returns each window's first feature (= the frame index where it starts), so
    # predict_video's value of a frame is the start of its window; the streaming head's window
    # for frame t starts at max(t % Δt, t - (N - 1)Δt).
    for num_frames, n, step in [(7, 4, 1), (37, 5, 3), (150, 8, 2), (20, 50, 10)]:
        feats = np.arange(num_frames, dtype=np.float32)[:, None]
        start = windows.predict_video(
            lambda b: np.repeat(np.repeat(b[:, :1], b.shape[1], 1), 2, -1), feats, n, step)
        t = np.arange(num_frames)
        streaming = np.maximum(t % step, t - (n - 1) * step)
        np.testing.assert_array_equal(windows.streaming_equivalent(num_frames, n, step),
                                      start[:, 0] == streaming)
