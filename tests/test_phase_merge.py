"""Tests of the one phase merge (`windows.merge_phases`) and of every path that applies it.

Expected values are worked out by hand in the comments; the TensorFlow mirror, the streaming
head and the SavedModel's per-frame signature are each compared with those hand values or with
the numpy function on the same raw values.
"""

import ml_collections
import numpy as np
import pytest

from ast_net import errors, inference_heads, windows


def _saw_tooth(num_frames):
    # Period Δt = 4: valence 0.5 + (0.1, 0.3, -0.2, 0.0)[t % 4] (pattern mean 0.05),
    # arousal -0.2 + (0.4, 0.0, 0.0, -0.4)[t % 4] (pattern mean 0).
    t = np.arange(num_frames)
    return np.stack([0.5 + np.array([0.1, 0.3, -0.2, 0.0])[t % 4],
                     -0.2 + np.array([0.4, 0.0, 0.0, -0.4])[t % 4]], -1)


def test_saw_tooth_of_period_dt_is_constant_after_the_warm_up():
    out = windows.merge_phases(_saw_tooth(11), 4)
    # Warm-up: frame t < Δt - 1 averages frames 0..t.
    # valence: 0.6, (0.6 + 0.8) / 2 = 0.7, (0.6 + 0.8 + 0.3) / 3 = 0.566667, then 0.55.
    # arousal: 0.2, (0.2 - 0.2) / 2 = 0.0, (0.2 - 0.2 - 0.2) / 3 = -0.066667, then -0.2.
    np.testing.assert_allclose(out[:3], [[0.6, 0.2], [0.7, 0.0], [0.566667, -0.066667]],
                               atol=1e-6)
    np.testing.assert_allclose(out[3:], np.tile([[0.55, -0.2]], (8, 1)), atol=1e-6)
    assert out.dtype == np.float32 and out.shape == (11, 2)


def test_causal_mean_of_a_ramp_lags_by_half_the_width():
    ramp = np.arange(8, dtype=np.float32)[:, None] / 10  # 0.0, 0.1, ..., 0.7
    out = windows.merge_phases(ramp, 3, value_range=None)
    # t >= 2: mean of t-2, t-1, t = (t - 1) / 10; t = 0: 0; t = 1: 0.05.
    np.testing.assert_allclose(out[:, 0], [0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], atol=1e-7)


def test_outputs_are_clipped_to_the_label_range_after_the_mean():
    values = np.array([[1.41, -1.5], [0.2, -1.2], [0.9, 0.3]], np.float32)
    # Clip only (width 1).
    np.testing.assert_allclose(windows.merge_phases(values, 1),
                               [[1.0, -1.0], [0.2, -1.0], [0.9, 0.3]], atol=1e-7)
    # Width 2, mean first: (1.41 + 0.2) / 2 = 0.805 stays; (-1.5 - 1.2) / 2 = -1.35 -> -1.
    np.testing.assert_allclose(windows.merge_phases(values, 2),
                               [[1.0, -1.0], [0.805, -1.0], [0.55, -0.45]], atol=1e-6)
    # Another recorded range, and none at all.
    np.testing.assert_allclose(windows.merge_phases(values, 1, (-2.0, 0.5))[:, 0],
                               [0.5, 0.2, 0.5], atol=1e-7)
    np.testing.assert_array_equal(windows.merge_phases(values, 1, None), values)


def test_leading_batch_axes_and_short_sequences():
    batch = np.stack([_saw_tooth(6), -_saw_tooth(6)])  # [2, 6, 2]
    out = windows.merge_phases(batch, 4)
    np.testing.assert_allclose(out[0, 5], [0.55, -0.2], atol=1e-6)
    np.testing.assert_allclose(out[1, 5], [-0.55, 0.2], atol=1e-6)
    # Δt longer than the video: every frame is a warm-up frame (mean of all frames so far).
    np.testing.assert_allclose(windows.merge_phases(_saw_tooth(2), 10)[:, 0], [0.6, 0.7],
                               atol=1e-6)
    assert windows.merge_phases(np.zeros((0, 2)), 10).shape == (0, 2)


def test_tensorflow_mirror_equals_numpy():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    values = rng.normal(scale=0.8, size=(3, 37, 2)).astype(np.float32)
    for step in (1, 2, 4, 10, 50):
        for value_range in (None, (-1.0, 1.0), (-0.5, 0.25)):
            want = windows.merge_phases(values, step, value_range)
            got = windows.merge_phases_tf(tf.constant(values), step, value_range).numpy()
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-7,
                                       err_msg=f"step {step} range {value_range}")
    assert windows.merge_phases_tf(tf.zeros([2, 0, 2]), 4).shape == (2, 0, 2)
    # Inside a traced function with an unknown number of frames, as in the SavedModel.
    fn = tf.function(lambda v: windows.merge_phases_tf(v, 4),
                     input_signature=[tf.TensorSpec([None, None, 2], tf.float32)])
    np.testing.assert_allclose(fn(tf.constant(_saw_tooth(7)[None], tf.float32)).numpy()[0, 3:],
                               np.tile([[0.55, -0.2]], (4, 1)), atol=1e-6)


def test_output_options_from_a_config():
    old = ml_collections.ConfigDict({"data": {"frame_step": 10}})  # A workdir before `output`.
    assert windows.output_options(old) == (True, (-1.0, 1.0))
    new = ml_collections.ConfigDict({"output": {"merge_phases": False,
                                                "label_range": (-2, 3)}})
    assert windows.output_options(new) == (False, (-2.0, 3.0))
    assert windows.output_options(ml_collections.ConfigDict(
        {"output": {"label_range": None}})) == (True, None)
    for bad in ((1.0, -1.0), (0.0,), "x"):
        with pytest.raises(errors.UserError, match="label_range must be"):
            windows.output_options(ml_collections.ConfigDict({"output": {"label_range": bad}}))


@pytest.fixture(scope="module")
def tiny_temporal():
    import keras

    from ast_net.models import temporal

    keras.utils.set_random_seed(5)
    model = temporal.build_temporal_model(6, lstm_units=(5, 4))
    dense = model.get_layer("valence_arousal")
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel * 12.0, bias + np.array([0.3, -0.3], np.float32)])  # Overshoots.
    return model


def _stream(head, feats, indices):
    frames = [(int(t), t / 25.0, [0], feats[t][None]) for t in indices]
    return np.concatenate(head.step_batch(frames[:3]) + head.step_batch(frames[3:]))


def test_streaming_head_merges_its_own_raw_values(tiny_temporal):
    feats = np.random.default_rng(1).normal(size=(30, 6)).astype(np.float32)
    raw = _stream(inference_heads.TemporalHead(tiny_temporal, 4, 3), feats, range(30))
    merged = _stream(inference_heads.TemporalHead(tiny_temporal, 4, 3, merge=True,
                                                  value_range=(-1.0, 1.0)), feats, range(30))
    assert raw.min() < -1.0 and raw.max() > 1.0  # The overshoot the clipping is for.
    assert np.mean(np.abs(raw) < 1.0) > 0.2      # ... and values inside the range too.
    for t in range(30):  # Mean of the raw values of frames t-2, t-1, t (those that exist).
        want = np.clip(raw[max(0, t - 2):t + 1].mean(0), -1.0, 1.0)
        np.testing.assert_allclose(merged[t], want, atol=1e-6, err_msg=f"frame {t}")


def test_streaming_head_merges_over_frame_indices_when_frames_are_dropped(tiny_temporal):
    feats = np.random.default_rng(2).normal(size=(12, 6)).astype(np.float32)
    seen = [0, 1, 2, 5, 6, 10]  # A live source dropped 3, 4, 7, 8, 9.
    raw = _stream(inference_heads.TemporalHead(tiny_temporal, 4, 3), feats, seen)
    merged = _stream(inference_heads.TemporalHead(tiny_temporal, 4, 3, merge=True,
                                                  value_range=None), feats, seen)
    # Frame 5 averages frames > 2 it has: 5 only; frame 6: 5, 6; frame 10: 10 only.
    np.testing.assert_allclose(merged[3], raw[3], atol=1e-6)
    np.testing.assert_allclose(merged[4], (raw[3] + raw[4]) / 2, atol=1e-6)
    np.testing.assert_allclose(merged[5], raw[5], atol=1e-6)
    np.testing.assert_allclose(merged[2], raw[:3].mean(0), atol=1e-6)


def test_evaluate_path_merges_a_saw_tooth_to_a_constant():
    # predict_fn echoes the first 2 feature dims, and the features are a saw-tooth of period
    # Δt: the raw window values are the saw-tooth itself, the merged ones its constant mean.
    feats = np.concatenate([_saw_tooth(40), np.zeros((40, 1))], 1).astype(np.float32)
    echo = lambda b: b[..., :2]  # noqa: E731
    raw = windows.predict_video(echo, feats, 5, 4)
    np.testing.assert_allclose(raw, _saw_tooth(40), atol=1e-7)
    merged = windows.predict_video(echo, feats, 5, 4, merge=True, value_range=(-1.0, 1.0))
    np.testing.assert_allclose(merged[3:], np.tile([[0.55, -0.2]], (37, 1)), atol=1e-6)


def test_saved_model_video_signature_equals_the_streaming_head(tiny_temporal, tmp_path):
    import tensorflow as tf

    from ast_net import export_lib

    archive = export_lib.build_archive(tiny_temporal, 0.5, None, window=(4, 3))
    archive.write_out(str(tmp_path / "model"), verbose=False)
    served = tf.saved_model.load(str(tmp_path / "model"))
    assert sorted(served.signatures) == ["features", "serving_default", "video_features"]
    rng = np.random.default_rng(3)
    values = []
    for num_frames in (1, 5, 12, 13, 31):  # < N·Δt = 12, equal, one more, many windows.
        feats = rng.normal(scale=2.0, size=(2, num_frames, 6)).astype(np.float32)
        out = served.signatures["video_features"](video_features=tf.constant(feats))
        got = np.stack([out["valence"].numpy(), out["arousal"].numpy()], -1)
        assert got.shape == (2, num_frames, 2)
        values.append(got.ravel())
        for row in range(2):
            head = inference_heads.TemporalHead(tiny_temporal, 4, 3, feature_scale=0.5,
                                                merge=True, value_range=(-1.0, 1.0))
            want = _stream(head, feats[row], range(num_frames))
            np.testing.assert_allclose(got[row], want, atol=1e-5,
                                       err_msg=f"T={num_frames} row {row}")
    values = np.concatenate(values)  # Clipped in the graph (both bounds reached), not after.
    assert values.min() == -1.0 and values.max() == 1.0 and np.mean(np.abs(values) < 1) > 0.2
    # The clip signature clips too (one phase per clip: nothing to merge).
    clip = rng.normal(size=(1, 4, 6)).astype(np.float32)
    out = served.signatures["features"](features=tf.constant(clip))
    want = np.clip(tiny_temporal(clip * 0.5).numpy(), -1.0, 1.0)
    np.testing.assert_allclose(out["valence"].numpy(), want[..., 0], atol=1e-5)
    np.testing.assert_allclose(out["arousal"].numpy(), want[..., 1], atol=1e-5)


def test_evaluate_follows_config_output(tiny_temporal, feature_videos, tmp_path):
    from ast_net import evaluate_lib
    from ast_net.configs import debug

    feats = np.random.default_rng(4).normal(scale=2.0, size=(25, 6)).astype(np.float32)
    path = feature_videos(tmp_path / "test-00000-of-00001.tfrecord",
                          [{"id": "v", "features": feats, "labels": np.zeros((25, 2))}])
    config = debug.get_config()
    config.data.clip_length, config.data.frame_step = 4, 3
    values = {}
    for merge, label_range in ((False, None), (True, (-1.0, 1.0)), (False, (-0.5, 0.5))):
        config.output.merge_phases, config.output.label_range = merge, label_range
        ((_, values[merge, label_range]),) = list(
            evaluate_lib.predict_videos(tiny_temporal, [path], 6, config))
    raw = values[False, None]
    assert raw.min() < -1.0 and raw.max() > 1.0
    for t in (0, 1, 2, 10, 24):  # Mean of frames t-2..t (those >= 0), clipped to [-1, 1].
        np.testing.assert_allclose(values[True, (-1.0, 1.0)][t],
                                   np.clip(raw[max(0, t - 2):t + 1].mean(0), -1, 1), atol=1e-6)
    np.testing.assert_allclose(values[False, (-0.5, 0.5)], np.clip(raw, -0.5, 0.5), atol=1e-7)
