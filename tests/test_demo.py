"""`make demo` end to end at a tiny scale: the real binary `python -m ast_net.demo` in a fresh
process, run twice in the same directory.

Three 100-frame synthetic videos (one per split), 2 training steps on 10-frame clips, then the
full prediction on the real sample video WolfgangLanger_Pexels.mp4 (472 frames). The first run
must print the CC table and every path as the README shows it (relative: `demo_out/...`) and
write every promised file; the second must resume, skipping every finished step.
"""

import glob
import os
import re
import subprocess
import sys
import time

import pandas as pd
import pytest

OUT = "demo_out"
TINY = ["--frames=100", "--train_videos=1", "--dev_videos=1", "--test_videos=1",
        "--num_steps=2", "--clip_length=10", "--frame_step=2"]
VIDEO = "WolfgangLanger_Pexels"
VIDEO_FRAMES = 472
COLUMNS = ["frame", "timestamp_s", "face_id", "face_present", "valence", "arousal",
           "box_x", "box_y", "box_w", "box_h"]


def _demo(cwd):
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "ast_net.demo", f"--out_dir={OUT}", *TINY],
                          cwd=cwd, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    # Beam's RunInference warns on every worker that it cannot measure memory: noise, dropped.
    assert "Resource module is not available" not in proc.stderr, proc.stderr[-2000:]
    return proc.stdout, seconds


def _mtimes(paths):
    return {p: os.path.getmtime(p) for p in paths}


@pytest.mark.slow  # Real binaries end to end, over 20 s.
def test_demo_runs_end_to_end_then_resumes(tmp_path):
    out, first_seconds = _demo(tmp_path)
    root = tmp_path / OUT

    # The CC table of step 5, both dimensions, with scores that are correlations.
    assert "AST-Net on synthetic face videos, test split" in out
    assert re.search(r"^dimension +Max CC +Min CC +Mean CC +Mean CCC +Pooled CCC +RMSE +videos$",
                     out, re.M), out
    printed = {}
    for dim in ("valence", "arousal"):
        row = re.search(rf"^{dim} +(\S+) +(\S+) +(\S+) +(\S+) +\S+ +\S+ +1$", out, re.M)
        assert row, out
        max_cc, min_cc, mean_cc, mean_ccc = map(float, row.groups())
        # One test video: its CC is the max, the min and the mean (checked against the
        # per-video CSV below).
        assert max_cc == min_cc == mean_cc, row.group(0)
        printed[dim] = (mean_cc, mean_ccc)

    # Paths printed as the README shows them: relative to the current directory.
    for line in ("per-video scores: demo_out/train/eval/test_per_video.csv",
                 "exported demo_out/export/1",
                 f"csv: demo_out/predictions/{VIDEO}.csv",
                 f"plot: demo_out/predictions/{VIDEO}.png"):
        assert line in out.splitlines(), (line, out)
    assert f"everything is in {OUT}" in out
    assert str(tmp_path) not in out, out

    # Every promised output.
    assert (root / "videos" / "synthetic_manifest.json").is_file()
    assert (root / "faces" / "manifest.json").is_file()
    faces = sorted(glob.glob(str(root / "faces" / "*.tfrecord")))
    features = sorted(glob.glob(str(root / "features" / "*.tfrecord")))
    assert [os.path.basename(p).split("-")[0] for p in faces] == ["dev", "test", "train"]
    assert [os.path.basename(p) for p in features] == [os.path.basename(p) for p in faces]
    checkpoints = glob.glob(str(root / "train" / "checkpoints" / "ckpt-2.index"))
    assert checkpoints, os.listdir(root / "train" / "checkpoints")
    per_video = pd.read_csv(root / "train" / "eval" / "test_per_video.csv")
    assert sorted(per_video["dimension"]) == ["arousal", "valence"]
    for _, r in per_video.iterrows():  # The printed table is the CSV's one video.
        assert printed[r["dimension"]] == pytest.approx((r["CC"], r["CCC"]), abs=1.5e-4), r
    export = root / "export"
    assert sorted(os.listdir(export)) == ["1"]
    assert (export / "1" / "saved_model.pb").is_file()
    assert glob.glob(str(export / "1" / "variables" / "variables.index"))
    predictions = pd.read_csv(root / "predictions" / f"{VIDEO}.csv")
    # The original 10 columns first, then confidence, 5 landmarks (x, y) and 7 emotions.
    assert list(predictions.columns[:10]) == COLUMNS and len(predictions.columns) == 28
    assert predictions.columns[10] == "confidence"
    assert len(predictions) == VIDEO_FRAMES  # One face: one row per frame.
    assert predictions["frame"].tolist() == list(range(VIDEO_FRAMES))
    assert predictions["valence"].between(-1, 1).all() and predictions["arousal"].notna().all()
    with open(root / "predictions" / f"{VIDEO}.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"

    # A second run resumes: every step says it skipped, nothing finished is rewritten.
    kept = _mtimes(glob.glob(str(root / "faces" / ".work" / "parts" / "*")) + features
                   + [str(root / "predictions" / f"{VIDEO}.csv")]
                   + glob.glob(str(root / "train" / "checkpoints" / "*")))
    assert len(kept) >= 3 + 3 + 1 + 2
    again, second_seconds = _demo(tmp_path)
    sections = re.split(r"^=== ", again, flags=re.M)[1:]
    assert [s[:3] for s in sections] == [f"{i}/7" for i in range(1, 8)], again
    assert "already there, skipped" in sections[0]
    assert "3 videos ok" in sections[1]
    assert "0 shards written, 3 already done" in sections[2]
    assert "resuming from step 2" in sections[3] and "trained to step 2" in sections[3]
    assert "AST-Net on synthetic face videos, test split" in sections[4]
    assert "version 1 already there (step 2), skipped" in sections[5]
    assert "skipped" in sections[6] and f"csv: demo_out/predictions/{VIDEO}.csv" in sections[6]
    assert _mtimes(kept) == kept
    assert sorted(os.listdir(export)) == ["1"]
    assert second_seconds < first_seconds, (first_seconds, second_seconds)


def test_demo_bad_sizes_are_one_error_line_and_exit_2(tmp_path):
    runs = {("--frames=60",): "error: --frames=60 is too short for training clips of "
                              "--clip_length=50 x --frame_step=10: needs at least 492",
            ("--train_videos=0",): "error: --train_videos, --dev_videos and --test_videos "
                                   "must be >= 1, got 0, 2, 2"}
    for flags, expected in runs.items():
        proc = subprocess.run([sys.executable, "-m", "ast_net.demo", f"--out_dir={OUT}", *flags],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2, (flags, proc.stderr[-2000:])
        lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert lines == [expected], (flags, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (tmp_path / OUT).exists()  # Checked before anything is written.
