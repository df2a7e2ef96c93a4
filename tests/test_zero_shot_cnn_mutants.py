"""The zero-shot head's CNN seam, checked with stand-in backbones whose outputs are known.

`ZeroShotHead.cnn_function` must refuse a backbone without a 7-class FER2013 head (messages in
full) and otherwise return the probabilities of `probs_model(preprocess(faces))` as float32;
`has_emotion_head` says whether the backbone ends in exactly 7 classes; `with_emotions` of the
zero-shot head returns the probabilities twice, and for another head the features and
probabilities of a tiny Keras network (one joint graph, or two networks; softmax checked with
numpy). The stand-ins: preprocess halves the pixels, the "network" adds 1, so a face of value v
gives v / 2 + 1, worked out by hand.
"""

import types

import numpy as np
import pytest
import tensorflow as tf

from ast_net import errors, inference_heads


class _Net:
    def __init__(self, classes):
        self.output_shape = (None, classes)

    def __call__(self, x, training):
        assert training is False
        return tf.cast(x, tf.float64) + 1.0


def _backbone(classes):
    return types.SimpleNamespace(
        name="fake", probs_model=None if classes is None else _Net(classes),
        preprocess=lambda faces: tf.cast(faces, tf.float32) / 2.0)


def test_cnn_function_messages_in_full():
    with pytest.raises(errors.UserError) as e:
        inference_heads.ZeroShotHead.cnn_function(_backbone(None))
    assert str(e.value) == (
        "the fake backbone has no FER2013 emotion head, which the zero-shot default needs: use "
        "--backbone=mini_xception, fine-tuned vgg16 weights (ast-net-train-cnn), or an AST-Net "
        "--workdir")
    for classes in (6, 8):
        with pytest.raises(errors.UserError) as e:
            inference_heads.ZeroShotHead.cnn_function(_backbone(classes))
        assert str(e.value) == ("the fake backbone does not output the 7 FER2013 classes the "
                                "zero-shot mapping needs")


def test_cnn_function_is_the_network_on_preprocessed_faces_in_float32():
    probs = inference_heads.ZeroShotHead.cnn_function(_backbone(7))
    faces = np.array([[0, 2], [4, 10]], np.uint8)
    got = probs(faces)
    assert got.dtype == tf.float32
    np.testing.assert_array_equal(got.numpy(), [[1.0, 2.0], [3.0, 6.0]])


def test_has_emotion_head_only_for_seven_classes():
    assert inference_heads.has_emotion_head(_backbone(7)) is True
    assert inference_heads.has_emotion_head(_backbone(6)) is False
    assert inference_heads.has_emotion_head(_backbone(None)) is False


def test_with_emotions_of_the_zero_shot_head_gives_the_probabilities_twice():
    same = inference_heads.with_emotions(inference_heads.ZeroShotHead(), None,
                                         lambda crops: crops * 2)
    outs, emotions = same(np.array([1.0, 3.0]))
    np.testing.assert_array_equal(outs, [2.0, 6.0])
    np.testing.assert_array_equal(emotions, [2.0, 6.0])
    assert isinstance(outs, np.ndarray)


def test_with_emotions_without_an_emotion_head_gives_none():
    fn = inference_heads.with_emotions(object(), _backbone(None), lambda crops: crops + 1)
    outs, emotions = fn(np.array([1.0]))
    np.testing.assert_array_equal(outs, [2.0])
    assert emotions is None and isinstance(outs, np.ndarray)


def _keras_backbone(shared):
    # A 2-pixel "face" x: features relu(x @ [[1, 0], [0, 1]]) = x, probs = softmax(features @ W)
    # with W = 0 except W[0, 0] = 1: the probabilities are worked out with numpy below.
    import keras
    inp = keras.Input((2,))
    feat = keras.layers.Dense(2, activation="relu", kernel_initializer="identity",
                              bias_initializer="zeros")(inp)
    w = np.zeros((2, 7), np.float32)
    w[0, 0] = 1.0
    head = keras.layers.Dense(7, activation="softmax")
    feature_model = keras.Model(inp, feat)
    if shared:
        probs_model = keras.Model(inp, head(feat))
    else:  # a second network with the same weights but no shared graph
        inp2 = keras.Input((2,))
        feat2 = keras.layers.Dense(2, activation="relu", kernel_initializer="identity",
                                   bias_initializer="zeros")(inp2)
        probs_model = keras.Model(inp2, head(feat2))
    head.set_weights([w, np.zeros(7, np.float32)])
    return types.SimpleNamespace(name="fake", feature_model=feature_model,
                                 probs_model=probs_model,
                                 preprocess=lambda faces: tf.cast(faces, tf.float32) / 2.0)


@pytest.mark.parametrize("shared", [True, False])
def test_with_emotions_of_another_head_gives_features_and_probabilities(shared):
    fn = inference_heads.with_emotions(object(), _keras_backbone(shared), None)
    crops = np.array([[2, 4], [6, 0]], np.uint8)
    features, probs = fn(crops)
    x = crops / 2.0  # preprocess; relu(identity) keeps it
    np.testing.assert_allclose(features, x, atol=1e-6)
    logits = np.zeros((2, 7))
    logits[:, 0] = x[:, 0]
    expected = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    assert isinstance(features, np.ndarray) and features.dtype == np.float32
    assert isinstance(probs, np.ndarray) and probs.dtype == np.float32
