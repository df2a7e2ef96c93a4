"""Tests of ast_net.metrics: scipy/numpy as oracles, and a small evaluation table worked out by
hand (per-video CC / CCC / RMSE, pooled CCC / RMSE, videos whose CC is undefined)."""

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


def test_constant_by_value_not_by_rounding():
    # mean([0.1] * 3) is 0.10000000000000002: a variance test on x - mean sees rounding noise
    # (about 1e-34) and would return a CC made of it; max == min says "constant".
    x = [0.1, 0.1, 0.1]
    assert np.mean(x) != 0.1  # The premise of the test.
    assert math.isnan(metrics.pearson_cc(x, [1.0, 2.0, 3.0]))
    assert metrics.cc_undefined_reason(x, [1.0, 2.0, 3.0]) == "constant labels"
    assert metrics.cc_undefined_reason([1.0, 2.0, 3.0], x) == "constant predictions"
    assert metrics.cc_undefined_reason(x, x) == "constant labels and predictions"
    assert metrics.cc_undefined_reason([1.0, 2.0], [1.0, 3.0], mask=[1, 0]) == "1 labelled frame"
    assert metrics.cc_undefined_reason([1.0, 2.0], [1.0, 3.0]) == ""
    assert metrics.ccc(x, [1.0, 2.0, 3.0]) == 0.0
    assert math.isnan(metrics.ccc(x, x))


def _ccc_numpy(x, y):
    x, y = np.asarray(x, float), np.asarray(y, float)
    c = np.cov(x, y, bias=True)
    return 2 * c[0, 1] / (c[0, 0] + c[1, 1] + (x.mean() - y.mean()) ** 2)


# Four videos worked by hand: [T, (valence, arousal)] labels and predictions, mask.
_VIDEOS = [
    ("v1", [[1, 0], [2, 1], [3, 0], [9, 5]], [[2, 0], [3, 0], [5, 0], [-100, 7]], [1, 1, 1, 0]),
    ("v2", [[1, 1], [1, 2], [1, 3]], [[0, 3], [1, 2], [2, 1]], None),
    ("v3", [[0.5, -1], [0.2, 0.7]], [[0.0, -1], [0.9, 0.1]], [1, 0]),
    ("v4", [[1, 0], [2, 0], [3, 1]], [[1, 0], [3, 1], [2, 1]], [True, True, True]),
]


def test_evaluation_table_by_hand():
    ev = metrics.evaluate(_VIDEOS)
    per_video = ev.per_video()
    assert list(per_video.columns) == list(metrics.PER_VIDEO_COLUMNS)
    assert len(per_video) == 8  # one row per video and dimension
    row = per_video.set_index(["video", "dimension"])
    # v1 valence over frames 1-3: x = 1 2 3, y = 2 3 5; Σdxdy = 3, Σdx² = 2, Σdy² = 14/3.
    assert row.loc[("v1", "valence"), "CC"] == pytest.approx(3 / math.sqrt(2 * 14 / 3))
    assert row.loc[("v1", "valence"), "CC"] == pytest.approx(
        stats.pearsonr([1, 2, 3], [2, 3, 5])[0])
    assert row.loc[("v1", "valence"), "CCC"] == pytest.approx(0.5)  # test_ccc_by_hand
    assert row.loc[("v1", "valence"), "RMSE"] == pytest.approx(math.sqrt(2))
    assert row.loc[("v1", "valence"), "frames"] == 3
    # v1 arousal: y = 0 0 0 -> no CC; CCC = 0 (cov 0); RMSE sqrt(1/3).
    assert math.isnan(row.loc[("v1", "arousal"), "CC"])
    assert row.loc[("v1", "arousal"), "CC undefined"] == "constant predictions"
    assert row.loc[("v1", "arousal"), "CCC"] == 0.0
    assert row.loc[("v1", "arousal"), "RMSE"] == pytest.approx(math.sqrt(1 / 3))
    # v2: valence labels constant; arousal reversed: CC = CCC = -1, RMSE sqrt(8/3).
    assert row.loc[("v2", "valence"), "CC undefined"] == "constant labels"
    assert row.loc[("v2", "arousal"), "CC"] == pytest.approx(-1.0)
    assert row.loc[("v2", "arousal"), "CCC"] == pytest.approx(-1.0)
    assert row.loc[("v2", "arousal"), "RMSE"] == pytest.approx(math.sqrt(8 / 3))
    # v3: one labelled frame.
    assert row.loc[("v3", "arousal"), "CC undefined"] == "1 labelled frame"
    assert math.isnan(row.loc[("v3", "valence"), "CCC"])
    assert row.loc[("v3", "valence"), "RMSE"] == pytest.approx(0.5)
    # v4 valence: x = 1 2 3, y = 1 3 2: CC = 1/2, CCC = (2/3)/(4/3) = 1/2.
    # v4 arousal: x = 0 0 1, y = 0 1 1: CC = (1/3)/(2/3) = 1/2, CCC = (2/9)/(5/9) = 0.4.
    assert row.loc[("v4", "valence"), "CC"] == pytest.approx(0.5)
    assert row.loc[("v4", "arousal"), "CC"] == pytest.approx(0.5)
    assert row.loc[("v4", "arousal"), "CCC"] == pytest.approx(0.4)
    assert row.loc[("v4", "valence"), "CC undefined"] == ""

    s = ev.summary()
    assert list(s.index) == ["valence", "arousal"]
    assert list(s.columns) == list(metrics.SUMMARY_COLUMNS)
    cc1 = 3 / math.sqrt(28 / 3)
    v = s.loc["valence"]
    assert (v["Max CC"], v["Min CC"]) == (pytest.approx(cc1), pytest.approx(0.5))
    assert v["Mean CC"] == pytest.approx((cc1 + 0.5) / 2)
    assert v["Mean CCC"] == pytest.approx((0.5 + 0.0 + 0.5) / 3)  # v3 has no CCC
    # Pooled over the 3 + 3 + 1 + 3 counted frames of the split.
    gx = [1, 2, 3, 1, 1, 1, 0.5, 1, 2, 3]
    gy = [2, 3, 5, 0, 1, 2, 0.0, 1, 3, 2]
    assert v["Pooled CCC"] == pytest.approx(_ccc_numpy(gx, gy))
    assert v["RMSE"] == pytest.approx(math.sqrt((1 + 1 + 4 + 1 + 0 + 1 + 0.25 + 0 + 1 + 1) / 10))
    assert (v["videos"], v["frames"], v["CC undefined"]) == (4, 10, 2)
    assert v["CC undefined videos"] == "v2 (constant labels); v3 (1 labelled frame)"
    a = s.loc["arousal"]
    assert (a["Max CC"], a["Min CC"], a["Mean CC"]) == (
        pytest.approx(0.5), pytest.approx(-1.0), pytest.approx(-0.25))
    assert a["Mean CCC"] == pytest.approx((0.0 - 1.0 + 0.4) / 3)
    ax = [0, 1, 0, 1, 2, 3, -1, 0, 0, 1]
    ay = [0, 0, 0, 3, 2, 1, -1, 0, 1, 1]
    assert a["Pooled CCC"] == pytest.approx(_ccc_numpy(ax, ay))
    assert a["RMSE"] == pytest.approx(math.sqrt(np.mean((np.array(ax) - ay) ** 2)))
    assert a["CC undefined videos"] == "v1 (constant predictions); v3 (1 labelled frame)"

    table = metrics.format_table(s, title="t")
    lines = table.splitlines()
    assert lines[0] == "t"
    assert lines[1].split() == ["dimension", "Max", "CC", "Min", "CC", "Mean", "CC", "Mean",
                                "CCC", "Pooled", "CCC", "RMSE", "videos"]
    assert lines[2].split()[:4] == ["valence", f"{cc1:.4f}", "0.5000", f"{(cc1 + 0.5) / 2:.4f}"]
    assert ("valence: CC undefined for 2 videos: v2 (constant labels); v3 (1 labelled frame)"
            in lines[4])
    assert lines[5].startswith("arousal: CC undefined for 2 videos: v1 (constant predictions)")

    flat = metrics.flat_summary(s)
    assert list(flat) == [f"{d} {c} CC" for d in ("valence", "arousal")
                          for c in ("Max", "Min", "Mean")]
    assert flat["arousal Min CC"] == pytest.approx(-1.0)
    scalars = metrics.summary_scalars(s)
    assert scalars["valence/pooled_ccc"] == pytest.approx(_ccc_numpy(gx, gy))
    assert scalars["arousal/cc_undefined"] == 2.0


def test_empty_and_all_undefined_split():
    s = metrics.Evaluation().summary()
    assert list(s.index) == ["valence", "arousal"]
    assert s.loc["valence", "videos"] == 0 and math.isnan(s.loc["valence", "Mean CC"])
    s = metrics.evaluate([("c", [[1, 1], [1, 1]], [[0, 1], [2, 3]], None)]).summary()
    assert math.isnan(s.loc["arousal", "Max CC"]) and s.loc["arousal", "CC undefined"] == 1
    assert "arousal: CC undefined for 1 video: c (constant labels)" in metrics.format_table(s)
    with pytest.raises(ValueError, match="label frames"):
        metrics.Evaluation().add("bad", np.zeros((3, 2)), np.zeros((4, 2)))


def test_no_tensorflow_and_same_dimensions_as_schema():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", "import sys, ast_net.metrics; "
                          "print('tensorflow' in sys.modules)"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr[-2000:]
    from ast_net.data import schema

    assert metrics.DIMENSIONS == tuple(schema.DIMENSIONS)
