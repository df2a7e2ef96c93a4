"""Readers' error messages in full and their less common but valid inputs (issue 15).

Every bad file must give the one UserError line naming the file, the line and what was expected;
here each message is compared whole (written out by hand from the formats), so a wrong line
number, a lost file name or a wrong field name is a failure. Valid variants: a RECOLA CSV with
one rater, a trailing ';' or an empty rater value; SEWA rows without the liking column; the
generic CSV's alternative column names and delimiters; AVEC 2012 at another frame rate.
"""

import numpy as np
import pytest

from ast_net import errors
from ast_net.data import labels_readers


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def _error(fn, path):
    with pytest.raises(errors.UserError) as e:
        fn(path)
    return str(e.value)


# RECOLA original CSV --------------------------------------------------------------------------


def test_recola_csv_one_rater_trailing_semicolon_and_empty_values(tmp_path):
    times, mean, raters = labels_readers.read_recola_csv(
        _write(tmp_path, "one.csv", "time;FM1\n0;0.5\n0.04;0.7\n"))
    np.testing.assert_allclose(times, [0.0, 0.04])
    np.testing.assert_allclose(mean, [0.5, 0.7])
    assert list(raters) == ["FM1"]
    # A trailing ';' on every row is not a rater.
    times, mean, raters = labels_readers.read_recola_csv(
        _write(tmp_path, "t.csv", "time;FM1 ;FM2 \n0;0.1;0.3;\n0.04;0.2;0.4;\n"))
    np.testing.assert_allclose(mean, [0.2, 0.3])
    np.testing.assert_allclose(raters["FM2"], [0.3, 0.4])
    # An empty last value is a missing rating (NaN), averaged over the others; none: NaN.
    times, mean, raters = labels_readers.read_recola_csv(
        _write(tmp_path, "e.csv", "time;FM1;FM2\n0;0.1;\n0.04;;\n0.08;0.2;0.6\n"))
    np.testing.assert_allclose(mean[[0, 2]], [0.1, 0.4])
    assert np.isnan(mean[1]) and np.isnan(raters["FM2"][0])


@pytest.mark.parametrize("text,message", [
    ("time\n0\n", "line 1: expected header 'time;FM1 ;FM2 ;...' (';'-separated, first column "
                  "time), got 'time'"),
    ("t;FM1\n0;1\n", "line 1: expected header 'time;FM1 ;FM2 ;...' (';'-separated, first "
                     "column time), got 't;FM1'"),
    ("time;FM1\n0;0.1\n\n0.08;0.2\n", "line 3: expected a data row, got a blank line"),
    ("time;FM1;FM2\n0;0.1;0.2;0.3;\n", "line 2: expected 3 ';'-separated values (time + 2 "
                                       "raters), got 5"),
    ("time;FM1\nabc;0.1\n", "line 2: expected time as a number, got 'abc'"),
    ("time;FM1 ;FM2 \n0;0.1;x\n", "line 2: expected rater FM2 as a number, got 'x'"),
    ("time;FM1\n0;0.1\n0.04;0.2\n0.04;0.3\n", "line 4: expected time increasing, got 0.04 "
                                              "after 0.04"),
])
def test_recola_csv_errors_in_full(tmp_path, text, message):
    path = _write(tmp_path, "r.csv", text)
    assert _error(labels_readers.read_recola_csv, path) == f"{path}, {message}"


def test_recola_csv_header_only(tmp_path):
    path = _write(tmp_path, "h.csv", "time;FM1\n")
    assert _error(labels_readers.read_recola_csv, path) == (
        f"{path}: expected data rows after the header, found none")


# SEWA -----------------------------------------------------------------------------------------


def test_sewa_without_liking_column(tmp_path):
    track = labels_readers.read_sewa(_write(tmp_path, "s.csv", "S;0.0;0.1;0.2\nS;0.1;0.3;0.4\n"))
    np.testing.assert_allclose(track.times_s, [0.0, 0.1])
    np.testing.assert_allclose(track.arousal, [0.1, 0.3])
    np.testing.assert_allclose(track.valence, [0.2, 0.4])
    assert track.source.endswith("s.csv")


@pytest.mark.parametrize("text,message", [
    ("S;0;0;0;0\n\nS;0.2;0;0;0\n", "line 2: expected a data row, got a blank line"),
    ("S;0;0\n", "line 1: expected 'instance_name;timestamp;arousal;valence;liking' (5 "
                "';'-separated values), got 3"),
    ("S;0;0;0;0;0\n", "line 1: expected 'instance_name;timestamp;arousal;valence;liking' (5 "
                      "';'-separated values), got 6"),
    ("S;x;0;0;0\n", "line 1: expected timestamp as a number, got 'x'"),
    ("S;0;y;0;0\n", "line 1: expected arousal as a number, got 'y'"),
    ("S;0;0;z;0\n", "line 1: expected valence as a number, got 'z'"),
    ("S;0.1;0;0;0\nS;0.1;0;0;0\n", "line 2: expected timestamp increasing, got 0.1 after 0.1"),
])
def test_sewa_errors_in_full(tmp_path, text, message):
    path = _write(tmp_path, "w.csv", text)
    assert _error(labels_readers.read_sewa, path) == f"{path}, {message}"


# Generic CSV ----------------------------------------------------------------------------------


@pytest.mark.parametrize("header,delim,frame_indexed", [
    ("frame_index,valence,arousal", ",", True), ("frame_id;arousal;valence", ";", True),
    ("timestamp\tvalence\tarousal", "\t", False), ("time_s,valence,arousal", ",", False),
    ("seconds;valence;arousal", ";", False),
    ("time,frame,valence,arousal", ",", True),  # frame wins over time
])
def test_generic_csv_column_names_and_delimiters(tmp_path, header, delim, frame_indexed):
    names = header.split(delim)
    row = {"valence": "0.25", "arousal": "-0.5"}
    lines = [delim.join(row.get(n, str(k)) for n in names) for k in (0, 2)]
    track = labels_readers.read_generic_csv(
        _write(tmp_path, "g.csv", header + "\n" + "\n".join(lines) + "\n"))
    assert track.frame_indexed == frame_indexed
    keys = track.frames if frame_indexed else track.times_s
    np.testing.assert_array_equal(keys, [0, 2])
    np.testing.assert_allclose(track.valence, [0.25, 0.25])
    np.testing.assert_allclose(track.arousal, [-0.5, -0.5])


@pytest.mark.parametrize("text,message", [
    ("frame,valence,arousal\n0,0,0\n\n2,0,0\n", "line 3: expected a data row, got a blank line"),
    ("frame,valence,arousal\n0,0\n", "line 2: expected 3 values like the header, got 2"),
    ("frame,valence,arousal\n-1,0,0\n", "line 2: expected a frame index (integer >= 0), got "
                                        "'-1'"),
    ("frame,valence,arousal\nnan,0,0\n", "line 2: expected a frame index (integer >= 0), got "
                                         "'nan'"),
    ("time,valence,arousal\n0,0,0\n?,0,0\n", "line 3: expected a time in seconds, got '?'"),
    ("time,valence,arousal\n0,v,0\n", "line 2: expected valence as a number, got 'v'"),
    ("time,valence,arousal\n0,0,a\n", "line 2: expected arousal as a number, got 'a'"),
    ("frame,valence,arousal\n0,0,0\n3,0,0\n3,0,0\n", "line 4: expected frame increasing, got 3 "
                                                     "after 3"),
    ("time;valence;arousal\n0.5;0;0\n0.25;0;0\n", "line 3: expected time increasing, got 0.25 "
                                                  "after 0.5"),
    ("valence,arousal\n0,0\n", "line 1: expected a header with 'frame' or 'time', 'valence' and "
                               "'arousal' columns (or such a '# ...' comment line), got "
                               "'valence,arousal'"),
    ("frame,valence\n0,0\n", "line 1: expected a header with 'frame' or 'time', 'valence' and "
                             "'arousal' columns (or such a '# ...' comment line), got "
                             "'frame,valence'"),
])
def test_generic_csv_errors_in_full(tmp_path, text, message):
    path = _write(tmp_path, "g.csv", text)
    assert _error(labels_readers.read_generic_csv, path) == f"{path}, {message}"


def test_generic_csv_header_only(tmp_path):
    path = _write(tmp_path, "g.csv", "frame,valence,arousal\n")
    assert _error(labels_readers.read_generic_csv, path) == (
        f"{path}: expected data rows after the header, found none")


# AVEC 2012 ------------------------------------------------------------------------------------


def test_avec2012_other_frame_rate_and_source(tmp_path):
    a = _write(tmp_path, "labels_continuous_devel001_arousal.dat", "0.1\n0.2\n0.3\n")
    v = _write(tmp_path, "labels_continuous_devel001_valence.dat", "-0.1\n-0.2\n-0.3\n")
    track = labels_readers.read_avec2012(a, v, fps=25.0)
    np.testing.assert_allclose(track.times_s, [0.0, 0.04, 0.08])
    np.testing.assert_allclose(track.arousal, [0.1, 0.2, 0.3])
    np.testing.assert_allclose(track.valence, [-0.1, -0.2, -0.3])
    assert track.source == str(a)
    track = labels_readers.read_avec2012(a, v)
    np.testing.assert_allclose(track.times_s, np.arange(3) / 49.979)
    path = _write(tmp_path, "x.dat", "0.1\nzz\n")
    assert _error(labels_readers.read_avec2012_dat, path) == (
        f"{path}, line 2: expected a label value as a number, got 'zz'")


# RECOLA ARFF: header variants (issue 15, second round) ----------------------------------------


def _arff(tmp_path, attributes, rows, name="g.arff"):
    head = "@relation GOLDSTANDARD\n" + "".join(f"@attribute {a}\n" for a in attributes)
    return _write(tmp_path, name, head + "@data\n" + rows)


def _assert_arff_track(path, times, values):
    got_times, got_values = labels_readers.read_recola_arff(path)
    np.testing.assert_allclose(got_times, times)
    np.testing.assert_allclose(got_values, values)


def test_recola_arff_comment_lines_in_the_header(tmp_path):
    path = _write(tmp_path, "c.arff", "% written by hand\n@relation GOLDSTANDARD\n"
                  "  % the columns:\n@attribute Instance_name string\n"
                  "@attribute frameTime numeric\n@attribute GoldStandard numeric\n%\n@data\n"
                  "dev_1,0.00,0.1\ndev_1,0.04,0.2\n")
    _assert_arff_track(path, [0.0, 0.04], [0.1, 0.2])


def test_recola_arff_quoted_names_and_gold_standard_not_last(tmp_path):
    # Quoted attribute names are unquoted; GoldStandard is taken even when another numeric
    # column follows it.
    path = _arff(tmp_path, ["'Instance_name' string", "'frameTime' numeric",
                            '"GoldStandard" numeric', "Confidence numeric"],
                 "dev_1,0.00,0.1,0.9\ndev_1,0.04,0.2,0.8\n")
    _assert_arff_track(path, [0.0, 0.04], [0.1, 0.2])


def test_recola_arff_without_gold_standard_takes_the_last_numeric_column(tmp_path):
    # A string column after the values is not a value column; the one numeric column is.
    path = _arff(tmp_path, ["frameTime numeric", "Arousal numeric", "Instance_name string"],
                 "0.00,0.1,dev_1\n0.04,0.2,dev_1\n")
    _assert_arff_track(path, [0.0, 0.04], [0.1, 0.2])
    path = _arff(tmp_path, ["frameTime numeric", "A numeric", "B numeric"],
                 "0.00,0.1,0.5\n0.04,0.2,0.6\n")
    np.testing.assert_allclose(labels_readers.read_recola_arff(path)[1], [0.5, 0.6])


@pytest.mark.parametrize("kind", ["real", "REAL", "integer", "INTEGER", "numeric"])
def test_recola_arff_value_attribute_types(tmp_path, kind):
    path = _arff(tmp_path, ["Instance_name string", "frameTime numeric", f"GoldStandard {kind}"],
                 "dev_1,0.00,1\ndev_1,0.04,-2\n")
    _assert_arff_track(path, [0.0, 0.04], [1.0, -2.0])


def test_recola_arff_quoted_instance_name_holding_a_comma(tmp_path):
    path = _arff(tmp_path, ["Instance_name string", "frameTime numeric", "GoldStandard numeric"],
                 "'dev,1',0.00,0.1\n'dev,1',0.04,0.2\n")
    _assert_arff_track(path, [0.0, 0.04], [0.1, 0.2])


def test_recola_arff_header_errors_in_full(tmp_path):
    path = _write(tmp_path, "a.arff", "@relation x\n@attribute frameTime\n@data\n0\n")
    assert _error(labels_readers.read_recola_arff, path) == (
        f"{path}, line 2: expected '@attribute <name> <type>', got '@attribute frameTime'")
    path = _write(tmp_path, "b.arff", "@relation x\nframeTime,GoldStandard\n@data\n0,0\n")
    assert _error(labels_readers.read_recola_arff, path) == (
        f"{path}, line 2: expected an ARFF header line (@relation, @attribute, @data), got "
        f"'frameTime,GoldStandard'")
    # No time attribute (but a GoldStandard one): named in the message, not a crash.
    path = _arff(tmp_path, ["Instance_name string", "GoldStandard numeric"], "dev_1,0.1\n")
    assert _error(labels_readers.read_recola_arff, path) == (
        f"{path}: expected attributes 'frameTime numeric' and 'GoldStandard numeric', got "
        f"['Instance_name', 'GoldStandard']")
    # An attribute named X is shown as X in the column-count message.
    path = _arff(tmp_path, ["Instance_name string", "frameTime numeric", "GoldStandard numeric",
                            "X numeric"], "dev_1,0.0,0.1\n")
    assert _error(labels_readers.read_recola_arff, path) == (
        f"{path}, line 7: expected 4 comma-separated values (Instance_name, frameTime, "
        f"GoldStandard, X), got 3")


# Generic CSV: comment header, key errors, source ----------------------------------------------


def test_generic_csv_comment_header_without_a_space(tmp_path):
    track = labels_readers.read_generic_csv(
        _write(tmp_path, "c.csv", "#time,valence,arousal\n0.0,0.1,0.2\n0.5,0.3,0.4\n"))
    np.testing.assert_allclose(track.times_s, [0.0, 0.5])
    np.testing.assert_allclose(track.valence, [0.1, 0.3])
    np.testing.assert_allclose(track.arousal, [0.2, 0.4])


@pytest.mark.parametrize("text,message", [
    ("time,valence,arousal\n0,0,0\nabc,0,0\n", "line 3: expected time as a number, got 'abc'"),
    ("valence;arousal;frame\n0;0;x\n", "line 2: expected frame as a number, got 'x'"),
])
def test_generic_csv_key_not_a_number(tmp_path, text, message):
    path = _write(tmp_path, "k.csv", text)
    assert _error(labels_readers.read_generic_csv, path) == f"{path}, {message}"


@pytest.mark.parametrize("key", ["frame", "time"])
def test_generic_csv_source_is_the_file(tmp_path, key):
    path = _write(tmp_path, f"{key}.csv", f"{key},valence,arousal\n0,0.1,0.2\n1,0.3,0.4\n")
    track = labels_readers.read_generic_csv(path)
    assert track.source == str(path)
    assert track.frame_indexed == (key == "frame")
