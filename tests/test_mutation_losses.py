"""Loss cases that separate right from plausibly wrong: values worked out by hand in comments.

The Siamese term with N = 1, where only the SIGN of the label difference g^B − g^A tells the
right formula from a wrong one; masked frames in each term, with the normalisers of the module
docstring (label and siamese over valid frames, trend over valid pairs, local over intervals with
a valid frame); a batch mean over the clips that have a term.
"""

import numpy as np
import pytest

from ast_net import losses


def test_siamese_n1_sign_of_the_label_difference():
    g_a = np.array([[[0.0, 0.0]]], np.float32)
    g_b = np.array([[[0.5, -0.2]]], np.float32)
    # Predictions that move exactly as the labels do: 0.
    assert losses.siamese_loss(g_a, g_a, g_b, g_b).numpy() == pytest.approx(0.0, abs=1e-7)
    # Predictions moving the opposite way: ĝ − ŷ = [0.5 − (−0.5), −0.2 − 0.2] = [1, −0.4]
    #   -> (1 + 0.16) / (2·1) = 0.58.
    got = losses.siamese_loss(g_a, g_a, g_b, -g_b).numpy()
    assert got == pytest.approx(0.58, rel=1e-6)
    # The same through the composite loss with only the Siamese term on (λ = 1000).
    off = {"label": 0.0, "trend": 0.0, "local": 0.0, "global": 0.0, "siamese": 1000.0}
    total, terms = losses.composite_loss(g_a, g_a, g_b, g_b, weights=off)
    assert total.numpy() == pytest.approx(0.0, abs=1e-6)
    total, terms = losses.composite_loss(g_a, g_a, g_b, -g_b, weights=off)
    assert total.numpy() == pytest.approx(580.0, rel=1e-6)
    assert terms["siamese"].numpy() == pytest.approx(0.58, rel=1e-6)


# One clip, N = 5, one dim. g = 0 1 2 3 4, y = 0 0 0 0 0; frame 2 masked (mask 0).
G = np.array([[[0.0], [1.0], [2.0], [3.0], [4.0]]], np.float32)
Y = np.zeros_like(G)
M = np.array([[1, 1, 0, 1, 1]], np.float32)


def test_masked_label_and_siamese_average_over_valid_frames():
    # label: (0 + 1 + 9 + 16) / (2·4) = 26/8 = 3.25
    assert losses.label_loss(G, Y, M).numpy() == pytest.approx(3.25)
    # siamese with A = zeros: ĝ = g, ŷ = 0 -> the same sum over the 4 valid frames.
    z = np.zeros_like(G)
    assert losses.siamese_loss(z, z, G, Y, M).numpy() == pytest.approx(3.25)
    # bool and int masks mean the same; a NaN label masks its frame without a mask.
    assert losses.label_loss(G, Y, M.astype(bool)).numpy() == pytest.approx(3.25)
    g_nan = G.copy()
    g_nan[0, 2, 0] = np.nan
    assert losses.label_loss(g_nan, Y).numpy() == pytest.approx(3.25)


def test_masked_trend_counts_only_valid_pairs():
    # Valid pairs (0,1) and (3,4): Δg = 1 each, Δy = 0 -> sum 2, P = 2.
    # "2(N-1)": 2 / (2·2) = 0.5;  "2N": 2·(N−1) / (2·P·N) = 2·4 / (2·2·5) = 0.4
    assert losses.trend_loss(G, Y, M, "2(N-1)").numpy() == pytest.approx(0.5)
    assert losses.trend_loss(G, Y, M, "2N").numpy() == pytest.approx(0.4)
    # Unmasked: Δg = 1 four times -> 4/(2·5) = 0.4 and 4/(2·4) = 0.5.
    assert losses.trend_loss(G, Y, None, "2N").numpy() == pytest.approx(0.4)
    assert losses.trend_loss(G, Y, None, "2(N-1)").numpy() == pytest.approx(0.5)


def test_masked_local_and_global_ranges():
    # M = 2 on N = 5: intervals [0, 2) and [2, 5). Valid: {0, 1} and {3, 4}: ranges 1 and 1
    #   -> (1 + 1) / (2·2) = 0.5.  Unmasked: ranges 1 and 2 -> (1 + 4)/4 = 1.25.
    assert losses.local_loss(G, Y, M, 2).numpy() == pytest.approx(0.5)
    assert losses.local_loss(G, Y, None, 2).numpy() == pytest.approx(1.25)
    # Mask frames 0 and 1: interval 0 has no valid frame and is dropped; interval 1 (frames
    # 2..4) has range 2 -> 4 / (2·1) = 2.
    m01 = np.array([[0, 0, 1, 1, 1]], np.float32)
    assert losses.local_loss(G, Y, m01, 2).numpy() == pytest.approx(2.0)
    # global: range over valid frames 0, 1, 3, 4 = 4 -> 16; frames 2..4 only: 2 -> 4.
    assert losses.global_loss(G, Y, M).numpy() == pytest.approx(16.0)
    assert losses.global_loss(G, Y, m01).numpy() == pytest.approx(4.0)
    # Negative values: g = −4 .. 0 has the same range 4 as 0 .. 4.
    assert losses.global_loss(-G, Y).numpy() == pytest.approx(16.0)
    assert losses.local_loss(-G, Y, None, 2).numpy() == pytest.approx(1.25)


def test_batch_mean_is_over_clips_with_a_term():
    # Clip 0 as above (label 3.25 with M), clip 1 fully masked: the mean is over clip 0 only.
    g = np.concatenate([G, G + 5.0])
    y = np.concatenate([Y, Y])
    m = np.concatenate([M, np.zeros_like(M)])
    assert losses.label_loss(g, y, m).numpy() == pytest.approx(3.25)
    assert losses.trend_loss(g, y, m, "2(N-1)").numpy() == pytest.approx(0.5)
    assert losses.global_loss(g, y, m).numpy() == pytest.approx(16.0)
    assert losses.local_loss(g, y, m, 2).numpy() == pytest.approx(0.5)
    # Two clips with terms: plain mean. Clip 1 unmasked, g + 5 vs 0: (25+36+49+64+81)/10 = 25.5
    m2 = np.concatenate([M, np.ones_like(M)])
    assert losses.label_loss(g, y, m2).numpy() == pytest.approx((3.25 + 25.5) / 2)
    # No valid frame anywhere: every term is 0.
    zero = np.zeros((2, 5), np.float32)
    for fn in (losses.label_loss, losses.global_loss):
        assert fn(g, y, zero).numpy() == 0.0
