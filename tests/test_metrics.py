"""Tests of ast_net.metrics with scipy/numpy as oracles and a CCC worked out by hand."""

import math

import numpy as np
import pytest
from scipy import stats

from ast_net import metrics


def test_pearson_cc_matches_scipy_and_ignores_masked_and_nan():
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    y = 0.6 * x + rng.normal(size=200)
    assert metrics.pearson_cc(x, y) == pytest.approx(stats.pearsonr(x, y)[0], rel=1e-12)
    mask = rng.random(200) > 0.3
    x_bad, y_bad = x.copy(), y.copy()
    y_bad[~mask] = 1e6  # Garbage where masked...
    x_bad[5] = np.nan  # ... and a NaN label that is dropped without a mask.
    keep = mask.copy()
    keep[5] = False
    expected = stats.pearsonr(x[keep], y[keep])[0]
    assert metrics.pearson_cc(x_bad, y_bad, mask) == pytest.approx(expected, rel=1e-12)
    assert metrics.pearson_cc(x_bad, y_bad, mask.astype(np.int64)) == pytest.approx(
        expected, rel=1e-12)


def test_constant_or_too_short_gives_nan_not_crash():
    assert math.isnan(metrics.pearson_cc([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert math.isnan(metrics.pearson_cc([1.0, 2.0, 3.0], [0.5, 0.5, 0.5]))
    assert math.isnan(metrics.pearson_cc([1.0], [2.0]))
    assert math.isnan(metrics.pearson_cc([1.0, 2.0], [3.0, 4.0], mask=[0, 0]))
    assert math.isnan(metrics.ccc([2.0, 2.0], [2.0, 2.0]))  # 0/0
    # One constant sequence: cov = 0, denominator > 0 -> CCC 0.
    assert metrics.ccc([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]) == 0.0
    assert math.isnan(metrics.rmse([1.0], [2.0], mask=[False]))
    with pytest.raises(ValueError, match="length"):
        metrics.pearson_cc([1, 2, 3], [1, 2])


def test_ccc_by_hand():
    # x = 1 2 3, y = 2 3 5: mean x = 2, mean y = 10/3
    # cov = ((-1)(-4/3) + 0 + (1)(5/3))/3 = 1; var x = 2/3; var y = (16+1+25)/9/3 = 14/9
    # (2 - 10/3)^2 = 16/9; CCC = 2*1 / (6/9 + 14/9 + 16/9) = 2/4 = 0.5
    assert metrics.ccc([1, 2, 3], [2, 3, 5]) == pytest.approx(0.5)
    assert metrics.ccc([1, 2, 3, 9], [2, 3, 5, -100], mask=[1, 1, 1, 0]) == pytest.approx(0.5)
    assert metrics.ccc([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    # Against numpy moments on random data.
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=50), rng.normal(1.0, 2.0, size=50)
    cov = np.cov(x, y, bias=True)
    expected = 2 * cov[0, 1] / (cov[0, 0] + cov[1, 1] + (x.mean() - y.mean()) ** 2)
    assert metrics.ccc(x, y) == pytest.approx(expected, rel=1e-12)


def test_rmse():
    # diffs 1 1 2 -> sqrt((1+1+4)/3) = sqrt(2)
    assert metrics.rmse([1, 2, 3], [2, 3, 5]) == pytest.approx(math.sqrt(2))
    assert metrics.rmse([1, 2, 3, np.nan], [2, 3, 5, 0]) == pytest.approx(math.sqrt(2))


def test_video_rows_and_summarize():
    t = np.linspace(0, 1, 20)
    y_true = np.stack([t, t ** 2], axis=1)
    rows = metrics.video_rows("v1", y_true, y_true * 2 + 1)
    assert [r["dimension"] for r in rows] == ["valence", "arousal"]
    assert rows[0]["cc"] == pytest.approx(1.0) and rows[0]["frames"] == 20
    assert rows[1]["rmse"] == pytest.approx(np.sqrt(np.mean((y_true[:, 1] + 1) ** 2)))

    per_video = [
        {"video": "a", "dimension": "valence", "cc": 0.9, "ccc": 0.5, "rmse": 0.1},
        {"video": "b", "dimension": "valence", "cc": 0.3, "ccc": 0.1, "rmse": 0.3},
        {"video": "c", "dimension": "valence", "cc": float("nan"), "ccc": float("nan")},
        {"video": "a", "dimension": "arousal", "cc": -0.2, "ccc": 0.0, "rmse": 0.2},
    ]
    summary = metrics.summarize(per_video)
    # valence: CC 0.9, 0.3 (NaN skipped) -> max 0.9, min 0.3, mean 0.6; CCC mean 0.3
    assert summary["valence"]["max_cc"] == pytest.approx(0.9)
    assert summary["valence"]["min_cc"] == pytest.approx(0.3)
    assert summary["valence"]["mean_cc"] == pytest.approx(0.6)
    assert summary["valence"]["mean_ccc"] == pytest.approx(0.3)
    assert summary["valence"]["mean_rmse"] == pytest.approx(0.2)
    assert (summary["valence"]["videos"], summary["valence"]["nan_cc"]) == (3, 1)
    assert summary["arousal"]["mean_cc"] == pytest.approx(-0.2)
    table = metrics.format_table(summary)
    assert "0.9000/0.3000" in table and "(1 NaN)" in table
