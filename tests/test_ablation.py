"""`ast-net-ablation` end to end on a tiny synthetic benchmark: two rows of Table 1 for a few
steps each, the table files, the rows' loss weights, and a re-run that trains nothing."""

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from ast_net.data import synthetic

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = ["la", "la_t_s"]
# The paper's weights (w1 = w2 = w3 = 10, λ = 1000, label 1) with the terms outside the row
# switched off, written out by hand from Table 1's row names.
WEIGHTS = {
    "la": {"label_weight": 1.0, "trend_weight": 0.0, "local_weight": 0.0, "global_weight": 0.0,
           "siamese_weight": 0.0},
    "la_t_s": {"label_weight": 1.0, "trend_weight": 10.0, "local_weight": 0.0,
               "global_weight": 0.0, "siamese_weight": 1000.0},
}
COLUMNS = ["row", "loss"] + [f"{d} {s} CC" for d in ("valence", "arousal")
                             for s in ("Max", "Min", "Mean")]


def _ablation(home, *extra):
    """The binary, with HOME=home and the paths given as `~/...` (as a user might type)."""
    cmd = [sys.executable, "-m", "ast_net.ablation", "--data_dir=~/syn", "--workdir=~/abl",
           f"--rows={','.join(ROWS)}", "--num_steps=4", "--split=test", *extra]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, HOME=str(home)))
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.fixture(scope="module")
def ablation_run(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    # 2 / 1 / 2 subjects (one video each) of 500-520 frames: the default config's twin clips
    # need (50 - 1) * 10 + 2 = 492 frames.
    synthetic.write_benchmark(str(home / "syn"), seed=5, num_subjects=5, videos_per_subject=1,
                              feature_dim=8, min_frames=500, max_frames=520,
                              splits="train=0.4,dev=0.2,test=0.4")
    return home, _ablation(home)


def test_table_has_the_rows_with_ccs_in_range(ablation_run):
    home, stdout = ablation_run
    wd = home / "abl"
    table = pd.read_csv(wd / "ablation.csv")
    assert list(table.columns) == COLUMNS
    assert table["row"].tolist() == ROWS and table["loss"].tolist() == ["La", "La + T + S"]
    for _, r in table.iterrows():
        for dim in ("valence", "arousal"):
            mx, mn, mean = r[f"{dim} Max CC"], r[f"{dim} Min CC"], r[f"{dim} Mean CC"]
            assert -1 <= mn <= mean <= mx <= 1, r
            # The table's figures are those of the row's own per-video CSV (2 test videos).
            per_video = pd.read_csv(wd / r["row"] / "eval" / "test_per_video.csv")
            cc = per_video[per_video.dimension == dim]["CC"]
            assert len(cc) == 2
            assert (mx, mn, mean) == pytest.approx((cc.max(), cc.min(), cc.mean()), abs=2e-4)
    md = (wd / "ablation.md").read_text().splitlines()
    assert md[0].startswith("| Loss | Valence Max / Min CC | Valence Mean CC |")
    assert [ln.split("|")[1].strip() for ln in md[2:]] == ["La", "La + T + S"]
    la = table.iloc[0]
    assert md[2] == (f"| La | {la['valence Max CC']:.4f} / {la['valence Min CC']:.4f} | "
                     f"{la['valence Mean CC']:.4f} | {la['arousal Max CC']:.4f} / "
                     f"{la['arousal Min CC']:.4f} | {la['arousal Mean CC']:.4f} |")
    assert "\n".join(md) in stdout
    # 4 steps <= the 300 label-only warm-up steps: the binary says the rows cannot differ.
    assert "rows with La are trained with the label loss only" in stdout


def test_rows_switch_the_right_loss_terms_off(ablation_run):
    home, _ = ablation_run
    for row in ROWS:
        with open(home / "abl" / row / "config.json") as f:
            config = json.load(f)
        got = {k: v for k, v in config["loss"].items() if k.endswith("_weight")}
        assert got == WEIGHTS[row]
        assert config["ablation_row"] == row and config["train"]["num_steps"] == 4
        assert config["data"]["data_dir"] == str(home / "syn")  # `~` expanded
        assert (home / "abl" / row / "checkpoints" / "ckpt-4.index").exists()


def test_rerun_skips_finished_rows(ablation_run):
    home, _ = ablation_run
    wd = home / "abl"
    watched = [p for row in ROWS for p in (wd / row).rglob("*")
               if p.is_file() and "tensorboard" not in p.parts]
    watched += [p for row in ROWS for p in (wd / row / "tensorboard").rglob("*") if p.is_file()]
    assert any(p.name.startswith("ckpt-4") for p in watched)
    before = {p: p.stat().st_mtime_ns for p in watched}
    csv_before = (wd / "ablation.csv").read_text()
    stdout = _ablation(home)
    for row, name in zip(ROWS, ("La", "La + T + S")):
        assert f"== {name} ({wd / row}): finished, skipped" in stdout
    assert "resuming" not in stdout  # not even a checkpoint restore
    # No file of either row was written again: no checkpoint, event, eval CSV or config.
    assert {p: p.stat().st_mtime_ns for p in watched} == before
    assert {p for row in ROWS for p in (wd / row).rglob("*") if p.is_file()} == set(watched)
    assert (wd / "ablation.csv").read_text() == csv_before
