"""Small checks of `ast_net.models.siamese` that the wiring and loss tests do not make.

(a) `loss_options` reads the "label" key and falls back to "mse" when the config has none;
the model keeps the config it was given; (b) `aux_scale` is a non-trainable scalar weight named
aux_scale that starts at 1 and is not moved by a training step; (c) `train_step` runs the
temporal net in training mode for both twins, `test_step` and a plain call in inference mode;
(d) the step's loss is divided by the replica count (a stand-in strategy reports 2 replicas, so
no second device is needed). The temporal nets here are tiny and their outputs known by hand.
"""

import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from ast_net.configs import default
from ast_net.models import siamese

B, N, D = 2, 4, 3


class _Scale(keras.layers.Layer):
    """y = w · x[..., :2] with one trainable scalar w (1 at the start); records the `training`
    value of every call (as a bool: None means inference, as in Keras layers)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []
        self.w = self.add_weight(name="w", shape=(), initializer="ones")

    def call(self, x, training=None):
        self.seen.append(bool(training))
        return self.w * x[..., :2]


def _scale_net():
    features = keras.Input(shape=(None, D), name="features")
    layer = _Scale(name="scale")
    net = keras.Model(features, layer(features), name="scale_net")
    layer.seen.clear()  # the symbolic call that built the net
    return net, layer


def _loss_config(**overrides):
    loss = default.get_config().loss
    for k, v in overrides.items():
        loss[k] = v
    return loss


def _ones_batch():
    """Features all 1 and labels all 0 on every frame of both twins: with w = 1 every
    prediction is 1, so the label term is 1 per twin (Σ over N frames and 2 dims of 1², over 2N)
    and all other terms are 0 (constant predictions and labels: no trend, no range, and the
    twins' differences agree)."""
    ones = np.ones((B, N), np.float32)
    return {"features_a": np.ones((B, N, D), np.float32),
            "features_b": np.ones((B, N, D), np.float32),
            "labels_a": np.zeros((B, N, 2), np.float32),
            "labels_b": np.zeros((B, N, 2), np.float32),
            "mask_a": ones, "mask_b": ones}


def test_loss_options_label_key_and_its_mse_default():
    loss = _loss_config().to_dict()
    # Bug: a wrong key ("LABEL") or a fixed default ignores the configured label loss.
    loss["label"] = "ccc"
    assert siamese.loss_options(loss)["label"] == "ccc"
    # Bug: a wrong default ("None", "MSE", ...) breaks configs written before `label` existed.
    del loss["label"]
    opts = siamese.loss_options(loss)
    assert opts["label"] == "mse"
    assert opts["weights"] == {"label": 1.0, "trend": 10.0, "local": 10.0, "global": 10.0,
                               "siamese": 1000.0}
    # The model keeps the config it was built from (bug: the attribute dropped / set to None)
    # and derives its options from it.
    config = _loss_config(label="ccc")
    model = siamese.SiameseTemporalModel(_scale_net()[0], config)
    assert model.loss_config is config
    assert model.loss_options["label"] == "ccc"


def test_aux_scale_is_a_non_trainable_scalar_named_aux_scale():
    net, _ = _scale_net()
    model = siamese.SiameseTemporalModel(net, _loss_config())
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1, momentum=0.0))
    w = model.aux_scale
    # Bug: another or an automatic name ("variable") breaks lookups of the warm-up switch by
    # name and makes it unrecognisable in model.weights / logs.
    assert w.name == "aux_scale"
    assert w.path.endswith("/aux_scale")
    assert tuple(w.shape) == ()
    # Bug: a trainable aux_scale would be moved by any optimizer given the model's trainable
    # weights, turning the warm-up switch into a learned loss scale.
    assert w.trainable is False
    assert all(v is not w for v in model.trainable_weights)
    assert any(v is w for v in model.non_trainable_weights)
    assert float(w.numpy()) == 1.0
    model.train_step(_ones_batch())
    assert float(w.numpy()) == 1.0


def test_train_step_runs_both_twins_in_training_mode_and_test_step_not():
    net, layer = _scale_net()
    model = siamese.SiameseTemporalModel(net, _loss_config())
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1, momentum=0.0))
    # Bug: train_step (or one twin's call in _forward) without training=True would train with
    # dropout / recurrent dropout switched off (no enclosing call sets the mode in a step).
    model.train_step(_ones_batch())
    assert layer.seen == [True, True]
    layer.seen.clear()
    model.fit(tf.data.Dataset.from_tensors(_ones_batch()), steps_per_epoch=1, epochs=1,
              verbose=0, shuffle=False)
    assert layer.seen and all(layer.seen)  # traced in fit's graph: training mode too
    layer.seen.clear()
    model.test_step(_ones_batch())
    assert layer.seen == [False, False]
    layer.seen.clear()
    # Bug: a default of training=True would apply dropout to every plain model(x) call.
    model(_ones_batch()["features_a"])
    assert layer.seen == [False]
    layer.seen.clear()
    # Bug: passing training=None on to the temporal net; an explicit None does not inherit the
    # outer call's mode in Keras 3 (it is "passed"), so model(x, training=True) would infer.
    model(_ones_batch()["features_a"], training=True)
    assert layer.seen == [True]


def test_plain_call_is_inference_with_a_dropout_net():
    """With Dropout(0.5) after the first two features, inference is the identity; training
    mode zeroes about half the values and doubles the others."""
    features = keras.Input(shape=(None, D), name="features")
    va = keras.layers.Lambda(lambda x: x[..., :2], name="first_two")(features)
    net = keras.Model(features, keras.layers.Dropout(0.5, seed=1)(va), name="identity_dropout")
    model = siamese.SiameseTemporalModel(net, _loss_config())
    x = np.ones((B, 16, D), np.float32)
    # Bug: call(training=True) by default would drop values in predictions.
    np.testing.assert_array_equal(np.asarray(model(x)), np.ones((B, 16, 2), np.float32))
    dropped = np.asarray(model(x, training=True))
    assert set(np.unique(dropped)) <= {0.0, 2.0} and (dropped == 0.0).any()


class _TwoReplicaTf:
    """`tf` for the siamese module only, whose default strategy reports 2 replicas in sync."""

    def __init__(self):
        strategy = types.SimpleNamespace(num_replicas_in_sync=2)
        self.distribute = types.SimpleNamespace(get_strategy=lambda: strategy)

    def __getattr__(self, name):
        return getattr(tf, name)


@pytest.mark.parametrize("two_replicas,expected_w", [(False, 0.6), (True, 0.8)])
def test_step_loss_is_divided_by_the_replica_count(monkeypatch, two_replicas, expected_w):
    """Loss = w² per twin (see _ones_batch), 2w² in all, gradient 4w = 4 at w = 1. SGD lr 0.1:
    one replica w = 1 − 0.4 = 0.6; with 2 replicas each replica's gradient is halved (they are
    summed across replicas): w = 1 − 0.2 = 0.8. Bug: multiplying by the replica count instead
    gives 1 − 0.8 = 0.2 and a 2-replica run takes steps 4 times too large."""
    if two_replicas:
        monkeypatch.setattr(siamese, "tf", _TwoReplicaTf())
    net, layer = _scale_net()
    model = siamese.SiameseTemporalModel(net, _loss_config())
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1, momentum=0.0))
    logs = model.train_step(_ones_batch())
    assert float(logs["label"]) == pytest.approx(2.0, rel=1e-6)
    assert float(logs["total"]) == pytest.approx(2.0, rel=1e-6)  # the other terms are 0
    assert float(layer.w.numpy()) == pytest.approx(expected_w, rel=1e-6)
