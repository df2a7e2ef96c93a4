"""Tests of the label file readers on small files written in each exact on-disk format.

Every format gets the awkward details it meets in the wild: BOM, CRLF endings, blank trailing
lines, quoted fields, trailing spaces in headers and values, NaN / missing values; and bad files
must give one UserError line naming the file and the line number.
"""

import numpy as np
import pytest

from ast_net import errors
from ast_net.data import labels, labels_readers

BOM = b"\xef\xbb\xbf"


def _write(tmp_path, name, text, crlf=False, bom=False):
    data = text.replace("\n", "\r\n") if crlf else text
    path = tmp_path / name
    path.write_bytes((BOM if bom else b"") + data.encode("utf-8"))
    return path


def test_avec2012_dat(tmp_path):
    aro = _write(tmp_path, "labels_continuous_train001_arousal.dat",
                 "0.1\n  0.2  \nNaN\n-0.25\n\n\n", crlf=True, bom=True)
    val = _write(tmp_path, "labels_continuous_train001_valence.dat", "0.5\n0.6\n0.7\n")
    track = labels_readers.read_avec2012(aro, val)
    # Times are line / 49.979 fps; valence is one line shorter -> last sample unlabelled.
    np.testing.assert_allclose(track.times_s, [0, 1 / 49.979, 2 / 49.979, 3 / 49.979])
    np.testing.assert_allclose(track.arousal[[0, 1, 3]], [0.1, 0.2, -0.25])
    np.testing.assert_array_equal(track.valid, [True, True, False, False])
    assert not track.frame_indexed


def test_avec2012_bad_line(tmp_path):
    bad = _write(tmp_path, "bad.dat", "0.1\n0.2\n0.3 0.4\n")
    with pytest.raises(errors.UserError, match=r"bad\.dat, line 3: expected one number"):
        labels_readers.read_avec2012_dat(bad)
    bad = _write(tmp_path, "bad2.dat", "0.1\nabc\n")
    with pytest.raises(errors.UserError, match=r"bad2\.dat, line 2: expected a label value"):
        labels_readers.read_avec2012_dat(bad)
    with pytest.raises(errors.UserError, match="empty label file"):
        labels_readers.read_avec2012_dat(_write(tmp_path, "empty.dat", "\n\n"))
    with pytest.raises(errors.UserError, match="missing.dat: cannot read"):
        labels_readers.read_avec2012_dat(tmp_path / "missing.dat")


ARFF = """@relation GOLDSTANDARD

@attribute Instance_name string
@attribute frameTime numeric
@attribute GoldStandard numeric

@data

dev_1,0.00,0.1
'dev_1',0.04,-0.022925
dev_1 , 0.08 , ?
dev_1,0.12,0.3

"""


def test_recola_arff_exact_format(tmp_path):
    times, values = labels_readers.read_recola_arff(
        _write(tmp_path, "dev_1.arff", ARFF, crlf=True, bom=True))
    np.testing.assert_allclose(times, [0.0, 0.04, 0.08, 0.12])
    np.testing.assert_allclose(values[[0, 1, 3]], [0.1, -0.022925, 0.3])
    assert np.isnan(values[2])


def test_recola_arff_pair_resampled_at_25fps_frames(tmp_path):
    (tmp_path / "arousal").mkdir()
    aro = _write(tmp_path / "arousal", "dev_1.arff", ARFF)
    val = _write(tmp_path, "dev_1.arff", ARFF.replace("0.3\n", "0.5\n"))
    track = labels_readers.read_recola(aro, val)
    # Frames at 50 fps: 0.02 is half-way between 0.1 and -0.022925 -> 0.0385375.
    v, a, mask = labels.resample(track, [0.0, 0.02, 0.06, 0.12, 0.16])
    np.testing.assert_array_equal(mask, [1, 1, 0, 1, 0])
    np.testing.assert_allclose(a[:2], [0.1, 0.0385375], atol=1e-6)
    np.testing.assert_allclose(v[3], 0.5, atol=1e-6)


def test_recola_arff_errors(tmp_path):
    no_data = _write(tmp_path, "x.arff", "@relation X\n@attribute frameTime numeric\n")
    with pytest.raises(errors.UserError, match="x.arff: expected an ARFF file with a '@data'"):
        labels_readers.read_recola_arff(no_data)
    short = _write(tmp_path, "y.arff", ARFF.replace("dev_1,0.12,0.3", "dev_1,0.12"))
    with pytest.raises(errors.UserError, match=r"y\.arff, line 12: expected 3 comma-separated"):
        labels_readers.read_recola_arff(short)
    back = _write(tmp_path, "z.arff", ARFF.replace("0.12,0.3", "0.02,0.3"))
    with pytest.raises(errors.UserError, match=r"z\.arff, line 12: expected frameTime incr"):
        labels_readers.read_recola_arff(back)


RECOLA_CSV = ("time;FM1 ;FM2 ;FM3 ;FF1 ;FF2 ;FF3\n"
              "0.00;0.1;0.2;0.3;0.4;0.5;0.6\n"
              "0.04;0.2 ;NaN;0.2;0.2;0.2;0.2 \n"
              "0.08;\"0.6\";;;;;\n"
              "0.12;;;;;;\n")


def test_recola_original_csv_averages_raters(tmp_path):
    path = _write(tmp_path, "P16.csv", RECOLA_CSV, crlf=True, bom=True)
    times, mean, raters = labels_readers.read_recola_csv(path)
    np.testing.assert_allclose(times, [0.0, 0.04, 0.08, 0.12])
    # Row 1: mean of 0.1..0.6 = 0.35; row 2: five raters at 0.2; row 3: only FM1 (0.6).
    np.testing.assert_allclose(mean[:3], [0.35, 0.2, 0.6])
    assert np.isnan(mean[3])
    assert list(raters) == ["FM1", "FM2", "FM3", "FF1", "FF2", "FF3"]
    np.testing.assert_allclose(raters["FF3"][:2], [0.6, 0.2])
    track = labels_readers.read_recola(path, path)
    np.testing.assert_array_equal(track.valid, [True, True, True, False])
    assert set(track.raters) == {"arousal", "valence"}


def test_recola_csv_bad_header_and_row(tmp_path):
    with pytest.raises(errors.UserError, match=r"h\.csv, line 1: expected header 'time;FM1"):
        labels_readers.read_recola_csv(_write(tmp_path, "h.csv", "t,FM1\n0,1\n"))
    bad = _write(tmp_path, "r.csv", "time;FM1 ;FM2 \n0.0;0.1;0.2\n0.04;0.1\n")
    with pytest.raises(errors.UserError, match=r"r\.csv, line 3: expected 3 ';'-separated"):
        labels_readers.read_recola_csv(bad)


def test_affwild2_text(tmp_path):
    path = _write(tmp_path, "10-60-1280x720_left.txt",
                  "valence,arousal\n0.5,0.25\n-5,-5\n\"-0.3\",0.1 \n-1,1\n\n", crlf=True,
                  bom=True)
    track = labels_readers.read_affwild2(path)
    assert track.frame_indexed
    np.testing.assert_array_equal(track.valid, [True, False, True, True])
    v, a, mask = labels.resample(track, np.arange(6) / 30.0)  # video longer than labels
    np.testing.assert_array_equal(mask, [1, 0, 1, 1, 0, 0])
    np.testing.assert_allclose(v, [0.5, 0, -0.3, -1, 0, 0], atol=1e-6)
    np.testing.assert_allclose(a, [0.25, 0, 0.1, 1, 0, 0], atol=1e-6)
    mm = labels.length_mismatch(track, np.arange(3) / 30.0)  # video shorter than labels
    assert mm == labels.LengthMismatch(0, 1)


def test_affwild2_errors(tmp_path):
    with pytest.raises(errors.UserError, match=r"a\.txt, line 1: expected header 'valence,ar"):
        labels_readers.read_affwild2(_write(tmp_path, "a.txt", "arousal,valence\n0,0\n"))
    with pytest.raises(errors.UserError, match=r"b\.txt, line 3: expected arousal in \[-1, 1\]"):
        labels_readers.read_affwild2(_write(tmp_path, "b.txt", "valence,arousal\n0,0\n0,1.5\n"))


def test_sewa_csv(tmp_path):
    path = _write(tmp_path, "Train_01.csv",
                  "Train_01;0.000;0.1;0.2;0.3\n\"Train_01\";0.100 ;0.3;0.4;0.5\n"
                  "Train_01;0.200;nan;0.6;0.7\n\n", crlf=True, bom=True)
    track = labels_readers.read_sewa(path)
    np.testing.assert_allclose(track.times_s, [0.0, 0.1, 0.2])
    np.testing.assert_allclose(track.arousal[:2], [0.1, 0.3])  # arousal is the 3rd column
    np.testing.assert_allclose(track.valence, [0.2, 0.4, 0.6])
    np.testing.assert_array_equal(track.valid, [True, True, False])
    # 25 fps frames: 0.04 is 40% of the way from 0.2 to 0.4 -> valence 0.28.
    v, a, mask = labels.resample(track, [0.0, 0.04, 0.12, 0.2])
    np.testing.assert_array_equal(mask, [1, 1, 0, 0])
    np.testing.assert_allclose(v[1], 0.28, atol=1e-6)
    np.testing.assert_allclose(a[1], 0.18, atol=1e-6)


def test_sewa_bad_row(tmp_path):
    bad = _write(tmp_path, "Devel_02.csv", "Devel_02;0.0;0.1;0.2;0.3\nDevel_02,0.1,0.1,0.2\n")
    with pytest.raises(errors.UserError, match=r"Devel_02\.csv, line 2: expected 'instance"):
        labels_readers.read_sewa(bad)


def test_generic_csv_frame_column(tmp_path):
    path = _write(tmp_path, "clip.csv",
                  '"frame","valence ","arousal"\n0,0.1,0.2\n1,NaN,0.3\n2,"0.5",0.6\n\n',
                  crlf=True, bom=True)
    track = labels_readers.read_generic_csv(path)
    assert track.frame_indexed
    np.testing.assert_array_equal(track.frames, [0, 1, 2])
    np.testing.assert_array_equal(track.valid, [True, False, True])


def test_generic_csv_time_column_semicolons(tmp_path):
    path = _write(tmp_path, "clip.csv", "Time ;Arousal;Valence\n0.0;0.2;0.0\n0.5;0.4;1.0\n")
    track = labels_readers.read_generic_csv(path)
    assert not track.frame_indexed
    v, a, mask = labels.resample(track, [0.25])
    np.testing.assert_allclose([v[0], a[0]], [0.5, 0.3], atol=1e-6)


def test_generic_csv_errors(tmp_path):
    with pytest.raises(errors.UserError, match=r"h\.csv, line 1: expected a header with 'frame'"):
        labels_readers.read_generic_csv(_write(tmp_path, "h.csv", "t,valence,arousal\n0,0,0\n"))
    with pytest.raises(errors.UserError, match=r"f\.csv, line 3: expected a frame index"):
        labels_readers.read_generic_csv(
            _write(tmp_path, "f.csv", "frame,valence,arousal\n0,0,0\n1.5,0,0\n"))


def test_generic_csv_header_as_a_comment(tmp_path):
    # numpy.savetxt(..., header="made by hand\nframe,valence,arousal", delimiter=",", fmt=...)
    path = _write(tmp_path, "c.csv", "# made by hand\n# frame,valence,arousal\n0,0.1,0.2\n"
                                     "# a note between rows\n1,0.3,0.4\n")
    track = labels_readers.read_generic_csv(path)
    np.testing.assert_array_equal(track.frames, [0, 1])
    np.testing.assert_allclose(track.valence, [0.1, 0.3])
    np.testing.assert_allclose(track.arousal, [0.2, 0.4])
    # A plain header after a comment line is the header; the comment stays a comment.
    path = _write(tmp_path, "d.csv", "# exported 2026-12-04\ntime;valence;arousal\n0.0;1;2\n")
    track = labels_readers.read_generic_csv(path)
    np.testing.assert_allclose(track.times_s, [0.0])
    np.testing.assert_allclose([track.valence[0], track.arousal[0]], [1.0, 2.0])


def test_generic_csv_comment_header_errors(tmp_path):
    with pytest.raises(errors.UserError, match=r"e\.csv, line 1: expected a header with 'frame' "
                                               r"or 'time', 'valence' and 'arousal' columns \(or "
                                               r"such a '# \.\.\.' comment line\), got '# x,y'"):
        labels_readers.read_generic_csv(_write(tmp_path, "e.csv", "# x,y\n0,0\n"))
    with pytest.raises(errors.UserError, match=r"n\.csv: expected data rows after the header"):
        labels_readers.read_generic_csv(_write(tmp_path, "n.csv", "# frame,valence,arousal\n"))
