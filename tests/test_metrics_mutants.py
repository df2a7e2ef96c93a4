"""Direct, fast tests of `ast_net.metrics` aimed at mutants that survived the rest of the suite
(and at the public `video_rows()`, which nothing else calls). Expected values are worked out by
hand or from an independent oracle (scipy.stats.pearsonr, numpy textbook formulas written here),
never by calling the metrics code another way. Functions are reached as `metrics.<name>` at call
time so that a patched module is what gets tested."""

import math
import re

import numpy as np
import pytest
from scipy import stats

from ast_net import metrics


def _textbook_ccc(x, y):
    """Lin's CCC with population moments, in float64, straight from the formula."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    mx, my = x.mean(), y.mean()
    cov = np.mean((x - mx) * (y - my))
    return 2.0 * cov / (np.mean((x - mx) ** 2) + np.mean((y - my) ** 2) + (mx - my) ** 2)


# --- _valid_pair -------------------------------------------------------------------------------

def test_column_shaped_inputs_are_flattened():
    """Catches `reshape(None)` for x (_valid_pair 2), y (10) and the mask (27): a [3, 1] column
    must be flattened, not compared as a (3, 1) shape against (3,)."""
    expected = stats.pearsonr([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])[0]  # 3 / sqrt(2 * 14/3)
    assert metrics.pearson_cc([[1], [2], [3]], [1, 2, 4]) == pytest.approx(expected, rel=1e-12)
    assert metrics.pearson_cc([1, 2, 3], [[1], [2], [4]]) == pytest.approx(expected, rel=1e-12)
    assert metrics.pearson_cc([1, 2, 3], [1, 2, 4], mask=[[1], [1], [1]]) == pytest.approx(
        expected, rel=1e-12)


def test_float32_input_is_averaged_in_float64():
    """Catches dropping the float64 cast of x (_valid_pair 4, 6) and of y (12, 14): the float32
    sum 3e38 + 3.4e38 overflows, so the float32 mean is inf and the CC NaN. In float64
    dx = -/+2e37 and dy = -/+0.5, so the CC is exactly 1 (by hand)."""
    big = np.float32([3e38, 3.4e38])
    assert metrics.pearson_cc(big, [0.0, 1.0]) == 1.0
    assert metrics.pearson_cc([0.0, 1.0], big) == 1.0


def test_mask_length_error_message():
    """Catches the mask-length message replaced by None (_valid_pair 32) and `shape[1]` on a
    1-D array (33, 34, which raise IndexError instead)."""
    with pytest.raises(ValueError, match=r"^" + re.escape("mask has 2 entries, expected 3") + "$"):
        metrics.pearson_cc([1, 2, 3], [1, 2, 3], mask=[1, 1])


# --- cc_undefined_reason -----------------------------------------------------------------------

def test_zero_frames_reason_is_plural():
    """Catches the plural "s" mutants (cc_undefined_reason 11, 15, 16): with every frame masked
    the reason is "0 labelled frames"; one frame stays singular."""
    assert metrics.cc_undefined_reason([1.0], [2.0], mask=[0]) == "0 labelled frames"
    assert metrics.cc_undefined_reason([1.0], [2.0]) == "1 labelled frame"


# --- pearson_cc --------------------------------------------------------------------------------

def test_pearson_two_frames_is_defined():
    """Catches `x.size <= 2` / `x.size < 3` (pearson_cc 10, 11): two varying frames have a CC.
    dx = -/+1/2, dy = -/+1, so CC = 1 / sqrt(1/2 * 2) = 1 exactly."""
    assert metrics.pearson_cc([1, 2], [3, 5]) == 1.0


def test_pearson_clipped_to_plus_one():
    """Catches the upper clip bound removed or raised to 2 (pearson_cc 31, 44): with y = 3x the
    raw ratio rounds to 1.0000000000000002; the result must be exactly 1.0."""
    x = np.array([0.0, 0.4, 1.4])
    assert metrics.pearson_cc(x, 3 * x) == 1.0


def test_pearson_clipped_to_minus_one():
    """Catches the lower clip bound removed or lowered to -2 (pearson_cc 30, 43): with y = -3x
    the raw ratio rounds to -1.0000000000000002; the result must be exactly -1.0."""
    x = np.array([0.0, 0.4, 1.4])
    assert metrics.pearson_cc(x, -3 * x) == -1.0


# --- ccc ---------------------------------------------------------------------------------------

def test_ccc_two_frames_is_defined():
    """Catches `x.size <= 2` / `x.size < 3` (ccc 8, 9): cov = var = 1/4, equal means, so
    CCC = (2 * 1/4) / (1/4 + 1/4) = 1 exactly."""
    assert metrics.ccc([1, 2], [1, 2]) == 1.0


def test_ccc_one_constant_sequence_is_exactly_zero():
    """Catches the covariance computed although x is constant (ccc 19, 22): in floats
    mean([0.1] * 3) != 0.1 and sum(y - mean(y)) != 0 for y = [1, 2, 4], so computing it gives
    ~2e-33 instead of the documented 0."""
    assert metrics.ccc([0.1, 0.1, 0.1], [1, 2, 4]) == 0.0


def test_ccc_covariance_with_large_offset_x():
    """Catches `(x + mx)` in the covariance (ccc 28): with x = 1e8 + [0, 1, 2] the mutant's
    covariance is off by ~3.5e-8 relative, far beyond the 1e-12 tolerance."""
    x = 1e8 + np.array([0.0, 1.0, 2.0])
    y = np.array([0.1, 0.2, 0.4])
    assert metrics.ccc(x, y) == pytest.approx(_textbook_ccc(x, y), rel=1e-12, abs=0)


def test_ccc_covariance_with_large_offset_y():
    """Catches `(y + my)` in the covariance (ccc 29): the same input with the roles swapped."""
    x = np.array([0.1, 0.2, 0.4])
    y = 1e8 + np.array([0.0, 1.0, 2.0])
    assert metrics.ccc(x, y) == pytest.approx(_textbook_ccc(x, y), rel=1e-12, abs=0)


def test_ccc_small_integers():
    """Also catches ccc 28 / 29 on plain data: x = [1, 2, 3], y = [1, 2, 4] gives cov = 1 and
    CCC = 2 / (2/3 + 14/9 + 1/9) = 6/7 by hand."""
    assert metrics.ccc([1, 2, 3], [1, 2, 4]) == pytest.approx(6 / 7, rel=1e-14, abs=0)
    assert metrics.ccc([1, 2, 4], [1, 2, 3]) == pytest.approx(6 / 7, rel=1e-14, abs=0)


def test_ccc_zero_denominator_is_nan():
    """Catches `denom < 0` (ccc 39): the squared deviations of [0, 1e-200] underflow to 0, the
    means are equal, so the denominator is 0 and the CCC must be NaN, not ZeroDivisionError."""
    assert math.isnan(metrics.ccc([0.0, 1e-200], [0.0, 1e-200]))


# --- _score_video / Evaluation -----------------------------------------------------------------

def test_frame_count_mismatch_message():
    """Catches `shape[1]` in the frame-count message (_score_video 25, 26): shape[1] is the
    number of dimensions (2), not the frames."""
    with pytest.raises(ValueError, match=r"^" + re.escape(
            "v: 4 label frames vs 3 predicted frames") + "$"):
        metrics.Evaluation().add("v", np.zeros((4, 2)), np.zeros((3, 2)))


def test_summary_of_no_dimensions_keeps_columns():
    """Catches `columns=` dropped from the summary frame (summary 98, 100): with no dimensions
    the summary is still an empty table with the SUMMARY_COLUMNS, indexed by "dimension"."""
    s = metrics.Evaluation(dimensions=()).summary()
    assert len(s) == 0
    assert list(s.columns) == list(metrics.SUMMARY_COLUMNS)
    assert s.index.name == "dimension"


# --- video_rows --------------------------------------------------------------------------------

def test_video_rows_by_hand():
    """Covers the public `video_rows()` (its mutants 1-11: video, y_true, y_pred, mask or
    dimensions replaced or dropped, `[1]` for `[0]`). Custom dimension names and a mask that
    drops a wild frame make every argument matter; expected rows come from scipy / numpy."""
    y_true = np.array([[1.0, 0.5], [2.0, 0.5], [3.0, 0.5], [50.0, -9.0], [5.0, 0.5]])
    y_pred = np.array([[1.5, 0.1], [1.0, 0.3], [3.5, 0.2], [-50.0, 9.0], [4.0, 0.9]])
    mask = [1, 1, 1, 0, 1]
    rows = metrics.video_rows(7, y_true, y_pred, mask, dimensions=("first", "second"))

    keep = np.array(mask, bool)
    x0, y0 = y_true[keep, 0], y_pred[keep, 0]
    x1, y1 = y_true[keep, 1], y_pred[keep, 1]
    assert isinstance(rows, list) and len(rows) == 2
    r0, r1 = rows
    assert set(r0) == set(metrics.PER_VIDEO_COLUMNS)
    assert set(r1) == set(metrics.PER_VIDEO_COLUMNS)

    assert r0["video"] == "7" and r0["dimension"] == "first"
    assert r0["CC"] == pytest.approx(stats.pearsonr(x0, y0)[0], rel=1e-12)
    assert r0["CCC"] == pytest.approx(_textbook_ccc(x0, y0), rel=1e-12)
    assert r0["RMSE"] == pytest.approx(np.sqrt(np.mean((x0 - y0) ** 2)), rel=1e-12)
    # Hand check of the RMSE: differences -0.5, 1, -0.5, 1 -> sqrt(2.5 / 4).
    assert r0["RMSE"] == pytest.approx(math.sqrt(0.625), rel=1e-12)
    assert r0["frames"] == 4 and r0["CC undefined"] == ""

    assert r1["video"] == "7" and r1["dimension"] == "second"
    assert math.isnan(r1["CC"])
    assert r1["CCC"] == 0.0  # constant labels, varying predictions
    assert r1["RMSE"] == pytest.approx(np.sqrt(np.mean((x1 - y1) ** 2)), rel=1e-12)
    assert r1["frames"] == 4 and r1["CC undefined"] == "constant labels"
