"""AST-Net's composite loss (paper eq. 1-6, DESIGN section 3) as masked, XLA-safe TF functions.

Every term takes ground truth `g` and prediction `y` shaped `[batch, N, dims]` (dims = 2:
valence, arousal) and an optional mask `[batch, N]` (float, int or bool; > 0 / True = valid).
Squared norms sum over dims and every term is a mean over the clips of the batch:

  label   1/(2N) Σ_i ‖g_i − y_i‖²                          (label = "mse", paper)
          or 1 − CCC, averaged over dims: see below        (label = "ccc")
  trend   Σ_{i=2..N} ‖(g_i − g_{i−1}) − (y_i − y_{i−1})‖² / (2N)   ("2N", the paper's eq. 3)
                                                      or / (2(N−1)) ("2(N-1)")
  local   1/(2M) Σ_k ‖range_k(g) − range_k(y)‖², interval k = clip frames
          [floor(kN/M), floor((k+1)N/M)), range = max − min per dim
  global  ‖range(g) − range(y)‖² over the whole clip (no 1/2)
  siamese 1/(2N) Σ_i ‖ĝ_i − ŷ_i‖², ĝ_i = g^B_i − g^A_i, ŷ_i = y^B_i − y^A_i (twin clips A, B)

Masking: a frame is valid when its mask is > 0 AND all of its ground-truth values are finite
(so NaN-coded unlabelled frames are dropped even without a mask). With every frame valid the
formulas above hold exactly. Otherwise: label and siamese average over the valid frames
(1/(2·n_valid)); trend uses only pairs of consecutive frames that are both valid and divides by
2·P ("2(N-1)") or 2·P·N/(N−1) ("2N"), P = number of such pairs; local takes each range over
the valid frames of its interval, drops intervals with no valid frame and divides by
2·M_valid (so with M > N the empty intervals are dropped too); global takes the range over the
valid frames. A clip with no valid term contributes nothing and the batch mean is over the
clips that have one (0 when no clip has). Values at invalid frames, of y_true and y_pred, NaN
and ±inf included, change neither a loss nor its gradients: both are replaced by 0 with
`tf.where` before any arithmetic, and masked max/min use finite fills strictly below/above the
clip's values, so no inf or NaN is ever formed. Under `tf.distribute` each replica gets the
mean over its own clips (Keras' optimizer then scales by the replica count). Losses are
computed in float32 (float64 when y_pred is float64).

CCC label loss (`ccc_label_loss`, `label = "ccc"`; not in the paper, the usual loss
of ABAW / Aff-Wild2 work): for each output dimension d, Lin's concordance correlation
CCC_d = 2·cov(g, y) / (var(g) + var(y) + (ḡ − ȳ)²) is computed over ALL valid frames of ALL
clips of the batch pooled together (one sequence of up to B·N frames per dimension, population
moments: means, variances and the covariance divide by the number of valid frames n), and the
loss is mean_d (1 − CCC_d), in [0, 2]. Pooling over the batch (not one CCC per clip of N
frames) keeps the statistic defined when a clip's labels are flat, and lets the loss see level
differences between clips. A dimension whose denominator is 0 (g and y the same constant) has
CCC 0 (loss 1, zero gradient); a batch without a valid frame has loss 0. Invalid frames are
masked exactly as above; under `tf.distribute` each replica pools its own clips. In the
composite loss it takes the label term's place for each twin clip and is weighted by
`label_weight`.
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Tuple

import tensorflow as tf

from ast_net import errors

# The terms of the composite loss and the paper's weights (label 1, w1 = w2 = w3 = 10,
# λ = 1000). A new term goes here: every consumer (the Siamese model's metrics, TensorBoard,
# the config's `<term>_weight`, the ablation) iterates over TERMS.
PAPER_WEIGHTS = {"label": 1.0, "trend": 10.0, "local": 10.0, "global": 10.0, "siamese": 1000.0}
TERMS = tuple(PAPER_WEIGHTS)
LABEL_LOSSES = ("mse", "ccc")
TREND_NORMALIZERS = ("2N", "2(N-1)")


def _dtype(y_pred: tf.Tensor) -> tf.DType:
    return tf.float64 if y_pred.dtype == tf.float64 else tf.float32


def _as_valid(mask) -> tf.Tensor:
    mask = tf.convert_to_tensor(mask)
    if mask.dtype == tf.bool:
        return mask
    return tf.cast(mask, tf.float32) > 0.0  # NaN compares False: invalid.


def _prepare(y_true, y_pred, mask) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Returns `(g, y, valid)`: g and y `[B, N, D]` with exact zeros at invalid frames."""
    y_pred = tf.convert_to_tensor(y_pred)
    dtype = _dtype(y_pred)
    y_pred = tf.cast(y_pred, dtype)
    y_true = tf.cast(tf.convert_to_tensor(y_true), dtype)
    valid = tf.reduce_all(tf.math.is_finite(y_true), axis=-1)
    if mask is not None:
        valid = tf.logical_and(valid, _as_valid(mask))
    keep = valid[..., tf.newaxis]
    zeros = tf.zeros_like(y_pred)
    return tf.where(keep, y_true, zeros), tf.where(keep, y_pred, zeros), valid


def _batch_mean(per_clip: tf.Tensor, has_term: tf.Tensor) -> tf.Tensor:
    """Mean of `per_clip` (finite, 0 where no term) over the clips with a term; 0 if none."""
    count = tf.reduce_sum(tf.cast(has_term, per_clip.dtype))
    return tf.math.divide_no_nan(tf.reduce_sum(per_clip), count)


def _count(x: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    return tf.reduce_sum(tf.cast(x, dtype), axis=-1)


def label_loss(y_true, y_pred, mask=None) -> tf.Tensor:
    """1/(2N) Σ_i ‖g_i − y_i‖², batch mean (see the module docstring for masks)."""
    g, y, valid = _prepare(y_true, y_pred, mask)
    sq = tf.reduce_sum(tf.square(g - y), axis=-1)  # [B, N], 0 at invalid frames.
    n = _count(valid, g.dtype)
    return _batch_mean(tf.math.divide_no_nan(tf.reduce_sum(sq, axis=-1), 2.0 * n), n > 0)


def ccc_label_loss(y_true, y_pred, mask=None) -> tf.Tensor:
    """mean_d (1 − CCC_d), CCC over every valid frame of the batch pooled (module docstring)."""
    g, y, valid = _prepare(y_true, y_pred, mask)
    dtype = g.dtype
    w = tf.cast(valid, dtype)[..., tf.newaxis]  # [B, N, 1]
    n = tf.reduce_sum(w)
    mean_g = tf.math.divide_no_nan(tf.reduce_sum(g * w, axis=[0, 1]), n)  # [D]
    mean_y = tf.math.divide_no_nan(tf.reduce_sum(y * w, axis=[0, 1]), n)
    dg, dy = (g - mean_g) * w, (y - mean_y) * w  # 0 at invalid frames.
    var_g = tf.math.divide_no_nan(tf.reduce_sum(tf.square(dg), axis=[0, 1]), n)
    var_y = tf.math.divide_no_nan(tf.reduce_sum(tf.square(dy), axis=[0, 1]), n)
    cov = tf.math.divide_no_nan(tf.reduce_sum(dg * dy, axis=[0, 1]), n)
    ccc = tf.math.divide_no_nan(2.0 * cov, var_g + var_y + tf.square(mean_g - mean_y))
    return tf.where(n > 0, tf.reduce_mean(1.0 - ccc), tf.zeros([], dtype))


def _check_label(label: str) -> str:
    if label not in LABEL_LOSSES:
        raise errors.UserError(f"label: expected one of {LABEL_LOSSES}, got {label!r}")
    return label


def _check_normalizer(normalizer: str) -> None:
    if normalizer not in TREND_NORMALIZERS:
        raise errors.UserError(
            f"trend_normalizer: expected one of {TREND_NORMALIZERS}, got {normalizer!r}")


def trend_loss(y_true, y_pred, mask=None, normalizer: str = "2N") -> tf.Tensor:
    """Σ_{i=2..N} ‖Δg_i − Δy_i‖² / (2N) (paper) or / (2(N−1)) with `normalizer="2(N-1)"`."""
    _check_normalizer(normalizer)
    g, y, valid = _prepare(y_true, y_pred, mask)
    dtype = g.dtype
    diff = (g[:, 1:] - g[:, :-1]) - (y[:, 1:] - y[:, :-1])  # [B, N-1, D]
    pair = tf.logical_and(valid[:, 1:], valid[:, :-1])
    sq = tf.reduce_sum(tf.square(diff), axis=-1) * tf.cast(pair, dtype)
    pairs = _count(pair, dtype)
    total = tf.reduce_sum(sq, axis=-1)
    if normalizer == "2(N-1)":
        per_clip = tf.math.divide_no_nan(total, 2.0 * pairs)
    else:  # 2·P·N/(N−1): equals 2N when every pair is valid.
        n = tf.cast(tf.shape(g)[1], dtype)
        per_clip = tf.math.divide_no_nan(total * (n - 1.0), 2.0 * pairs * n)
    return _batch_mean(per_clip, pairs > 0)


def _masked_range(x: tf.Tensor, sel: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """Per-dim max − min of `x` [B, N, D] over the frames selected by `sel` [B, K, N].

    Returns `(range [B, K, D], has [B, K])`; range is 0 where `has` is False. The fills are
    finite and strictly beyond the clip's values, so there are no ties with them and no inf.
    """
    x = x[:, tf.newaxis]  # [B, 1, N, D]
    s = sel[..., tf.newaxis]  # [B, K, N, 1]
    lo = tf.stop_gradient(tf.reduce_min(x, axis=2, keepdims=True))
    hi = tf.stop_gradient(tf.reduce_max(x, axis=2, keepdims=True))
    low_fill = lo - 1.0 - tf.abs(lo)
    high_fill = hi + 1.0 + tf.abs(hi)
    top = tf.reduce_max(tf.where(s, x, low_fill), axis=2)
    bottom = tf.reduce_min(tf.where(s, x, high_fill), axis=2)
    has = tf.reduce_any(sel, axis=-1)
    return tf.where(has[..., tf.newaxis], top - bottom, tf.zeros_like(top)), has


def _interval_membership(n: tf.Tensor, num_intervals: int) -> tf.Tensor:
    """Bool [M, N]: frame i is in interval k iff floor(kN/M) <= i < floor((k+1)N/M)."""
    k = tf.range(num_intervals, dtype=tf.int32)
    starts = (k * n) // num_intervals
    ends = ((k + 1) * n) // num_intervals
    idx = tf.range(n, dtype=tf.int32)
    return tf.logical_and(idx[tf.newaxis] >= starts[:, tf.newaxis],
                          idx[tf.newaxis] < ends[:, tf.newaxis])


def _check_intervals(num_intervals) -> int:
    if isinstance(num_intervals, bool) or int(num_intervals) != num_intervals or num_intervals < 1:
        raise errors.UserError(
            f"num_intervals: expected a positive integer, got {num_intervals!r}")
    return int(num_intervals)


def local_loss(y_true, y_pred, mask=None, num_intervals: int = 5) -> tf.Tensor:
    """1/(2M) Σ_k ‖range_k(g) − range_k(y)‖² over M = `num_intervals` intervals of the clip."""
    num_intervals = _check_intervals(num_intervals)
    g, y, valid = _prepare(y_true, y_pred, mask)
    member = _interval_membership(tf.shape(g)[1], num_intervals)
    sel = tf.logical_and(member[tf.newaxis], valid[:, tf.newaxis])  # [B, M, N]
    range_g, has = _masked_range(g, sel)
    range_y, _ = _masked_range(y, sel)
    sq = tf.reduce_sum(tf.square(range_g - range_y), axis=-1)  # [B, M], 0 where not has.
    m = _count(has, g.dtype)
    return _batch_mean(tf.math.divide_no_nan(tf.reduce_sum(sq, axis=-1), 2.0 * m), m > 0)


def global_loss(y_true, y_pred, mask=None) -> tf.Tensor:
    """‖range(g) − range(y)‖² over the whole clip (no 1/2), batch mean."""
    g, y, valid = _prepare(y_true, y_pred, mask)
    sel = valid[:, tf.newaxis]  # [B, 1, N]
    range_g, has = _masked_range(g, sel)
    range_y, _ = _masked_range(y, sel)
    sq = tf.reduce_sum(tf.square(range_g - range_y), axis=-1)[:, 0]  # [B]
    return _batch_mean(sq, has[:, 0])


def siamese_loss(y_true_a, y_pred_a, y_true_b, y_pred_b, mask=None) -> tf.Tensor:
    """1/(2N) Σ_i ‖(g^B_i − g^A_i) − (y^B_i − y^A_i)‖²; `mask` is the joint validity of A and B."""
    g_a, y_a, valid_a = _prepare(y_true_a, y_pred_a, mask)
    g_b, y_b, valid_b = _prepare(y_true_b, y_pred_b, mask)
    valid = tf.logical_and(valid_a, valid_b)
    diff = (g_b - g_a) - (y_b - y_a)
    sq = tf.reduce_sum(tf.square(diff), axis=-1) * tf.cast(valid, g_a.dtype)
    n = _count(valid, g_a.dtype)
    return _batch_mean(tf.math.divide_no_nan(tf.reduce_sum(sq, axis=-1), 2.0 * n), n > 0)


def _joint_mask(mask_a, mask_b):
    if mask_a is None:
        return mask_b
    if mask_b is None:
        return mask_a
    return tf.logical_and(_as_valid(mask_a), _as_valid(mask_b))


def _check_weights(weights: Optional[Mapping[str, float]]) -> Dict[str, float]:
    unknown = sorted(set(weights or {}) - set(TERMS))
    if unknown:
        raise errors.UserError(f"weights: unknown loss term {unknown[0]!r}; expected terms "
                               f"among {TERMS}")
    return {t: float((weights or {}).get(t, PAPER_WEIGHTS[t])) for t in TERMS}


def composite_loss(y_true_a, y_pred_a, y_true_b, y_pred_b, mask_a=None, mask_b=None, *,
                   weights: Optional[Mapping[str, float]] = None, num_intervals: int = 5,
                   trend_normalizer: str = "2N",
                   label: str = "mse") -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
    """The paper's eq. 1: Σ_{c ∈ {A, B}} Prediction(c) + λ · Siamese(A, B).

    Prediction(c) = label_weight·label + w1·trend + w2·local + w3·global for twin clip c
    (paper: label weight 1, w1 = w2 = w3 = 10, λ = 1000); label is `label_loss` or, with
    `label="ccc"`, `ccc_label_loss` (batch-pooled); both twin clips get a prediction loss and
    the two are summed (not averaged). The Siamese term uses the joint mask mask_a AND mask_b.
    The keyword defaults are the paper's loss with M = 5 (`ast_net/configs/default.py`, whose
    `config.loss` the Siamese model passes in).

    Args:
      y_true_a, y_pred_a, y_true_b, y_pred_b: `[batch, N, dims]` of twin clips A and B.
      mask_a, mask_b: `[batch, N]` validity of A's and B's frames (None = all valid).
      weights: {term: weight} for terms of TERMS; a missing term has its PAPER_WEIGHTS weight.
        A weight of 0 switches the term off: it is not computed at all.
      num_intervals: M, the local term's intervals per clip.
      trend_normalizer: "2N" (paper) or "2(N-1)".
      label: "mse" (paper) or "ccc".

    Returns:
      `(total, terms)`: `terms` maps each name of TERMS to the unweighted term (prediction
      terms summed over A and B; exactly 0.0 for a switched-off term) and "total" to `total`.
    Raises:
      errors.UserError: an unknown term, label loss or normalizer, or a bad num_intervals.
    """
    weights = _check_weights(weights)
    num_intervals = _check_intervals(num_intervals)
    normalizer = str(trend_normalizer)
    _check_normalizer(normalizer)
    label_fn = ccc_label_loss if _check_label(str(label)) == "ccc" else label_loss

    per_clip = {
        "label": lambda g, y, m: label_fn(g, y, m),
        "trend": lambda g, y, m: trend_loss(g, y, m, normalizer=normalizer),
        "local": lambda g, y, m: local_loss(g, y, m, num_intervals=num_intervals),
        "global": lambda g, y, m: global_loss(g, y, m),
    }
    dtype = _dtype(tf.convert_to_tensor(y_pred_a))
    terms: Dict[str, tf.Tensor] = {}
    total = tf.zeros([], dtype)
    for name in TERMS:
        if weights[name] == 0.0:
            terms[name] = tf.zeros([], dtype)
            continue
        if name == "siamese":
            value = siamese_loss(y_true_a, y_pred_a, y_true_b, y_pred_b,
                                 _joint_mask(mask_a, mask_b))
        else:
            value = (per_clip[name](y_true_a, y_pred_a, mask_a)
                     + per_clip[name](y_true_b, y_pred_b, mask_b))
        terms[name] = value
        total = total + weights[name] * value
    terms["total"] = total
    return total, terms
