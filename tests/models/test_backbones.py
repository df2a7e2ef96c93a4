"""The common Backbone API: names, sizes, preprocess + features agree with an independent
path (OpenCV gray, numpy normalisation), in eager mode and in tf.data; XLA gives the same."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from ast_net import errors
from ast_net.data import fer2013
from ast_net.models import backbones


@pytest.fixture(scope="module")
def mini():
    return backbones.load_backbone("mini_xception")


def test_emotion_order_is_fer2013_and_the_fer_package_order():
    from fer import fer as fer_module

    assert backbones.EMOTIONS == fer2013.LABELS
    assert [e.lower() for e in backbones.EMOTIONS] == list(
        fer_module.FER._get_labels().values())


def test_mini_xception_features_equal_an_independent_preprocessing(mini):
    assert (mini.name, mini.input_size, mini.feature_dim) == ("mini_xception", 64, 128)
    rgb = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    gray = np.stack([cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in rgb]).astype(np.float32)
    x = ((gray / 255.0 - 0.5) * 2.0)[..., None]
    expected = mini.feature_model(x).numpy()
    np.testing.assert_allclose(mini.features(rgb).numpy(), expected, atol=1e-5)
    ds = tf.data.Dataset.from_tensor_slices(rgb).batch(3).map(mini.preprocess)
    np.testing.assert_allclose(mini.feature_model(next(iter(ds))).numpy(), expected, atol=1e-5)
    probs = mini.probs(rgb).numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_faces_of_any_size_are_resized_to_the_input(mini):
    big = np.random.default_rng(1).integers(0, 256, (2, 100, 90, 3), dtype=np.uint8)
    assert mini.preprocess(big).shape == (2, 64, 64, 1)
    assert mini.features(big).shape == (2, 128)
    flat = np.full((1, 150, 150, 3), 200, np.uint8)  # A constant face stays constant.
    np.testing.assert_allclose(mini.preprocess(flat).numpy(), 200 / 127.5 - 1.0, rtol=1e-5)


def test_vgg16_random_weights_and_errors():
    vgg = backbones.load_backbone("vgg16", input_size=32, fc_width=24)
    assert (vgg.name, vgg.input_size, vgg.feature_dim) == ("vgg16", 32, 24)
    # Random faces, not zeros: a zero face gives fc6 = ReLU(bias = 0) = 0 with or without the
    # ReLU. With random weights about half the units are clamped to exactly 0, none negative.
    faces = np.random.default_rng(2).integers(0, 256, (2, 48, 48, 3), dtype=np.uint8)
    assert vgg.preprocess(faces).shape == (2, 32, 32, 3)
    features = vgg.features(faces).numpy()
    assert features.shape == (2, 24) and (features >= 0).all()  # fc6 after its ReLU
    assert (features == 0).any() and (features > 0).any()
    xla = vgg.features_function(jit_compile=True)(faces).numpy()  # Also under XLA.
    np.testing.assert_allclose(xla, features, rtol=1e-4, atol=1e-4)
    with pytest.raises(errors.UserError, match="no FER2013 head"):
        vgg.probs(faces)
    with pytest.raises(errors.UserError, match="unknown backbone 'resnet'"):
        backbones.load_backbone("resnet")
    with pytest.raises(errors.UserError, match="vgg16 backbone only"):
        backbones.load_backbone("mini_xception", input_size=32)
