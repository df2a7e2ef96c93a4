"""The streaming engine: per-track windows, the heads, and the engine on a real video.

Expected windows are worked out by hand; the temporal head is checked against the Keras model
called on each window cut independently from the full feature array (the offline oracle).
"""

import os

import numpy as np
import pytest

from ast_net import errors, inference, inference_heads, sample_media, va_mapping
from ast_net.faces import video
from ast_net.models import backbones, temporal


def test_track_window_by_hand():
    w = inference_heads.TrackWindow(capacity=5, feature_dim=1)  # N = 3, Δt = 2: span 5.
    w.push(10, [10.0])
    np.testing.assert_array_equal(w.window(10, 3, 2)[:, 0], [10])
    w.push(11, [11.0])
    np.testing.assert_array_equal(w.window(11, 3, 2)[:, 0], [11])  # 7, 9 predate the track.
    for i in range(12, 17):
        w.push(i, [float(i)])
    np.testing.assert_array_equal(w.window(16, 3, 2)[:, 0], [12, 14, 16])
    assert w.size == 5  # Only the last (N - 1)Δt + 1 frames are kept.


def test_track_window_with_dropped_frames_holds_the_newest_earlier_frame():
    w = inference_heads.TrackWindow(capacity=5, feature_dim=1)
    for i in (0, 1, 4, 5):  # Frames 2 and 3 were dropped by a live source.
        w.push(i, [float(i)])
    np.testing.assert_array_equal(w.window(5, 3, 2)[:, 0], [1, 1, 5])  # Wanted 1, 3, 5.


@pytest.fixture(scope="module")
def tiny_temporal():
    import keras

    keras.utils.set_random_seed(3)
    return temporal.build_temporal_model(6, lstm_units=(5, 4))


@pytest.mark.parametrize("jit", [False, True])
def test_temporal_head_matches_the_model_on_each_window_offline(tiny_temporal, jit):
    n, step, scale = 4, 3, 0.5
    head = inference_heads.TemporalHead(tiny_temporal, n, step, feature_scale=scale,
                                        jit_compile=jit)
    rng = np.random.default_rng(0)
    feats = {0: rng.normal(size=(40, 6)).astype(np.float32),
             1: rng.normal(size=(40, 6)).astype(np.float32)}
    # Track 0 on every frame; track 1 from frame 5 on. Batches of uneven size.
    frames = [(t, t / 25.0, [0] + ([1] if t >= 5 else []),
               np.stack([feats[0][t]] + ([feats[1][t]] if t >= 5 else []))) for t in range(40)]
    out = []
    for a, b in ((0, 1), (1, 8), (8, 9), (9, 40)):
        out += head.step_batch(frames[a:b])
    for t in (0, 2, 4, 7, 9, 10, 25, 39):
        for k, track in enumerate(frames[t][2]):
            start = 0 if track == 0 else 5
            idx = [i for i in range(t - (n - 1) * step, t + 1, step) if i >= start]
            expected = tiny_temporal(feats[track][idx][None] * scale).numpy()[0, -1]
            np.testing.assert_allclose(out[t][k], expected, atol=1e-5, err_msg=f"t={t}")


def test_temporal_head_forgets_a_track_that_disappears(tiny_temporal):
    head = inference_heads.TemporalHead(tiny_temporal, 4, 1)
    x = np.ones((1, 6), np.float32)
    head.step_batch([(0, 0.0, [0], x), (1, 0.04, [0], x)])
    assert list(head.tracks) == [0]
    head.step_batch([(2, 0.08, [], np.zeros((0, 6), np.float32))])
    assert head.tracks == {}


def test_zero_shot_head_smooths_each_track_on_its_own():
    head = inference_heads.ZeroShotHead(smoothing_s=1.0)
    happy, sad = np.eye(7)[3], np.eye(7)[4]
    out = head.step_batch([(0, 0.0, [0, 1], np.stack([happy, sad])),
                           (1, 1.0, [0, 1], np.stack([sad, sad]))])
    a = 1 - np.exp(-1.0)  # EMA weight of a 1 s step with tau = 1 s.
    h, s = va_mapping.COORDINATES[3], va_mapping.COORDINATES[4]
    np.testing.assert_allclose(out[0], [h, s], atol=1e-6)
    np.testing.assert_allclose(out[1], [h + a * (s - h), s], atol=1e-6)
    # Track 0 vanishes; a new id starts from its own first value.
    out = head.step_batch([(2, 2.0, [2], happy[None])])
    np.testing.assert_allclose(out[0], [h], atol=1e-6)
    assert sorted(head.tracks) == [2]


def test_zero_shot_needs_an_emotion_head():
    vgg = backbones.load_backbone("vgg16", input_size=32, fc_width=16)
    with pytest.raises(errors.UserError, match="no FER2013 emotion head"):
        inference_heads.ZeroShotHead().cnn_function(vgg)


@pytest.fixture(scope="module")
def frames():
    reader = video.iter_frames(sample_media.path("WolfgangLanger_Pexels.mp4"))
    return [f for _, f in zip(range(48), reader)]


@pytest.fixture(scope="module")
def engine():
    return inference.load_engine(None, detect_every=10, refine_every=2, batch_frames=16,
                                 keep_features=True)


def test_engine_threaded_equals_serial_and_batching_does_not_matter(engine, frames):
    engine.batch_frames = 16
    engine.reset()
    threaded = list(engine.run(frames, threaded=True))
    engine.batch_frames = 5
    engine.reset()
    serial = list(engine.run(frames, threaded=False))
    assert [p.index for p in threaded] == list(range(48)) == [p.index for p in serial]
    for a, b in zip(threaded, serial):
        assert [f.track_id for f in a.faces] == [f.track_id for f in b.faces] == [0]
        np.testing.assert_allclose([a.faces[0].valence, a.faces[0].arousal],
                                   [b.faces[0].valence, b.faces[0].arousal], atol=1e-5)
        assert a.timestamp == pytest.approx(a.index / 23.976, rel=1e-3)
    # Box and landmarks refresh on even frames only (refine_every=2); odd frames hold them.
    assert threaded[3].faces[0].box == threaded[2].faces[0].box
    assert threaded[4].faces[0].box != threaded[3].faces[0].box


def test_engine_zero_shot_values_are_the_mapping_of_the_cnn_probabilities(engine, frames):
    engine.reset()
    engine.head.smoothing_s = 0.0
    try:
        preds = list(engine.run(frames[:6], threaded=False))
    finally:
        engine.head.smoothing_s = inference.DEFAULT_SMOOTHING_S
        engine.reset()
    face = preds[-1].faces[0]
    probs = face.feature  # keep_features: the zero-shot CNN output is the 7 probabilities.
    assert probs.shape == (7,) and probs.sum() == pytest.approx(1.0, abs=1e-5)
    expected = probs.astype(np.float64) @ va_mapping.COORDINATES
    np.testing.assert_allclose([face.valence, face.arousal], expected, atol=1e-6)


def test_engine_keeps_frames_without_a_face(engine):
    engine.reset()
    blank = np.zeros((120, 160, 3), np.uint8)
    preds = list(engine.run([(i, i / 10.0, blank) for i in range(3)], threaded=True))
    assert [(p.index, p.face_present) for p in preds] == [(0, False), (1, False), (2, False)]


@pytest.mark.parametrize("threads, intra, inter", [(1, 1, 2), (3, 3, 3)])
def test_tf_threads_keep_an_inter_op_thread_per_tf_calling_stage(threads, intra, inter):
    # A fresh interpreter: TF's pools can only be set before its first op. With one inter-op
    # thread the face stage's O-Net calls queued behind the network stage's CNN batches.
    import subprocess
    import sys

    code = ("import tensorflow as tf\nfrom ast_net import inference\n"
            f"assert inference.set_tf_threads({threads})\n"
            "print(tf.config.threading.get_intra_op_parallelism_threads(),"
            " tf.config.threading.get_inter_op_parallelism_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.stdout.split() == [str(intra), str(inter)]
