"""`ast-net-ablation` end to end on a tiny synthetic benchmark: two rows of Table 1, two seeds
each, for a few steps; the table files (per-seed lines, mean and sd lines, mean ± sd in
Markdown), the rows' loss weights and seeds, a re-run that trains nothing and a re-run with one
more seed that trains only that seed. The summary arithmetic is checked on hand-made lines."""

import json
import math
import os
import re
import subprocess
import sys

import pandas as pd
import pytest

from ast_net import ablation_lib, errors
from ast_net.data import synthetic

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = ["la", "la_t_s"]
SEEDS = ["0", "1"]
# The paper's weights (w1 = w2 = w3 = 10, λ = 1000, label 1) with the terms outside the row
# switched off, written out by hand from Table 1's row names.
WEIGHTS = {
    "la": {"label_weight": 1.0, "trend_weight": 0.0, "local_weight": 0.0, "global_weight": 0.0,
           "siamese_weight": 0.0},
    "la_t_s": {"label_weight": 1.0, "trend_weight": 10.0, "local_weight": 0.0,
               "global_weight": 0.0, "siamese_weight": 1000.0},
}
METRICS = [f"{d} {s} CC" for d in ("valence", "arousal") for s in ("Max", "Min", "Mean")]
COLUMNS = ["row", "loss", "seed"] + METRICS


def _ablation(home, *extra, rows=ROWS, seeds=2):
    """The binary, with HOME=home and the paths given as `~/...` (as a user might type)."""
    cmd = [sys.executable, "-m", "ast_net.ablation", "--data_dir=~/syn", "--workdir=~/abl",
           f"--rows={','.join(rows)}", "--num_steps=4", "--split=test", f"--seeds={seeds}",
           *extra]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=400,
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


def _files(wd, rows):
    return [p for row in rows for p in (wd / row).rglob("*") if p.is_file()]


@pytest.mark.slow  # Real binaries end to end, over 20 s.
def test_table_has_per_seed_and_summary_lines(ablation_run):
    home, stdout = ablation_run
    wd = home / "abl"
    table = pd.read_csv(wd / "ablation.csv", dtype={"seed": str})
    assert list(table.columns) == COLUMNS
    assert table["row"].tolist() == ["la"] * 4 + ["la_t_s"] * 4
    assert table["seed"].tolist() == SEEDS + ["mean", "sd"] + SEEDS + ["mean", "sd"]
    assert set(table["loss"][:4]) == {"La"} and set(table["loss"][4:]) == {"La + T + S"}
    for _, r in table[table.seed.isin(SEEDS)].iterrows():
        for dim in ("valence", "arousal"):
            mx, mn, mean = r[f"{dim} Max CC"], r[f"{dim} Min CC"], r[f"{dim} Mean CC"]
            # 2 test videos: the mean CC is the midpoint of the two (CSV rounds to 1e-4).
            assert mn <= mx and mean == pytest.approx((mx + mn) / 2, abs=1.5e-4), r
            # The line's figures are those of its run's own per-video CSV (2 test videos).
            per_video = pd.read_csv(
                wd / r["row"] / f"seed_{r['seed']}" / "eval" / "test_per_video.csv")
            cc = per_video[per_video.dimension == dim]["CC"]
            assert len(cc) == 2
            assert (mx, mn, mean) == pytest.approx((cc.max(), cc.min(), cc.mean()), abs=2e-4)
    for row in ROWS:
        mine = table[table.row == row].set_index("seed")
        for m in METRICS:
            a, b = mine.loc["0", m], mine.loc["1", m]
            # Two seeds: mean (a + b) / 2, sample sd |a - b| / sqrt(2); the CSV rounds to 1e-4.
            assert mine.loc["mean", m] == pytest.approx((a + b) / 2, abs=2e-4)
            assert mine.loc["sd", m] == pytest.approx(abs(a - b) / math.sqrt(2), abs=2e-4)
    md = (wd / "ablation.md").read_text().splitlines()
    assert md[0].startswith("| Loss | Seeds | Valence Max / Min CC | Valence Mean CC |")
    assert [ln.split("|")[1].strip() for ln in md[2:4]] == ["La", "La + T + S"]
    la = table[table.row == "la"].set_index("seed")
    assert md[2].startswith("| La | 0, 1 | ")
    # Cells: Max ± sd / Min ± sd, Mean ± sd per dimension. The Markdown figures come from
    # unrounded values, the CSV's from rounded ones: equal within the CSV's rounding.
    got = [float(x) for x in re.findall(r"-?\d+\.\d{4}", md[2])]
    expected = [la.loc[stat, f"{dim} {m} CC"] for dim in ("valence", "arousal")
                for m in ("Max", "Min", "Mean") for stat in ("mean", "sd")]
    assert got == pytest.approx(expected, abs=2e-4)
    assert md[2].count(" ± ") == 6
    assert f"| La | 1 | {la.loc['1', 'valence Mean CC']:.4f} | " \
           f"{la.loc['1', 'arousal Mean CC']:.4f} |" in md
    assert "\n".join(md) in stdout
    # 4 steps <= the 300 label-only warm-up steps: the binary says the rows cannot differ.
    assert "rows with La are trained with the label loss only" in stdout


def test_runs_have_the_rows_weights_and_their_seed(ablation_run):
    home, _ = ablation_run
    for row in ROWS:
        for seed in (0, 1):
            run = home / "abl" / row / f"seed_{seed}"
            with open(run / "config.json") as f:
                config = json.load(f)
            got = {k: v for k, v in config["loss"].items() if k.endswith("_weight")}
            assert got == WEIGHTS[row]
            assert config["ablation_row"] == row and config["train"]["num_steps"] == 4
            assert config["seed"] == seed
            assert config["data"]["data_dir"] == str(home / "syn")  # `~` expanded
            assert (run / "checkpoints" / "ckpt-4.index").exists()
    # Different seeds, different initial weights: the two seeds' checkpoints differ.
    ckpts = [(home / "abl" / "la" / f"seed_{s}" / "checkpoints").glob("ckpt-4.data*")
             for s in (0, 1)]
    data = [next(iter(c)).read_bytes() for c in ckpts]
    assert data[0] != data[1]


@pytest.mark.slow  # Real binaries end to end, over 20 s.
def test_rerun_skips_finished_runs_and_adds_a_seed(ablation_run):
    home, _ = ablation_run
    wd = home / "abl"
    watched = _files(wd, ROWS)
    for row in ROWS:
        for seed in (0, 1):
            assert wd / row / f"seed_{seed}" / "checkpoints" / "ckpt-4.index" in watched
    before = {p: p.stat().st_mtime_ns for p in watched}
    csv_before = (wd / "ablation.csv").read_text()
    stdout = _ablation(home)
    for row, name in zip(ROWS, ("La", "La + T + S")):
        for seed in (0, 1):
            assert f"== {name}, seed {seed} ({wd / row / f'seed_{seed}'}): finished, " \
                   f"skipped" in stdout
    assert "resuming" not in stdout  # not even a checkpoint restore
    # No file of any run was written again: no checkpoint, event, eval CSV or config.
    assert {p: p.stat().st_mtime_ns for p in watched} == before
    assert set(_files(wd, ROWS)) == set(watched)
    assert (wd / "ablation.csv").read_text() == csv_before

    # One more seed: seeds 0 and 1 are skipped, only seed 2 trains.
    stdout = _ablation(home, rows=["la"], seeds=3)
    assert "== La, seed 0" in stdout and "== La, seed 1" in stdout
    assert stdout.count("finished, skipped") == 2
    assert f"== La, seed 2 ({wd / 'la' / 'seed_2'})\n" in stdout
    assert {p: p.stat().st_mtime_ns for p in watched} == before
    table = pd.read_csv(wd / "ablation.csv", dtype={"seed": str})
    assert table["seed"].tolist() == ["0", "1", "2", "mean", "sd"]
    assert (wd / "la" / "seed_2" / "checkpoints" / "ckpt-4.index").exists()


def _line(row, seed, value):
    return {"row": row, "loss": row.upper(), "seed": seed, **{m: value for m in METRICS}}


def test_summary_mean_and_sample_sd_by_hand():
    lines = [_line("a", 0, 0.1), _line("a", 1, 0.4), _line("a", 2, 0.7), _line("b", 5, -0.5)]
    table = ablation_lib.summarize(lines)
    assert table["seed"].astype(str).tolist() == ["0", "1", "2", "mean", "sd", "5", "mean", "sd"]
    a = table[table.row == "a"].set_index(table[table.row == "a"]["seed"].astype(str))
    # 0.1, 0.4, 0.7: mean 0.4; deviations ±0.3 and 0, sum of squares 0.18 / (3 - 1) -> sd 0.3.
    assert a.loc["mean", "valence Mean CC"] == pytest.approx(0.4)
    assert a.loc["sd", "arousal Max CC"] == pytest.approx(0.3)
    b = table[table.row == "b"].set_index(table[table.row == "b"]["seed"].astype(str))
    assert b.loc["mean", "valence Min CC"] == pytest.approx(-0.5)
    assert math.isnan(b.loc["sd", "valence Min CC"])  # one seed: no sample sd
    md = ablation_lib.to_markdown(table).splitlines()
    assert md[2] == ("| A | 0, 1, 2 | 0.4000 ± 0.3000 / 0.4000 ± 0.3000 | 0.4000 ± 0.3000 | "
                     "0.4000 ± 0.3000 / 0.4000 ± 0.3000 | 0.4000 ± 0.3000 |")
    assert md[3] == "| B | 5 | -0.5000 / -0.5000 | -0.5000 | -0.5000 / -0.5000 | -0.5000 |"
    assert "| A | 2 | 0.7000 | 0.7000 |" in md and "| B | 5 | -0.5000 | -0.5000 |" in md


def test_paper_base_is_not_resumed_from_a_default_run(ablation_run):
    home, _ = ablation_run
    with pytest.raises(errors.UserError, match="holds a run of the 'default' base config"):
        ablation_lib.run_ablation(str(home / "syn"), str(home / "abl"), rows=["la"],
                                  num_steps=4, seeds=[0], base="paper")
    assert not (home / "abl" / "la" / "seed_0" / "checkpoints" / "ckpt-5.index").exists()
