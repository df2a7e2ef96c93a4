"""The Siamese model's wiring, checked with a temporal "network" whose output we know exactly.

The temporal net here is the identity on the first two features (no weights), so a prediction is
whatever the test writes into the features. Then: (a) features equal to each twin's own labels
give every loss term exactly 0, with twin B's labels different from A's, so computing B's
predictions from A's inputs (or pairing a twin with the other twin's labels or mask) cannot pass;
(b) with predictions a known scale of the labels, `total` is the label term alone when
`aux_scale` is 0 (the warm-up), and the whole of eq. 1 (worked out in numpy below, not with
`ast_net.losses`) when it is 1, with `label_weight` applied in both; (c) calling the model on a
batch dict predicts twin A.
"""

import keras
import numpy as np
import pytest

from ast_net.configs import default
from ast_net.models import siamese

B, N, D = 2, 6, 3


def _identity_net():
    features = keras.Input(shape=(None, D), name="features")
    va = keras.layers.Lambda(lambda x: x[..., :2], name="first_two")(features)
    return keras.Model(features, va, name="identity")


def _labels(seed):
    rng = np.random.default_rng(seed)
    return np.tanh(np.cumsum(rng.normal(scale=0.4, size=(B, N, 2)), axis=1)).astype(np.float32)


def _feats(va, seed):
    noise = np.random.default_rng(seed).normal(size=(B, N, 1)).astype(np.float32)
    return np.concatenate([va, noise], -1)


def _batch(pred_a, pred_b, labels_a, labels_b, mask_a=None, mask_b=None):
    ones = np.ones((B, N), np.float32)
    return {"features_a": _feats(pred_a, 1), "features_b": _feats(pred_b, 2),
            "labels_a": labels_a, "labels_b": labels_b,
            "mask_a": ones if mask_a is None else mask_a,
            "mask_b": ones if mask_b is None else mask_b}


def _model(**loss_overrides):
    loss = default.get_config().loss
    for k, v in loss_overrides.items():
        loss[k] = v
    return siamese.SiameseTemporalModel(_identity_net(), loss)


def test_perfect_twin_predictions_give_every_term_zero():
    labels_a, labels_b = _labels(0), _labels(1)
    assert np.abs(labels_a - labels_b).max() > 0.3  # the twins really differ
    model = _model()
    got = model.test_step(_batch(labels_a, labels_b, labels_a, labels_b))
    assert set(got) == set(siamese.TERMS)
    for name in siamese.TERMS:
        assert float(got[name]) == pytest.approx(0.0, abs=1e-6), name


def test_masked_frames_are_those_of_their_own_twin():
    labels_a, labels_b = _labels(2), _labels(3)
    pred_a, pred_b = labels_a.copy(), labels_b.copy()
    mask_a = np.ones((B, N), np.float32)
    mask_b = np.ones((B, N), np.float32)
    pred_a[0, 2] = 9.0  # wrong predictions only where the twin's own mask drops the frame
    mask_a[0, 2] = 0.0
    pred_b[1, 4] = -9.0
    mask_b[1, 4] = 0.0
    got = _model().test_step(_batch(pred_a, pred_b, labels_a, labels_b, mask_a, mask_b))
    for name in siamese.TERMS:
        assert float(got[name]) == pytest.approx(0.0, abs=1e-6), name
    # Swapping the masks exposes both wrong frames.
    got = _model().test_step(_batch(pred_a, pred_b, labels_a, labels_b, mask_b, mask_a))
    assert float(got["label"]) > 1.0


def _np_terms(g, y):
    """Unmasked eq. 2-6 in numpy, batch mean, for one twin: label, trend (2N), local (M=5),
    global."""
    n = g.shape[1]
    label = (((g - y) ** 2).sum(-1).sum(-1) / (2 * n)).mean()
    dg, dy = np.diff(g, axis=1), np.diff(y, axis=1)
    trend = (((dg - dy) ** 2).sum(-1).sum(-1) / (2 * n)).mean()
    bounds = [(k * n) // 5 for k in range(6)]
    local = 0.0
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        rg = g[:, lo:hi].max(1) - g[:, lo:hi].min(1)
        ry = y[:, lo:hi].max(1) - y[:, lo:hi].min(1)
        local = local + ((rg - ry) ** 2).sum(-1)
    local = (local / 10.0).mean()
    glob = (((g.max(1) - g.min(1)) - (y.max(1) - y.min(1))) ** 2).sum(-1).mean()
    return np.array([label, trend, local, glob])


@pytest.mark.parametrize("label_weight", [1.0, 2.0])
def test_warmup_total_is_the_weighted_label_term_and_afterwards_all_of_eq_1(label_weight):
    labels_a, labels_b = _labels(4).astype(np.float64), _labels(5).astype(np.float64)
    pred_a, pred_b = 0.5 * labels_a, 0.25 * labels_b  # every term non-zero
    terms = _np_terms(labels_a, pred_a) + _np_terms(labels_b, pred_b)
    sg = (labels_b - labels_a) - (pred_b - pred_a)
    siam = ((sg ** 2).sum(-1).sum(-1) / (2 * N)).mean()
    label = terms[0]
    full = label_weight * label + 10.0 * terms[1:].sum() + 1000.0 * siam
    assert min(terms.min(), siam) > 1e-3
    batch = _batch(pred_a.astype(np.float32), pred_b.astype(np.float32),
                   labels_a.astype(np.float32), labels_b.astype(np.float32))

    model = _model(label_weight=label_weight)
    model.aux_scale.assign(0.0)  # warm-up
    got = model.test_step(batch)
    assert float(got["label"]) == pytest.approx(label, rel=1e-5)
    assert float(got["total"]) == pytest.approx(label_weight * label, rel=1e-5)

    model = _model(label_weight=label_weight)
    model.aux_scale.assign(1.0)  # after the warm-up
    got = model.test_step(batch)
    assert float(got["total"]) == pytest.approx(full, rel=1e-5)
    assert float(got["siamese"]) == pytest.approx(siam, rel=1e-5)
    assert float(got["trend"]) == pytest.approx(terms[1], rel=1e-5)
    assert float(got["local"]) == pytest.approx(terms[2], rel=1e-5)
    assert float(got["global"]) == pytest.approx(terms[3], rel=1e-5)


def test_new_model_starts_with_the_full_loss_and_call_predicts_twin_a():
    labels_a, labels_b = _labels(6), _labels(7)
    batch = _batch(0.5 * labels_a, labels_b, labels_a, labels_b)
    model = _model()
    assert float(model.aux_scale.numpy()) == 1.0
    assert model.aux_scale.trainable is False
    np.testing.assert_allclose(np.asarray(model(batch)), 0.5 * labels_a, atol=1e-7)
    np.testing.assert_allclose(np.asarray(model(batch["features_b"])), labels_b, atol=1e-7)
    assert sorted(m.name for m in model.metrics) == sorted(f"{t}_loss" for t in siamese.TERMS)


def test_evaluation_runs_the_temporal_net_in_inference_mode():
    """With a Dropout(0.5) after the identity, training mode zeroes about half of the values
    and doubles the rest; evaluation (`test_step`) must see the identity, so perfect twin
    predictions still give every term exactly 0 (and a training-mode call does not)."""
    features = keras.Input(shape=(None, D), name="features")
    va = keras.layers.Lambda(lambda x: x[..., :2], name="first_two")(features)
    net = keras.Model(features, keras.layers.Dropout(0.5, seed=1)(va), name="identity_dropout")
    model = siamese.SiameseTemporalModel(net, default.get_config().loss)
    labels_a, labels_b = _labels(0), _labels(1)
    batch = _batch(labels_a, labels_b, labels_a, labels_b)
    got = model.test_step(batch)
    for name in siamese.TERMS:
        assert float(got[name]) == pytest.approx(0.0, abs=1e-6), name
    dropped = np.asarray(net(batch["features_a"], training=True))
    assert np.abs(dropped - labels_a).max() > 0.1  # Training mode really changes the values.
