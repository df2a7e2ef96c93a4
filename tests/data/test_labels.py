"""Tests of label resampling onto video frames and of the label/video length mismatch counts.

Expected values are worked out by hand in the comments, or by numpy.interp as an independent
oracle for the longer random case.
"""

import numpy as np
import pytest

from ast_net import errors
from ast_net.data import labels


def _track(times, val, aro=None):
    aro = np.zeros(len(val)) if aro is None else aro
    return labels.make_track(val, aro, "test", times_s=times)


def test_linear_midpoints_by_hand():
    track = _track([0.0, 0.04, 0.08], [0.0, 0.4, -0.4], [1.0, 0.0, 0.5])
    val, aro, mask = labels.resample(track, [0.0, 0.02, 0.06, 0.08])
    # 0.02 is half-way between 0.0 and 0.4 -> 0.2; 0.06 half-way between 0.4 and -0.4 -> 0.0.
    np.testing.assert_allclose(val, [0.0, 0.2, 0.0, -0.4], atol=1e-6)
    # arousal: 1.0 -> 0.0 at 0.02 gives 0.5; 0.0 -> 0.5 at 0.06 gives 0.25.
    np.testing.assert_allclose(aro, [1.0, 0.5, 0.25, 0.5], atol=1e-6)
    np.testing.assert_array_equal(mask, [1, 1, 1, 1])
    assert val.dtype == np.float32 and mask.dtype == np.int64


def test_frames_outside_label_span_are_masked():
    track = _track([0.04, 0.08, 0.12], [0.1, 0.2, 0.3])
    val, _, mask = labels.resample(track, [0.0, 0.04, 0.1, 0.12, 0.16])
    np.testing.assert_array_equal(mask, [0, 1, 1, 1, 0])
    # 0.1 is a quarter from 0.12 back to 0.08: 0.2 + 0.5 * 0.1 = 0.25; masked frames hold 0.
    np.testing.assert_allclose(val, [0.0, 0.1, 0.25, 0.3, 0.0], atol=1e-6)


def test_unlabelled_gap_masks_frames_unless_max_gap_allows():
    times = [0.0, 0.04, 0.08, 0.12, 0.16]
    track = _track(times, [0.1, 0.2, np.nan, 0.4, 0.5])
    frame_times = [0.04, 0.06, 0.08, 0.10, 0.13]
    val, _, mask = labels.resample(track, frame_times)
    # 0.06..0.10 lie between valid samples 0.04 and 0.12 (0.08 apart > 1.5 * 0.04): masked.
    np.testing.assert_array_equal(mask, [1, 0, 0, 0, 1])
    # 0.13 is a quarter of the way from 0.12 (0.4) to 0.16 (0.5) -> 0.425.
    np.testing.assert_allclose(val[[0, 4]], [0.2, 0.425], atol=1e-6)
    val, _, mask = labels.resample(track, frame_times, max_gap_s=0.1)
    np.testing.assert_array_equal(mask, [1, 1, 1, 1, 1])
    # Bridged: 0.06 is a quarter from 0.04 (0.2) to 0.12 (0.4) -> 0.25; 0.08 -> 0.3.
    np.testing.assert_allclose(val[:3], [0.2, 0.25, 0.3], atol=1e-6)


def test_nearest_picks_closest_valid_sample():
    track = _track([0.0, 0.04, 0.08], [0.0, 0.4, -0.4])
    val, _, mask = labels.resample(track, [0.015, 0.03, 0.07, 0.09], method="nearest")
    np.testing.assert_array_equal(mask, [1, 1, 1, 0])
    np.testing.assert_allclose(val, [0.0, 0.4, -0.4, 0.0], atol=1e-6)


def test_unknown_method_is_a_user_error():
    with pytest.raises(errors.UserError, match="linear"):
        labels.resample(_track([0.0, 1.0], [0.0, 1.0]), [0.5], method="cubic")


def test_frame_indexed_maps_row_i_to_frame_i():
    track = labels.make_track([0.1, np.nan, 0.3], [0.5, 0.6, 0.7], "t", frames=[0, 1, 2])
    val, aro, mask = labels.resample(track, [0.0, 0.1, 0.2, 0.3, 0.4])
    np.testing.assert_array_equal(mask, [1, 0, 1, 0, 0])
    np.testing.assert_allclose(val, [0.1, 0.0, 0.3, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(aro, [0.5, 0.0, 0.7, 0.0, 0.0], atol=1e-6)
    # A chunk that starts at frame 2 uses explicit frame indices.
    _, aro, mask = labels.resample(track, [0.2, 0.3], frame_indices=[2, 3])
    np.testing.assert_array_equal(mask, [1, 0])
    np.testing.assert_allclose(aro, [0.7, 0.0], atol=1e-6)


def test_sparse_frame_indices():
    track = labels.make_track([0.1, 0.2], [0.3, 0.4], "t", frames=[1, 3])
    val, _, mask = labels.resample(track, np.arange(5) / 30.0)
    np.testing.assert_array_equal(mask, [0, 1, 0, 1, 0])
    np.testing.assert_allclose(val, [0.0, 0.1, 0.0, 0.2, 0.0], atol=1e-6)


def test_long_random_track_matches_numpy_interp():
    rng = np.random.default_rng(0)
    label_times = np.arange(500) * 0.04  # 40 ms labels over 20 s
    val = rng.uniform(-1, 1, 500)
    aro = rng.uniform(-1, 1, 500)
    val[100:103] = np.nan  # an unlabelled gap
    frame_times = np.arange(650) / 30.0  # 30 fps video, 21.7 s: longer than the labels
    v, a, mask = labels.resample(labels.make_track(val, aro, "t", times_s=label_times),
                                 frame_times)
    ok = ~np.isnan(val)
    # Oracle mask: inside the label span and both grid neighbours labelled.
    lo = np.floor(frame_times / 0.04 + 1e-9).astype(int)
    hi = np.ceil(frame_times / 0.04 - 1e-9).astype(int)
    inside = frame_times <= label_times[-1] + 1e-9
    lo_c, hi_c = np.minimum(lo, 499), np.minimum(hi, 499)
    expected_mask = inside & ok[lo_c] & ok[hi_c]
    np.testing.assert_array_equal(mask, expected_mask.astype(int))
    want_v = np.interp(frame_times, label_times[ok], val[ok])
    want_a = np.interp(frame_times, label_times[ok], aro[ok])
    np.testing.assert_allclose(v[expected_mask], want_v[expected_mask], atol=1e-6)
    np.testing.assert_allclose(a[expected_mask], want_a[expected_mask], atol=1e-6)
    assert np.all(v[~expected_mask] == 0)
    # By hand: frames 0..598 lie within the labels (598 / 30 = 19.93 <= 19.96 s); the gap
    # between valid samples 3.96 s and 4.12 s holds frames 119..123 (3.967 .. 4.1 s).
    assert expected_mask.sum() == 599 - 5
    assert labels.length_mismatch(
        labels.make_track(val, aro, "t", times_s=label_times), frame_times).frames_past_labels \
        == 650 - 599


def test_length_mismatch_time_based_shorter_and_longer():
    fps = 49.979
    track = _track(np.arange(10) / fps, np.zeros(10))
    # Video of 12 frames: 2 frames after the last label.
    assert labels.length_mismatch(track, np.arange(12) / fps) == labels.LengthMismatch(2, 0)
    # Video of 8 frames: label samples 8 and 9 are past its end.
    mm = labels.length_mismatch(track, np.arange(8) / fps)
    assert mm == labels.LengthMismatch(0, 2) and mm.total == 2
    assert labels.length_mismatch(track, np.arange(10) / fps).total == 0


def test_length_mismatch_frame_indexed():
    track = labels.make_track(np.zeros(6), np.zeros(6), "t", frames=np.arange(6))
    assert labels.length_mismatch(track, np.arange(4) / 30) == labels.LengthMismatch(0, 2)
    assert labels.length_mismatch(track, np.arange(9) / 30) == labels.LengthMismatch(3, 0)


def test_combine_dims_pads_shorter_and_rejects_different_clocks():
    t = np.array([0.0, 0.04, 0.08])
    track = labels.combine_dims((t, np.array([0.1, 0.2, 0.3])), (t[:2], np.array([0.5, 0.6])),
                                "x.arff")
    np.testing.assert_array_equal(track.valid, [True, True, False])
    np.testing.assert_allclose(track.arousal, [0.1, 0.2, 0.3])
    with pytest.raises(errors.UserError, match="x.arff.*same time stamps"):
        labels.combine_dims((t, np.zeros(3)), (t * 2, np.zeros(3)), "x.arff")
