"""Edge cases of `ast_net.data.labels` (resampling, length mismatch, text helpers) and of the
RECOLA ARFF / Aff-Wild2 readers, with expected values worked out by hand (issue 15).

Each case is one a plausible bug would get wrong: a one-sample track, a video of zero or one
frame, a gap exactly `max_gap_s` wide, a frame exactly between two samples (nearest keeps the
earlier), arousal and valence files of different lengths, quoted fields holding the delimiter,
a Latin-1 file, and error messages compared whole.
"""

import warnings

import numpy as np
import pytest

from ast_net import errors
from ast_net.data import labels, labels_readers


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def _error(fn, *args):
    with pytest.raises(errors.UserError) as e:
        fn(*args)
    return str(e.value)


# resample -------------------------------------------------------------------------------------


def test_one_sample_tracks():
    track = labels.make_track([0.3], [-0.2], "one", times_s=[0.5])
    assert track.step_s() == 0.0
    v, a, mask = labels.resample(track, [0.0, 0.5, 1.0])
    assert v.shape == a.shape == mask.shape == (3,)
    np.testing.assert_array_equal(mask, [0, 1, 0])
    np.testing.assert_allclose(v, [0.0, 0.3, 0.0], atol=1e-7)
    np.testing.assert_allclose(a, [0.0, -0.2, 0.0], atol=1e-7)
    frames = labels.make_track([0.3], [-0.2], "one", frames=[0])
    assert frames.step_s() == 0.0
    v, a, mask = labels.resample(frames, [0.0, 0.04])
    np.testing.assert_array_equal(mask, [1, 0])
    np.testing.assert_allclose(v, [0.3, 0.0], atol=1e-7)


def test_no_valid_label_and_no_frame():
    track = labels.make_track([np.nan, np.nan], [0.1, 0.2], "none", times_s=[0.0, 0.04])
    v, a, mask = labels.resample(track, [0.0, 0.02, 0.04])
    np.testing.assert_array_equal(mask, [0, 0, 0])
    np.testing.assert_array_equal(v, [0, 0, 0])
    v, a, mask = labels.resample(labels.make_track([1.0], [1.0], "x", times_s=[0.0]), [])
    assert v.shape == a.shape == mask.shape == (0,)
    assert (v.dtype, a.dtype, mask.dtype) == (np.float32, np.float32, np.int64)


def test_gap_exactly_max_gap_is_bridged_and_nearest_tie_keeps_the_earlier_sample():
    track = labels.make_track([0.0, np.nan, 0.8], [1.0, np.nan, 0.0], "gap",
                              times_s=[0.0, 0.25, 0.5])
    # Valid samples 0 and 0.5 s apart: bridged when max_gap_s = 0.5, not when 0.4.
    v, a, mask = labels.resample(track, [0.125, 0.25], max_gap_s=0.5)
    np.testing.assert_array_equal(mask, [1, 1])
    np.testing.assert_allclose(v, [0.2, 0.4], atol=1e-6)  # 1/4 and 1/2 of the way 0 -> 0.8
    np.testing.assert_allclose(a, [0.75, 0.5], atol=1e-6)
    v, a, mask = labels.resample(track, [0.125, 0.25], max_gap_s=0.4)
    np.testing.assert_array_equal(mask, [0, 0])
    v, a, mask = labels.resample(track, [0.25], method="nearest", max_gap_s=0.5)
    np.testing.assert_allclose([v[0], a[0]], [0.0, 1.0])  # tie: the earlier sample


# length_mismatch ------------------------------------------------------------------------------


def test_length_mismatch_by_hand():
    empty = labels.make_track([], [], "e", times_s=[])
    assert labels.length_mismatch(empty, [0.0, 0.04, 0.08]) == labels.LengthMismatch(3, 0)
    # 7 samples 40 ms apart: 0 .. 0.24 s.
    track = labels.make_track(np.zeros(7), np.zeros(7), "t", times_s=np.arange(7) * 0.04)
    assert labels.length_mismatch(track, []) == labels.LengthMismatch(0, 7)
    # One frame at 0: its period is the track's step 0.04; labels from 0.04 on are past it.
    assert labels.length_mismatch(track, [0.0]) == labels.LengthMismatch(0, 6)
    # Two frames 0.1 s apart: the video lasts until 0.2 s; labels 0.2 and 0.24 are past it.
    assert labels.length_mismatch(track, [0.0, 0.1]) == labels.LengthMismatch(0, 2)
    assert labels.length_mismatch(track, [0.0, 0.1]).total == 2
    frames = labels.make_track(np.zeros(5), np.zeros(5), "f", frames=np.arange(5))
    assert labels.length_mismatch(frames, [0] * 5, frame_indices=[2, 3, 4, 5, 6]) == \
        labels.LengthMismatch(2, 0)
    assert labels.length_mismatch(frames, [0, 0], frame_indices=[0, 1]) == \
        labels.LengthMismatch(0, 3)
    assert labels.length_mismatch(frames, []) == labels.LengthMismatch(0, 5)


# combine_dims and LabelTrack ------------------------------------------------------------------


def test_combine_dims_lengths_stamps_and_message():
    t3 = np.array([0.0, 0.04, 0.08])
    track = labels.combine_dims((t3[:2], np.array([0.1, 0.2])), (t3, np.array([1.0, 2.0, 3.0])),
                                source="src")
    np.testing.assert_allclose(track.times_s, t3)  # the longer file's stamps
    np.testing.assert_allclose(track.arousal[:2], [0.1, 0.2])
    assert np.isnan(track.arousal[2]) and track.source == "src"
    np.testing.assert_array_equal(track.valid, [True, True, False])
    # Stamps 50 µs apart are the same stamps.
    labels.combine_dims((t3, t3), (t3 + 5e-5, t3), source="s")
    msg = _error(labels.combine_dims, (t3, t3), (np.array([0.0, 0.04, 0.09]), t3), "s")
    assert msg == ("s: expected arousal and valence on the same time stamps, sample 2 is at "
                   "0.08 s in one and 0.09 s in the other")


def test_label_track_needs_exactly_one_clock():
    for kw in ({}, {"times_s": np.zeros(1), "frames": np.zeros(1)}):
        with pytest.raises(ValueError, match="^give exactly one of times_s or frames$"):
            labels.LabelTrack(np.zeros(1), np.zeros(1), np.ones(1, bool), "s", **kw)


# text helpers ---------------------------------------------------------------------------------


def test_split_fields_quotes():
    assert labels.split_fields('x, "a,b", c', ",") == ["x", "a,b", "c"]
    assert labels.split_fields("'ab',x", ",") == ["ab", "x"]
    assert labels.split_fields("'',1", ",") == ["", "1"]
    assert labels.split_fields("'a\",b", ",") == ["'a\"", "b"]


def test_parse_float_missing_markers_and_check_increasing():
    for s in ("", "NaN", "?", "N/A", "null", "None", " na "):
        assert np.isnan(labels.parse_float(s, "p", 1, "x")), s
    assert _error(labels.parse_float, "1,5", "p", 7, "a value") == (
        "p, line 7: expected a value as a number, got '1,5'")
    labels.check_increasing(np.array([0.5]), [1], "p", "t")
    assert _error(labels.check_increasing, np.array([0.5, 0.25]), [3, 4], "p", "t") == (
        "p, line 4: expected t increasing, got 0.25 after 0.5")
    assert _error(labels.check_increasing, np.array([0.5, 0.25, 0.9]), [3, 4, 5], "p", "t") == (
        "p, line 4: expected t increasing, got 0.25 after 0.5")


def test_read_lines_latin1_and_missing_file(tmp_path):
    path = tmp_path / "l.csv"
    path.write_bytes(b"# caf\xe9\nframe,valence,arousal\n0,0.1,0.2\n")
    assert labels.read_lines(path)[0] == (1, "# caf\xe9")
    track = labels_readers.read_generic_csv(path)
    np.testing.assert_allclose(track.valence, [0.1])
    missing = tmp_path / "none.csv"
    assert _error(labels.read_lines, missing) == (
        f"{missing}: cannot read label file (No such file or directory)")


# readers --------------------------------------------------------------------------------------


def test_affwild2_messages_and_source(tmp_path):
    path = _write(tmp_path, "a.txt", "valence,arousal\n0.1,0.2\n")
    assert labels_readers.read_affwild2(path).source == str(path)
    for text, what in (("x,0", "valence 'x'"), ("0,y", "arousal 'y'")):
        p = _write(tmp_path, "b.txt", f"valence,arousal\n0,0\n{text}\n")
        dim, got = what.split(" ")
        assert _error(labels_readers.read_affwild2, p) == (
            f"{p}, line 3: expected {dim} as a number, got {got}")
    p = _write(tmp_path, "c.txt", "valence,arousal\n0,0,0\n")
    assert _error(labels_readers.read_affwild2, p) == (
        f"{p}, line 2: expected 'valence,arousal' (2 values), got '0,0,0'")


def test_generic_header_delimiter_ties(tmp_path):
    # As many ';' (or tabs) as ',': the comma wins, and a column name may hold the others.
    for extra in ("p;q;r;s", "p\tq\tr\ts"):
        path = _write(tmp_path, "g.csv", f"time,valence,arousal,{extra}\n0,0.1,0.2,x\n")
        track = labels_readers.read_generic_csv(path)
        np.testing.assert_allclose([track.valence[0], track.arousal[0]], [0.1, 0.2])


ARFF = """@relation GOLDSTANDARD
@attribute Instance_name string
@attribute frameTime numeric
@attribute GoldStandard numeric
@data
{rows}"""


def test_recola_sources_and_arff_messages(tmp_path):
    a = _write(tmp_path, "arousal.arff", ARFF.format(rows="dev_1,0.00,0.1\ndev_1,0.04,0.2\n"))
    v = _write(tmp_path, "valence.arff", ARFF.format(rows="dev_1,0.00,0.3\ndev_1,0.04,0.4\n"))
    track = labels_readers.read_recola(a, v)
    assert track.source == str(a)
    np.testing.assert_allclose(track.valence, [0.3, 0.4])
    for rows, message in (
            ("dev_1,0.00\n", "line 6: expected 3 comma-separated values (Instance_name, "
                             "frameTime, GoldStandard), got 2"),
            ("dev_1,t,0.1\n", "line 6: expected frameTime as a number, got 't'"),
            ("dev_1,0.0,g\n", "line 6: expected GoldStandard as a number, got 'g'"),
            ("dev_1,0.04,0.1\ndev_1,0.0,0.1\n", "line 7: expected frameTime increasing, got 0 "
                                                "after 0.04")):
        p = _write(tmp_path, "x.arff", ARFF.format(rows=rows))
        assert _error(labels_readers.read_recola_arff, p) == f"{p}, {message}"
    p = _write(tmp_path, "y.arff", ARFF.format(rows="% only a comment\n"))
    assert _error(labels_readers.read_recola_arff, p) == (
        f"{p}: expected data rows after '@data', found none")


# second round (issue 15): the _EPS slack at its exact edges, dtypes, warnings ------------------


def test_frames_at_the_slack_edges_take_the_end_samples_exactly():
    track = labels.make_track([0.0, 1.0], [1.0, 0.0], "s", times_s=[0.04, 0.08])
    # 1 µs (the slack) before the first / after the last sample: inside, and the end sample's
    # value exactly (no extrapolation); 2 µs: outside.
    v, a, mask = labels.resample(track, [0.04 - 1e-6, 0.08 + 1e-6, 0.04 - 2e-6, 0.08 + 2e-6])
    np.testing.assert_array_equal(mask, [1, 1, 0, 0])
    np.testing.assert_array_equal(v, [0.0, 1.0, 0.0, 0.0])
    np.testing.assert_array_equal(a, [1.0, 0.0, 0.0, 0.0])
    # Half a microsecond after / before a sample: that sample's value exactly.
    v, a, mask = labels.resample(track, [0.04 + 5e-7, 0.08 - 5e-7])
    np.testing.assert_array_equal(mask, [1, 1])
    np.testing.assert_array_equal(v, [0.0, 1.0])
    np.testing.assert_array_equal(a, [1.0, 0.0])


def test_max_gap_zero_labels_only_frames_within_the_slack_of_a_sample():
    track = labels.make_track([0.2, 0.6], [0.1, 0.3], "u", times_s=[0.0, 2.5e-6])
    # Exactly 1 µs after the first sample, exactly 1 µs before the second (both count), and
    # 1.25 µs from both (in the unbridged gap).
    v, a, mask = labels.resample(track, [1e-6, 2.5e-6 - 1e-6, 1.25e-6], max_gap_s=0.0)
    np.testing.assert_array_equal(mask, [1, 1, 0])
    np.testing.assert_allclose(v, [0.2, 0.6, 0.0], rtol=1e-7)
    np.testing.assert_allclose(a, [0.1, 0.3, 0.0], rtol=1e-7)
    # Samples 0.5 µs apart (closer than the slack): a frame exactly on the middle one takes it.
    track = labels.make_track([0.2, 0.6, 1.0], [0.1, 0.3, 0.5], "u", times_s=[0.0, 5e-7, 1e-6])
    for method in ("linear", "nearest"):
        v, a, mask = labels.resample(track, [5e-7], method=method)
        np.testing.assert_array_equal(mask, [1])
        np.testing.assert_allclose([v[0], a[0]], [0.6, 0.3], rtol=1e-7)
    # Two samples 0.1 µs apart, a frame 0.5 µs before the first: the first sample's value.
    track = labels.make_track([0.2, 0.6], [0.1, 0.3], "u", times_s=[0.0, 1e-7])
    v, a, mask = labels.resample(track, [-5e-7])
    np.testing.assert_array_equal(mask, [1])
    np.testing.assert_allclose([v[0], a[0]], [0.2, 0.1], rtol=1e-7)


def test_gap_of_max_gap_plus_the_slack_is_bridged():
    track = labels.make_track([0.0, 1.0], [1.0, 0.0], "g", times_s=[0.0, 0.25 + 1e-6])
    v, a, mask = labels.resample(track, [0.125], max_gap_s=0.25)
    np.testing.assert_array_equal(mask, [1])
    np.testing.assert_allclose([v[0], a[0]], [0.5, 0.5], atol=1e-5)  # half way (0.125 / 0.25)


def test_one_sample_track_resamples_without_numpy_warnings():
    track = labels.make_track([0.3], [-0.2], "one", times_s=[0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v, a, mask = labels.resample(track, [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(mask, [0, 1, 0])
    np.testing.assert_allclose(v, [0.0, 0.3, 0.0], atol=1e-7)


def test_length_mismatch_at_the_slack_edges():
    # A frame 1 µs after the last label is not past the labels.
    track = labels.make_track([0, 0], [0, 0], "m", times_s=[0.0, 0.5])
    assert labels.length_mismatch(track, [0.0, 0.5 + 1e-6]) == labels.LengthMismatch(0, 0)
    # Frames 0 and 0.5 s: the video ends at 1 s; a label 1 µs before that is past it.
    track = labels.make_track([0] * 3, [0] * 3, "m", times_s=[0.0, 0.5, 1.0 - 1e-6])
    assert labels.length_mismatch(track, [0.0, 0.5]) == labels.LengthMismatch(0, 1)


def test_length_mismatch_of_float32_frame_times_keeps_the_slack():
    # float32 frame times (as a tensor gives them) at 1000 s: the video ends at 1001 s, and a
    # label 0.5 µs before that is within the 1 µs slack, so past the video.
    track = labels.make_track([0] * 3, [0] * 3, "m", times_s=[1000.0, 1000.5, 1001.0 - 5e-7])
    frames = np.array([1000.0, 1000.5], np.float32)
    assert labels.length_mismatch(track, frames) == labels.LengthMismatch(0, 1)


def test_make_track_dtypes_from_ints():
    track = labels.make_track([1, 0], [0, -1], "i", times_s=[0, 1])
    assert (track.valence.dtype, track.arousal.dtype, track.times_s.dtype) == (np.float64,) * 3
    np.testing.assert_array_equal(track.valence, [1.0, 0.0])
    np.testing.assert_array_equal(track.times_s, [0.0, 1.0])
    track = labels.make_track([0.5, 0.25], [0.5, 0.25], "f", frames=[0.0, 3.0])
    assert track.frames.dtype == np.int64
    np.testing.assert_array_equal(track.frames, [0, 3])


def test_combine_dims_names_the_first_stamp_beyond_the_tolerance():
    # Sample 1 differs by 50 µs (within the 100 µs tolerance), sample 2 by 10 ms.
    t = np.array([0.0, 0.04, 0.08])
    msg = _error(labels.combine_dims, (t, t), (np.array([0.0, 0.04005, 0.09]), t), "s")
    assert msg == ("s: expected arousal and valence on the same time stamps, sample 2 is at "
                   "0.08 s in one and 0.09 s in the other")


def test_split_fields_quote_characters():
    assert labels.split_fields("'a,b',c", ",", quotechar="'") == ["a,b", "c"]
    assert labels.split_fields('"a,b",c', ",") == ["a,b", "c"]
    # Only quotes are stripped: a field that begins and ends with the same letter is kept.
    assert labels.split_fields("XyX,1", ",") == ["XyX", "1"]
