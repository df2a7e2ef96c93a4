"""Tests that kill the surviving mutants of ast_net/losses.py (see the mutation report).

Every expected value is worked out by hand (arithmetic in the comments); none is computed by
calling the code under test. All clips are tiny (N <= 6, one output dim) so the file is fast.
Functions are reached as `losses.<name>` so that a patched module attribute is what runs.
"""

import numpy as np
import pytest
import tensorflow as tf

from ast_net import errors, losses

NAN = np.nan


def _only(term, weight=1.0):
    """composite_loss weights with every term switched off except `term`."""
    return {t: (weight if t == term else 0.0) for t in losses.TERMS}


def _z(shape, dtype=np.float32):
    return np.zeros(shape, dtype)


G6 = np.arange(6.0, dtype=np.float32).reshape(1, 6, 1)  # 0 1 2 3 4 5
G5 = np.arange(5.0, dtype=np.float32).reshape(1, 5, 1)  # 0 1 2 3 4


# ---------------------------------------------------------------- dtype (_dtype 1, 2, 3)

def test_float64_predictions_give_float64_loss():
    """float64 predictions must be computed and returned in float64 (_dtype must not force
    float32 or swap the dtypes)."""
    # one frame, (0 - 1)^2 / (2 * 1) = 0.5
    out = losses.label_loss(np.zeros((1, 1, 1)), np.ones((1, 1, 1)))
    assert out.dtype == tf.float64
    np.testing.assert_allclose(out.numpy(), 0.5)


def test_float32_predictions_stay_float32():
    """float32 predictions must stay float32 (_dtype must not always give float64)."""
    out = losses.label_loss(_z((1, 1, 1)), np.ones((1, 1, 1), np.float32))
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), 0.5)


# ------------------------------------------------- one valid frame / pair counts (> 0, not > 1)

def test_label_loss_clip_with_one_valid_frame_counts():
    """A clip with exactly one valid frame has a label term (label_loss 39: n > 1)."""
    # single frame: (0 - 2)^2 / (2 * 1) = 2.0
    out = losses.label_loss(_z((1, 1, 1)), np.full((1, 1, 1), 2.0, np.float32))
    np.testing.assert_allclose(out.numpy(), 2.0, rtol=1e-6)


def test_label_loss_batch_mean_counts_one_frame_clip_not_empty_clip():
    """Batch mean is over clips with >= 1 valid frame: a one-frame clip counts, a fully
    masked clip does not."""
    y = np.array([[[2.0], [0.0]], [[0.0], [0.0]]], np.float32)
    # clip 0: frame 0 only -> 4/2 = 2; clip 1: two frames, 0 -> mean (2 + 0)/2 = 1.0
    out = losses.label_loss(_z((2, 2, 1)), y, mask=np.array([[1, 0], [1, 1]]))
    np.testing.assert_allclose(out.numpy(), 1.0, rtol=1e-6)
    # clip 1 fully masked -> only clip 0 counts -> 2.0
    out = losses.label_loss(_z((2, 2, 1)), y, mask=np.array([[1, 0], [0, 0]]))
    np.testing.assert_allclose(out.numpy(), 2.0, rtol=1e-6)


def test_ccc_loss_single_valid_frame_is_one():
    """A batch with exactly one valid frame has CCC 0, loss 1 (ccc_label_loss 99: n > 1)."""
    # mean_g 0, mean_y 1, var = cov = 0, denominator 0 + 0 + 1 -> CCC 0 -> 1 - 0 = 1
    out = losses.ccc_label_loss(_z((1, 1, 1)), np.ones((1, 1, 1), np.float32))
    np.testing.assert_allclose(out.numpy(), 1.0, rtol=1e-6)


def test_ccc_loss_float64():
    """ccc_label_loss on float64 must work and return float64 (ccc 106: float32 zeros in
    the tf.where would raise)."""
    out = losses.ccc_label_loss(np.zeros((1, 1, 1)), np.ones((1, 1, 1)))
    assert out.dtype == tf.float64
    np.testing.assert_allclose(out.numpy(), 1.0)


@pytest.mark.parametrize("normalizer, expected", [("2N", 0.25), ("2(N-1)", 0.5)])
def test_trend_loss_clip_with_one_valid_pair_counts(normalizer, expected):
    """A clip with exactly one valid pair has a trend term (trend_loss 88: pairs > 1)."""
    # N = 2, one pair, Δg - Δy = 1 - 0 = 1 -> "2N": 1*(2-1)/(2*1*2) = 0.25, "2(N-1)": 1/2
    g = np.array([[[0.0], [1.0]]], np.float32)
    out = losses.trend_loss(g, _z((1, 2, 1)), normalizer=normalizer)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)


# ------------------------------------------------------------- _check_intervals (2, 5, 6)

@pytest.mark.parametrize("bad", [2.5, True])
def test_local_loss_rejects_non_integer_or_bool_intervals(bad):
    """num_intervals must be a positive integer, not a float or a bool (_check_intervals 2)."""
    with pytest.raises(errors.UserError, match="num_intervals"):
        losses.local_loss(G6, _z((1, 6, 1)), num_intervals=bad)
    with pytest.raises(errors.UserError, match="num_intervals"):
        losses.composite_loss(G6, _z((1, 6, 1)), G6, _z((1, 6, 1)), num_intervals=bad)


def test_local_loss_accepts_one_interval():
    """M = 1 is a valid number of intervals (_check_intervals 5, 6 reject it)."""
    # one interval = whole clip, range(g) = 4 - 0 = 4, range(y) = 0 -> 16 / (2 * 1) = 8.0
    out = losses.local_loss(G5, _z((1, 5, 1)), num_intervals=1)
    np.testing.assert_allclose(out.numpy(), 8.0, rtol=1e-6)


# ------------------------------------------------------------------ default M = 5

def test_local_loss_default_five_intervals():
    """local_loss's default M is 5 (local_loss 1: default 6)."""
    # N = 6, M = 5: intervals [0,1) [1,2) [2,3) [3,4) [4,6); only the last has range 1
    # -> 1^2 / (2 * 5) = 0.1  (M = 6 would give 0)
    out = losses.local_loss(G6, _z((1, 6, 1)))
    np.testing.assert_allclose(out.numpy(), 0.1, rtol=1e-6)


def test_composite_loss_default_five_intervals():
    """composite_loss's default M is 5 (composite_loss 1: default 6)."""
    # clip A as in local_loss above = 0.1, clip B all zeros = 0 -> 0.1
    _, terms = losses.composite_loss(G6, _z((1, 6, 1)), _z((1, 6, 1)), _z((1, 6, 1)),
                                     weights=_only("local"))
    np.testing.assert_allclose(terms["local"].numpy(), 0.1, rtol=1e-6)


# ---------------------------------------------------------------- composite pass-through

def test_composite_loss_passes_trend_normalizer():
    """composite_loss must pass trend_normalizer to the trend term (composite 41)."""
    # clip A: 4 pairs, each Δg - Δy = 1 -> total 4; "2(N-1)": 4/(2*4) = 0.5 ("2N" gives 0.4)
    _, terms = losses.composite_loss(G5, _z((1, 5, 1)), _z((1, 5, 1)), _z((1, 5, 1)),
                                     weights=_only("trend"), trend_normalizer="2(N-1)")
    np.testing.assert_allclose(terms["trend"].numpy(), 0.5, rtol=1e-6)


@pytest.mark.parametrize("masked_pred", [0.0, NAN])
def test_composite_loss_local_term_uses_mask_a(masked_pred):
    """The local term must honour mask_a even when the masked frame's label is finite
    (composite 47, 51: mask dropped)."""
    y = _z((1, 5, 1))
    y[0, 2, 0] = masked_pred
    # N = 5, M = 2: intervals [0,2) and [2,5); frame 2 masked.
    # [0,2): g 0,1 -> range 1; [2,5) valid 3,4 -> range 1 -> (1 + 1)/(2 * 2) = 0.5
    # (unmasked: ranges 1, 2 -> 5/4 = 1.25, or NaN with a NaN prediction)
    _, terms = losses.composite_loss(G5, y, _z((1, 5, 1)), _z((1, 5, 1)),
                                     mask_a=np.array([[1, 1, 0, 1, 1]]),
                                     weights=_only("local"), num_intervals=2)
    np.testing.assert_allclose(terms["local"].numpy(), 0.5, rtol=1e-6)


def test_composite_loss_float64_total_and_terms():
    """float64 inputs give a float64 total and float64 switched-off terms
    (composite 70, 77: float32 zeros)."""
    z, o = np.zeros((1, 2, 1)), np.ones((1, 2, 1))
    # label: each clip (1 + 1)/(2 * 2) = 0.5, A + B = 1.0; trend/local/global/siamese 0
    total, terms = losses.composite_loss(z, o, z, o)
    assert total.dtype == tf.float64
    np.testing.assert_allclose(total.numpy(), 1.0)
    total, terms = losses.composite_loss(z, o, z, o, weights={"local": 0.0})
    assert terms["local"].dtype == tf.float64
    assert total.dtype == tf.float64
    np.testing.assert_allclose(terms["local"].numpy(), 0.0)
    np.testing.assert_allclose(total.numpy(), 1.0)


# ------------------------------------------------------------------------ siamese masking

def test_siamese_mask_hides_garbage_prediction_of_a():
    """A masked frame with a finite label but a NaN y_pred_a must not leak (siamese 4)."""
    y_pred_a = np.array([[[0.0], [NAN]]], np.float32)
    g_b = np.array([[[1.0], [0.0]]], np.float32)
    # frame 0 only: (1 - 0) - (0 - 0) = 1 -> 1/(2 * 1) = 0.5
    out = losses.siamese_loss(_z((1, 2, 1)), y_pred_a, g_b, _z((1, 2, 1)),
                              mask=np.array([[1, 0]]))
    np.testing.assert_allclose(out.numpy(), 0.5, rtol=1e-6)


def test_siamese_mask_hides_garbage_prediction_of_b():
    """A masked frame with a finite label but a NaN y_pred_b must not leak (siamese 11)."""
    y_pred_b = np.array([[[0.0], [NAN]]], np.float32)
    g_b = np.array([[[1.0], [0.0]]], np.float32)
    out = losses.siamese_loss(_z((1, 2, 1)), _z((1, 2, 1)), g_b, y_pred_b,
                              mask=np.array([[1, 0]]))
    np.testing.assert_allclose(out.numpy(), 0.5, rtol=1e-6)


def test_siamese_fully_masked_clip_not_in_batch_mean():
    """A clip with no valid frame must not enter the batch mean (siamese 58: n >= 0)."""
    g_b = np.array([[[1.0]], [[0.0]]], np.float32)
    # clip 0: 1/(2 * 1) = 0.5; clip 1 masked -> mean over clip 0 only = 0.5 (not 0.25)
    out = losses.siamese_loss(_z((2, 1, 1)), _z((2, 1, 1)), g_b, _z((2, 1, 1)),
                              mask=np.array([[1], [0]]))
    np.testing.assert_allclose(out.numpy(), 0.5, rtol=1e-6)


# ------------------------------------------------- joint mask (_joint_mask 1, 2; composite 93, 94)

# Siamese-only setup: ĝ = g_b - g_a = [1, 3], ŷ = 0 -> per-frame squares [1, 9].
GBB = np.array([[[1.0], [3.0]]], np.float32)


def _siamese_term(mask_a, mask_b):
    za = _z((1, 2, 1))
    _, terms = losses.composite_loss(za, za, GBB, za, mask_a, mask_b, weights=_only("siamese"))
    return terms["siamese"].numpy()


@pytest.mark.parametrize("mask_a, mask_b, expected", [
    # AND of [1,0] and [0,1] is empty -> 0 (mask_b alone: 9/2; mask_a alone: 1/2)
    ([[1, 0]], [[0, 1]], 0.0),
    # AND = frame 0 -> 1/(2 * 1) = 0.5 (ignoring mask_a: (1 + 9)/(2 * 2) = 2.5)
    ([[1, 0]], [[1, 1]], 0.5),
    # AND = frame 0 -> 0.5 (ignoring mask_b: 2.5)
    ([[1, 1]], [[1, 0]], 0.5),
    # one mask None: the other one alone
    (None, [[0, 1]], 4.5),
    ([[1, 0]], None, 0.5),
    (None, None, 2.5),
])
def test_composite_siamese_uses_joint_mask(mask_a, mask_b, expected):
    """The Siamese term uses mask_a AND mask_b, or the one given when the other is None."""
    as_np = lambda m: None if m is None else np.array(m)
    out = _siamese_term(as_np(mask_a), as_np(mask_b))
    np.testing.assert_allclose(out, expected, rtol=1e-6)


# ------------------------------------------------------------- _check_weights (1, 8)

def test_composite_loss_rejects_unknown_weight_term():
    """An unknown weight term raises UserError naming it (_check_weights 1: ignored; 8:
    IndexError)."""
    za = _z((1, 2, 1))
    with pytest.raises(errors.UserError, match="unknown loss term 'foo'"):
        losses.composite_loss(za, za, za, za, weights={"foo": 1.0})


def test_composite_loss_unknown_terms_names_first_sorted():
    """With several unknown terms the message names the first in sorted order."""
    za = _z((1, 2, 1))
    with pytest.raises(errors.UserError, match="unknown loss term 'a'"):
        losses.composite_loss(za, za, za, za, weights={"b": 1.0, "a": 1.0, "label": 1.0})
