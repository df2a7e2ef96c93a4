"""Tests of ast_net.losses against numbers worked out by hand (arithmetic in the comments).

Shared example: batch of 2 clips, N = 4 frames, dims = (valence, arousal).
  clip 0: g0 = [0,0] [1,2] [2,2] [4,0]      y0 = [1,0] [1,1] [3,2] [3,2]
  clip 1: g1 = [0,1] [0,1] [0,1] [0,1]      y1 = [1,1] [0,0] [1,1] [0,1]
Twin clips B (for the Siamese term):
  clip 0: gB0 = [1,0] [1,2] [2,3] [4,0]     yB0 = [1,1] [1,1] [3,2] [2,2]
  clip 1: gB1 = g1                          yB1 = [1,1] [0,0] [1,1] [2,1]
Masked frames carry NaN ground truth and 1e30 predictions: if either leaked, the loss or a
gradient would be inf/NaN or wildly off.
"""

import numpy as np
import pytest
import tensorflow as tf

from ast_net import errors, losses

G_A = np.array([[[0, 0], [1, 2], [2, 2], [4, 0]], [[0, 1]] * 4], np.float32)
Y_A = np.array([[[1, 0], [1, 1], [3, 2], [3, 2]], [[1, 1], [0, 0], [1, 1], [0, 1]]], np.float32)
G_B = np.array([[[1, 0], [1, 2], [2, 3], [4, 0]], [[0, 1]] * 4], np.float32)
Y_B = np.array([[[1, 1], [1, 1], [3, 2], [2, 2]], [[1, 1], [0, 0], [1, 1], [2, 1]]], np.float32)
HUGE = 1e30


def _config(**overrides):
    """`composite_loss` keyword arguments: the paper's weights with M = 2, `<term>_weight`,
    num_intervals, trend_normalizer or label overridden."""
    config = dict(label_weight=1.0, trend_weight=10.0, local_weight=10.0, global_weight=10.0,
                  siamese_weight=1000.0, num_intervals=2, trend_normalizer="2N")
    config.update(overrides)
    return dict(config, weights={t: config.pop(f"{t}_weight") for t in losses.TERMS})


def test_label_loss():
    # clip 0: g-y = [-1,0] [0,1] [-1,0] [1,-2] -> 1+1+1+5 = 8 -> 8/(2*4) = 1.0
    # clip 1: g-y = [-1,0] [0,1] [-1,0] [0,0]  -> 1+1+1+0 = 3 -> 3/8 = 0.375
    # batch mean (1 + 0.375)/2 = 0.6875
    assert losses.label_loss(G_A, Y_A).numpy() == pytest.approx(0.6875)


def test_trend_loss_both_normalizers():
    # clip 0: dg = [1,2] [1,0] [2,-2]; dy = [0,1] [2,1] [0,0]; dg-dy = [1,1] [-1,-1] [2,-2]
    #   -> 2+2+8 = 12 -> 12/(2*4) = 1.5 ("2N"), 12/(2*3) = 2 ("2(N-1)")
    # clip 1: dg = 0; dy = [-1,-1] [1,1] [-1,0] -> 2+2+1 = 5 -> 5/8 = 0.625, 5/6
    assert losses.trend_loss(G_A, Y_A).numpy() == pytest.approx((1.5 + 0.625) / 2)  # 1.0625
    assert losses.trend_loss(G_A, Y_A, normalizer="2(N-1)").numpy() == pytest.approx(
        (2 + 5 / 6) / 2)  # 17/12
    with pytest.raises(errors.UserError, match="trend_normalizer"):
        losses.trend_loss(G_A, Y_A, normalizer="N")


def test_local_loss():
    # M = 2, intervals [0,2) [2,4).
    # clip 0: k0: range g = [1,2], range y = [0,1] -> [1,1] -> 2
    #         k1: range g = [2,2], range y = [0,0] -> [2,2] -> 8;  (2+8)/(2*2) = 2.5
    # clip 1: g constant (ranges 0); k0: range y = [1,1] -> 2; k1: range y = [1,0] -> 1
    #         (2+1)/4 = 0.75
    # batch mean (2.5 + 0.75)/2 = 1.625
    assert losses.local_loss(G_A, Y_A, num_intervals=2).numpy() == pytest.approx(1.625)


def test_local_loss_n_not_divisible_by_m():
    # N = 4, M = 3: starts floor(0*4/3)=0, floor(4/3)=1, floor(8/3)=2 -> [0,1) [1,2) [2,4).
    # One-frame intervals have range 0 in g and y; only k2 (frames 2,3) counts:
    # clip 0: 8 -> 8/(2*3) = 4/3; clip 1: 1 -> 1/6; mean (4/3 + 1/6)/2 = 0.75
    assert losses.local_loss(G_A, Y_A, num_intervals=3).numpy() == pytest.approx(0.75)
    # N = 7, M = 3: [0,2) [2,4) [4,7). 1-dim g = 0, y = 0 1 | 0 3 | 0 0 5:
    # ranges 1, 3, 5 -> (1+9+25)/(2*3) = 35/6
    y7 = np.array([[[0], [1], [0], [3], [0], [0], [5]]], np.float32)
    assert losses.local_loss(np.zeros_like(y7), y7, num_intervals=3).numpy() == pytest.approx(
        35 / 6)
    with pytest.raises(errors.UserError, match="num_intervals"):
        losses.local_loss(G_A, Y_A, num_intervals=0)


def test_global_loss():
    # clip 0: range g = [4-0, 2-0] = [4,2]; range y = [3-1, 2-0] = [2,2] -> [2,0] -> 4
    # clip 1: range g = [0,0]; range y = [1,1] -> 2;  mean (4+2)/2 = 3 (no 1/2)
    assert losses.global_loss(G_A, Y_A).numpy() == pytest.approx(3.0)


def test_siamese_loss():
    # clip 0: ĝ = gB-gA = [1,0] [0,0] [0,1] [0,0]; ŷ = yB-yA = [0,1] [0,0] [0,0] [-1,0]
    #   ĝ-ŷ = [1,-1] [0,0] [0,1] [1,0] -> 2+0+1+1 = 4 -> 4/(2*4) = 0.5
    # clip 1: ĝ = 0; ŷ = [0,0] [0,0] [0,0] [2,0] -> 4 -> 0.5;  mean 0.5
    assert losses.siamese_loss(G_A, Y_A, G_B, Y_B).numpy() == pytest.approx(0.5)


# Unweighted terms of clips A (above) and B, worked out the same way:
# B clip 0: label g-y = [0,-1] [0,1] [-1,1] [2,-2] -> 12/8 = 1.5
#           trend dg-dy = [0,2] [-1,0] [3,-3] -> 23/8 = 2.875
#           local k0 [0,2]-[0,0] -> 4, k1 [2,3]-[1,0] -> 10 -> 14/4 = 3.5
#           global [3,3]-[2,1] -> 1+4 = 5
# B clip 1: label 1+1+1+4 = 7/8 = 0.875; trend dy = [-1,-1] [1,1] [1,0] -> 5/8 = 0.625
#           local 2 + 1 -> 3/4 = 0.75; global y range [2,1] -> 5
# B means: label 1.1875, trend 1.75, local 2.125, global 5
# Sums over A and B: label 1.875, trend 2.8125, local 3.75, global 8; siamese 0.5
TERMS = {"label": 1.875, "trend": 2.8125, "local": 3.75, "global": 8.0, "siamese": 0.5}


def test_composite_paper_weights():
    total, terms = losses.composite_loss(G_A, Y_A, G_B, Y_B, **_config())
    # 1.875 + 10*(2.8125 + 3.75 + 8) + 1000*0.5 = 1.875 + 145.625 + 500 = 647.5
    assert total.numpy() == pytest.approx(647.5)
    assert terms["total"].numpy() == pytest.approx(647.5)
    for name, value in TERMS.items():
        assert terms[name].numpy() == pytest.approx(value), name


def test_composite_other_weights_and_switching_off():
    _, terms = losses.composite_loss(G_A, Y_A, G_B, Y_B, **_config(
        label_weight=2.0, trend_weight=0.5, local_weight=0.0, global_weight=1.0,
        siamese_weight=3.0))
    # 2*1.875 + 0.5*2.8125 + 0 + 1*8 + 3*0.5 = 3.75 + 1.40625 + 8 + 1.5 = 14.65625
    assert terms["total"].numpy() == pytest.approx(14.65625)
    assert terms["local"].numpy() == 0.0
    total, terms = losses.composite_loss(G_A, Y_A, G_B, Y_B, **_config(
        trend_weight=0.0, siamese_weight=0.0))
    # 1.875 + 10*(3.75 + 8) = 119.375
    assert total.numpy() == pytest.approx(119.375)
    assert terms["trend"].numpy() == 0.0 and terms["siamese"].numpy() == 0.0
    assert terms["label"].numpy() == pytest.approx(1.875)


def test_composite_default_config_is_the_paper():
    # Default M = 5 on N = 4: starts floor(k*4/5) = 0 0 1 2 3, ends 0 1 2 3 4 -> interval 0 is
    # empty (dropped), the others hold one frame (range 0 in g and y): local = 0.
    # total = 1.875 + 10*(2.8125 + 0 + 8) + 1000*0.5 = 1.875 + 108.125 + 500 = 610
    total, terms = losses.composite_loss(G_A, Y_A, G_B, Y_B)
    assert terms["local"].numpy() == 0.0
    assert total.numpy() == pytest.approx(610.0)


# Masked batch, N = 6, mask m:
#   clip 0 = clip 0 above + frames 4,5 masked          m = 1 1 1 1 0 0
#   clip 1 = clip 1 above with masked frames 2 and 5   m = 1 1 0 1 1 0
#   clip 2 = fully masked                              m = 0 0 0 0 0 0
MASK = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 0, 1, 1, 0], [0] * 6], np.float32)


def _pad(g, y, mask, garbage_true, garbage_pred):
    gm = np.full((3, 6, 2), garbage_true, np.float32)
    ym = np.full((3, 6, 2), garbage_pred, np.float32)
    gm[0, :4], ym[0, :4] = g[0], y[0]
    gm[1, [0, 1, 3, 4]], ym[1, [0, 1, 3, 4]] = g[1], y[1]
    return gm, ym


# Hand values for the masked batch (clip 2 has no valid frame: means are over clips 0 and 1).
# label:  clip 0 = 1.0 (as above); clip 1 = (1+1+1+0)/(2*4) = 0.375 -> 0.6875
# trend:  clip 0 pairs (0,1)(1,2)(2,3), P=3, sum 12: "2(N-1)" 12/(2*3) = 2,
#         "2N" 12/(2*3*6/5) = 5/3; clip 1 pairs (0,1)(3,4), P=2: dy = [-1,-1] -> 2,
#         [-1,0] -> 1, sum 3: "2(N-1)" 3/4, "2N" 3/(2*2*6/5) = 0.625
#         -> "2N" (5/3 + 0.625)/2 = 55/48, "2(N-1)" (2 + 0.75)/2 = 1.375
# local M=3, intervals [0,2) [2,4) [4,6): clip 0: 2 and 8, third empty -> 10/(2*2) = 2.5;
#         clip 1: [0,2) y range [1,1] -> 2; [2,4) only frame 3; [4,6) only frame 4 -> 2/6
#         -> (2.5 + 1/3)/2 = 17/12
# global: clip 0 = 4; clip 1 valid y = [1,1] [0,0] [1,1] [0,1] -> range [1,1] -> 2 -> 3
MASKED_VALUES = {
    "label": (lambda g, y, m: losses.label_loss(g, y, m), 0.6875),
    "trend_2N": (lambda g, y, m: losses.trend_loss(g, y, m), 55 / 48),
    "trend_2N-1": (lambda g, y, m: losses.trend_loss(g, y, m, normalizer="2(N-1)"), 1.375),
    "local": (lambda g, y, m: losses.local_loss(g, y, m, num_intervals=3), 17 / 12),
    "global": (lambda g, y, m: losses.global_loss(g, y, m), 3.0),
}


def _value_and_grad(fn, g, y, m):
    y = tf.constant(y)
    with tf.GradientTape() as tape:
        tape.watch(y)
        loss = fn(g, y, m)
    return loss.numpy(), tape.gradient(loss, y).numpy()


@pytest.mark.parametrize("name", sorted(MASKED_VALUES))
def test_masked_frames_change_neither_loss_nor_gradients(name):
    fn, expected = MASKED_VALUES[name]
    g_bad, y_bad = _pad(G_A, Y_A, MASK, np.nan, HUGE)
    g_zero, y_zero = _pad(G_A, Y_A, MASK, 0.0, -7.0)
    for mask in (MASK, MASK.astype(bool)):
        loss, grad = _value_and_grad(fn, g_bad, y_bad, mask)
        assert loss == pytest.approx(expected)
        assert np.all(np.isfinite(grad))
        assert np.all(grad[MASK == 0] == 0.0)
        loss_zero, grad_zero = _value_and_grad(fn, g_zero, y_zero, mask)
        assert loss_zero == pytest.approx(expected)
        np.testing.assert_allclose(grad, grad_zero, rtol=1e-6, atol=1e-7)
    assert np.any(grad[MASK == 1] != 0.0)


G6_B = np.concatenate([G_B[:1], np.full((1, 2, 2), np.nan, np.float32)], axis=1)
Y6_B = np.concatenate([Y_B[:1], np.full((1, 2, 2), HUGE, np.float32)], axis=1)
# (loss on the 6-frame clip with 2 trailing masked frames, loss on the 4-frame clip alone)
REMOVAL_CASES = {
    "label": (losses.label_loss, losses.label_loss),
    "global": (losses.global_loss, losses.global_loss),
    "trend_2N-1": ((lambda g, y, m: losses.trend_loss(g, y, m, normalizer="2(N-1)")),) * 2,
    "siamese": (lambda g, y, m: losses.siamese_loss(g, y, G6_B, Y6_B, m),
                lambda g, y, m: losses.siamese_loss(g, y, G_B[:1], Y_B[:1], m)),
}


@pytest.mark.parametrize("name", sorted(REMOVAL_CASES))
def test_trailing_masked_frames_equal_removing_them(name):
    # Clip 0 with 2 trailing masked frames vs the same 4-frame clip alone: same loss, and the
    # gradients on the 4 kept frames match. (Siamese: B has the same 4 frames + 2 masked.)
    fn6, fn4 = REMOVAL_CASES[name]
    g6 = np.concatenate([G_A[:1], np.full((1, 2, 2), np.nan, np.float32)], axis=1)
    y6 = np.concatenate([Y_A[:1], np.full((1, 2, 2), HUGE, np.float32)], axis=1)
    loss6, grad6 = _value_and_grad(fn6, g6, y6, MASK[:1])
    loss4, grad4 = _value_and_grad(fn4, G_A[:1], Y_A[:1], None)
    assert loss6 == pytest.approx(loss4)
    np.testing.assert_allclose(grad6[:, :4], grad4, rtol=1e-6)
    assert np.all(grad6[:, 4:] == 0.0)
    assert np.any(grad4 != 0.0)


def test_label_gradient_by_hand():
    # d/dy_i of 1/(2N) Σ‖g−y‖² = (y_i − g_i)/N, batch of 1: y0 − g0 = [1,0] [0,-1] [1,0] [-1,2]
    _, grad = _value_and_grad(lambda g, y, m: losses.label_loss(g, y, m), G_A[:1], Y_A[:1], None)
    np.testing.assert_allclose(grad[0], np.array(
        [[0.25, 0], [0, -0.25], [0.25, 0], [-0.25, 0.5]], np.float32))


def test_composite_masked_and_nan_labels_without_mask():
    # mask_a masks frames 4,5 of clip 0; mask_b masks frame 3: the Siamese term sees frames
    # 0..2: ĝ-ŷ = [1,-1] [0,0] [0,1] -> 3/(2*3) = 0.5.
    g_a, y_a = _pad(G_A, Y_A, MASK, np.nan, HUGE)
    g_b, y_b = _pad(G_B, Y_B, MASK, np.nan, HUGE)
    mask_b = MASK.copy()
    mask_b[0, 3] = 0
    cfg = _config(label_weight=0.0, trend_weight=0.0, local_weight=0.0, global_weight=0.0,
                  siamese_weight=1.0)
    total, _ = losses.composite_loss(g_a[:1], y_a[:1], g_b[:1], y_b[:1], MASK[:1],
                                     mask_b[:1], **cfg)
    assert total.numpy() == pytest.approx(0.5)
    # NaN ground truth marks a frame invalid even with no mask: label of clip 0 = 1.0.
    assert losses.label_loss(g_a[:1], np.where(np.isnan(g_a[:1]), 0, y_a[:1])).numpy() == (
        pytest.approx(1.0))
    # No valid frame anywhere: every term is 0, not NaN.
    empty = np.zeros((2, 6), np.float32)
    _, terms = losses.composite_loss(g_a[:2], y_a[:2], g_b[:2], y_b[:2], empty, empty)
    assert all(v.numpy() == 0.0 for v in terms.values())


def test_xla_compiled_matches_hand_values_and_gradients():
    g_a, y_a = _pad(G_A, Y_A, MASK, np.nan, HUGE)
    g_b, y_b = _pad(G_B, Y_B, MASK, np.nan, HUGE)
    cfg = _config(num_intervals=3)

    @tf.function(jit_compile=True)
    def step(y_pred_a, y_pred_b):
        with tf.GradientTape() as tape:
            tape.watch(y_pred_a)
            total, terms = losses.composite_loss(g_a, y_pred_a, g_b, y_pred_b, MASK, MASK,
                                                 **cfg)
        return terms, tape.gradient(total, y_pred_a)

    terms, grad = step(tf.constant(y_a), tf.constant(y_b))
    eager_total, _ = losses.composite_loss(g_a, y_a, g_b, y_b, MASK, MASK, **cfg)
    assert terms["total"].numpy() == pytest.approx(eager_total.numpy(), rel=1e-6)
    # Clip A's masked label value is the hand value 0.6875 (see MASKED_VALUES); the XLA
    # gradients are finite and exactly 0 at masked frames.
    assert terms["label"].numpy() == pytest.approx(
        0.6875 + losses.label_loss(g_b, y_b, MASK).numpy())
    grad = grad.numpy()
    assert np.all(np.isfinite(grad)) and np.all(grad[MASK == 0] == 0.0)



def _ccc_loss_numpy(g, y, mask):
    """1 − CCC per dimension over the valid frames of the whole batch, averaged over dims."""
    keep = (np.asarray(mask) > 0) & np.all(np.isfinite(g), axis=-1)
    out = []
    for d in range(g.shape[-1]):
        x, z = g[..., d][keep].astype(np.float64), y[..., d][keep].astype(np.float64)
        c = np.cov(x, z, bias=True)
        out.append(1 - 2 * c[0, 1] / (c[0, 0] + c[1, 1] + (x.mean() - z.mean()) ** 2))
    return float(np.mean(out))


def test_ccc_label_loss_by_hand():
    # Valence of the shared example's clips A pooled (8 frames):
    #   g = 0 1 2 4 0 0 0 0 (mean 7/8), y = 1 1 3 3 1 0 1 0 (mean 10/8)
    # Perfect prediction: 0 per dim. y = 2·mean − g (mirrored about the mean: same mean and
    # variance, cov = −var): CCC −1, loss 2. y = −g: CCC = −2 var / (2 var + 4 mean²).
    g = tf.constant(G_A)
    assert losses.ccc_label_loss(g, g).numpy() == pytest.approx(0.0, abs=1e-6)
    mirrored = np.array([7 / 4, 2.0], np.float32) - G_A  # means 7/8 and 1
    assert losses.ccc_label_loss(G_A, mirrored).numpy() == pytest.approx(2.0, abs=1e-6)
    # y = g + 1 (shift only): var g + var y + 1 = 2 var g + 1, cov = var g per dim.
    # valence var = mean(g²) − mean² = (1+4+16)/8 − 49/64 = 21/8 − 49/64 = 119/64
    # arousal g = 0 2 2 0 1 1 1 1 (mean 1): var = (1+1+1+1)/8 = 0.5
    v_var, a_var = 119 / 64, 0.5
    expected = np.mean([1 - 2 * v_var / (2 * v_var + 1), 1 - 2 * a_var / (2 * a_var + 1)])
    negated = np.mean([1 + 2 * v_var / (2 * v_var + 4 * (7 / 8) ** 2),
                       1 + 2 * a_var / (2 * a_var + 4)])
    assert losses.ccc_label_loss(G_A, -G_A).numpy() == pytest.approx(negated, rel=1e-5)
    assert losses.ccc_label_loss(G_A, G_A + 1).numpy() == pytest.approx(expected, rel=1e-5)
    assert losses.ccc_label_loss(G_A, Y_A).numpy() == pytest.approx(
        _ccc_loss_numpy(G_A, Y_A, np.ones(G_A.shape[:2])), rel=1e-5)


def test_ccc_label_loss_masks_match_numpy_and_leak_nothing():
    rng = np.random.default_rng(3)
    g = rng.normal(size=(3, 7, 2)).astype(np.float32)
    y = (0.5 * g + rng.normal(0.3, 0.5, size=g.shape)).astype(np.float32)
    mask = (rng.random((3, 7)) > 0.35).astype(np.float32)
    mask[2] = 0.0  # A clip with no valid frame.
    expected = _ccc_loss_numpy(g, y, mask)
    g_bad, y_bad = g.copy(), y.copy()
    g_bad[mask == 0] = np.nan
    y_bad[mask == 0] = HUGE
    y_var = tf.Variable(y_bad)
    with tf.GradientTape() as tape:
        loss = losses.ccc_label_loss(g_bad, y_var, mask)
    grad = tape.gradient(loss, y_var).numpy()
    assert loss.numpy() == pytest.approx(expected, rel=1e-5)
    assert np.all(np.isfinite(grad)) and np.all(grad[mask == 0] == 0.0)
    assert np.any(grad[mask > 0] != 0.0)
    # NaN labels alone mark frames invalid; a batch without a valid frame gives 0.
    assert losses.ccc_label_loss(g_bad, y_bad).numpy() == pytest.approx(expected, rel=1e-5)
    assert losses.ccc_label_loss(g, y, np.zeros((3, 7))).numpy() == 0.0


def test_composite_with_ccc_label():
    cfg = _config(label="ccc", trend_weight=0.0, local_weight=0.0, global_weight=0.0,
                  siamese_weight=0.0)
    total, terms = losses.composite_loss(G_A, Y_A, G_B, Y_B, **cfg)
    ones = np.ones(G_A.shape[:2])
    expected = _ccc_loss_numpy(G_A, Y_A, ones) + _ccc_loss_numpy(G_B, Y_B, ones)
    assert terms["label"].numpy() == pytest.approx(expected, rel=1e-5)
    assert total.numpy() == pytest.approx(expected, rel=1e-5)
    _, mse_terms = losses.composite_loss(G_A, Y_A, G_B, Y_B, **_config(label="mse"))
    _, paper_terms = losses.composite_loss(G_A, Y_A, G_B, Y_B, **_config())
    assert mse_terms["label"].numpy() == paper_terms["label"].numpy()  # missing = "mse"
    with pytest.raises(errors.UserError, match="label: expected one of"):
        losses.composite_loss(G_A, Y_A, G_B, Y_B, **_config(label="l1"))


def test_ccc_label_loss_under_xla_matches_eager():
    rng = np.random.default_rng(4)
    g = rng.normal(size=(4, 6, 2)).astype(np.float32)
    y = rng.normal(size=(4, 6, 2)).astype(np.float32)
    mask = (rng.random((4, 6)) > 0.3).astype(np.float32)

    @tf.function(jit_compile=True)
    def compiled(y_pred):
        with tf.GradientTape() as tape:
            tape.watch(y_pred)
            loss = losses.ccc_label_loss(g, y_pred, mask)
        return loss, tape.gradient(loss, y_pred)

    loss, grad = compiled(tf.constant(y))
    assert loss.numpy() == pytest.approx(_ccc_loss_numpy(g, y, mask), rel=1e-5)
    y_var = tf.Variable(y)
    with tf.GradientTape() as tape:
        eager = losses.ccc_label_loss(g, y_var, mask)
    np.testing.assert_allclose(grad.numpy(), tape.gradient(eager, y_var).numpy(), atol=1e-6)
