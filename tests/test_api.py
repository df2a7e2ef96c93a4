"""The notebook API (`ast_net/api.py`) on the real sample videos: its DataFrames are the CSVs
that the real `ast-net-predict` binary writes, its docstring examples run, bad input is one
line; and `--video='dir/**/*.mp4'` of the binary is recursive."""

import doctest
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import ast_net
from ast_net import api, errors, predict_lib, sample_media

BIN = os.path.dirname(sys.executable)
VIDEOS = ("WolfgangLanger_Pexels.mp4", "single_face.mp4")


def test_docstring_examples_run():
    """The examples of `ast_net/api.py` (one Predictor on WolfgangLanger_Pexels.mp4, frames
    from a decoder, a bad frame, `ast_net.predict_video`), as written."""
    result = doctest.testmod(api, optionflags=doctest.ELLIPSIS, report=True)
    assert result.attempted >= 10 and result.failed == 0


@pytest.mark.slow  # The real binary on two videos, then the API on both: over 20 s.
def test_dataframes_are_the_binarys_csvs_and_no_file_is_written(tmp_path, monkeypatch):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in VIDEOS:
        os.symlink(sample_media.path(name), videos / name)
    out = tmp_path / "binary"
    proc = subprocess.run([os.path.join(BIN, "ast-net-predict"), f"--video={videos}",
                           f"--out_dir={out}", "--progress=false"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]

    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    predictor = ast_net.Predictor()
    assert predictor.info.mode == "zero-shot" and predictor.info.checkpoint is None
    for name in VIDEOS:  # Two videos in a row with one Predictor: ids start from 0 again.
        frame = predictor.predict_video(str(videos / name))
        expected = pd.read_csv(out / (os.path.splitext(name)[0] + ".csv"))
        assert list(frame.columns) == list(expected.columns)
        pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    assert os.listdir(work) == [] and sorted(os.listdir(videos)) == sorted(VIDEOS)

    frame = predictor.predict_video(videos / VIDEOS[1], out_dir=tmp_path / "asked")
    binary_files = sorted(n for n in os.listdir(out) if n.startswith("single_face."))
    assert "single_face.png" in binary_files  # The same files as the binary's (and its plot).
    assert sorted(os.listdir(tmp_path / "asked")) == binary_files
    assert ((tmp_path / "asked" / "single_face.csv").read_bytes()
            == (out / "single_face.csv").read_bytes())
    pd.testing.assert_frame_equal(frame, pd.read_csv(out / "single_face.csv"))


def test_bad_options_fail_before_tensorflow_starts():
    with pytest.raises(TypeError, match="unknown option.* detect_evry; expected some of "
                                        "backbone, "):
        ast_net.Predictor(detect_evry=5)
    with pytest.raises(errors.UserError, match="--detect_every must be >= 1, got 0"):
        ast_net.predict_video("x.mp4", detect_every=0)


def test_frames_are_checked_one_by_one():
    good = np.zeros((4, 6, 3), np.uint8)
    frames = api._indexed([good, good, np.zeros((4, 6, 3), np.float32)], fps=10.0)
    assert [(i, t) for i, t, _ in [next(frames), next(frames)]] == [(0, 0.0), (1, 0.1)]
    with pytest.raises(errors.UserError, match=r"^frame 2: expected an RGB image, a uint8 "
                                               r"array of shape \(height, width, 3\), got "
                                               r"float32 \(4, 6, 3\)$"):
        next(frames)


def test_video_glob_is_recursive(tmp_path):
    for rel in ("a.mp4", "sub/b.mp4", "sub/deeper/c.mp4", "sub/deeper/c_annotated.mp4",
                "sub/notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    found = predict_lib.expand_inputs(f"{tmp_path}/**/*.mp4")
    assert found == [str(tmp_path / p) for p in ("a.mp4", "sub/b.mp4", "sub/deeper/c.mp4")]
