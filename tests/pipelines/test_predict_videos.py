"""Batch prediction as a Beam job (pipelines/predict_videos_lib.py) on real short videos: the
CSV of each video is byte for byte the one `predict_lib.predict` writes for it, a re-run skips
the finished videos, a corrupt video is listed as failed while the others are done, and the
job ends with one UserError naming it."""

import os
import pathlib
import subprocess
import sys

import cv2
import pytest
from ast_net.pipelines import predict_videos_lib

from ast_net import errors, predict_lib, sample_media

REPO = pathlib.Path(__file__).resolve().parents[2]


def _clip(path, frames):
    cap = cv2.VideoCapture(sample_media.path("single_face.mp4"))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 360))
    for _ in range(frames):
        writer.write(cap.read()[1])
    writer.release()


def test_csvs_equal_ast_net_predict_rerun_skips_and_a_bad_video_is_listed(tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    _clip(videos / "a.mp4", 10)
    _clip(videos / "b.mp4", 14)
    (videos / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    reference = tmp_path / "reference"
    for name in ("a", "b"):
        predict_lib.predict([str(videos / f"{name}.mp4")], str(reference), progress=False)

    out = tmp_path / "out"
    config = predict_videos_lib.Config(inputs=[str(videos)], out_dir=str(out),
                                       direct_num_workers=1)
    with pytest.raises(errors.UserError, match=r"1 of 3 videos failed: .*bad\.mp4"):
        predict_videos_lib.predict_videos(config)
    err = capsys.readouterr().err
    assert [ln for ln in err.splitlines() if ln.startswith("failed: ")][0].startswith(
        f"failed: {videos / 'bad.mp4'}: ")
    for name in ("a", "b"):
        assert (out / f"{name}.csv").read_bytes() == (reference / f"{name}.csv").read_bytes()
        assert (out / f"{name}.png").exists() and (out / f"{name}.json").exists()
    assert not (out / "bad.csv").exists()

    mtimes = {n: (out / f"{n}.csv").stat().st_mtime_ns for n in ("a", "b")}
    os.remove(videos / "bad.mp4")
    summary = predict_videos_lib.predict_videos(config)
    assert (summary.videos, summary.predicted, summary.skipped) == (2, 0, 2)
    assert {n: (out / f"{n}.csv").stat().st_mtime_ns for n in ("a", "b")} == mtimes
    _clip(videos / "b.mp4", 12)  # Replaced: done again, the other one still skipped.
    summary = predict_videos_lib.predict_videos(config)
    assert (summary.predicted, summary.skipped) == (1, 1)
    again = tmp_path / "again"
    predict_lib.predict([str(videos / "b.mp4")], str(again), progress=False)
    assert (out / "b.csv").read_bytes() == (again / "b.csv").read_bytes()


def test_the_binary_lists_a_bad_video_and_ends_with_one_error_line(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    proc = subprocess.run(
        [sys.executable, "-m", "ast_net.pipelines.predict_videos", f"--video={videos}",
         f"--out_dir={tmp_path / 'out'}", "--direct_num_workers=1"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = proc.stderr.splitlines()
    assert [ln for ln in lines if ln.startswith("failed: ")][0].startswith(
        f"failed: {videos / 'bad.mp4'}: ")
    errors_out = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors_out) == 1 and errors_out[0].startswith("error: 1 of 1 videos failed")
