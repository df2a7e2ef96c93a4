"""Re-runs the paper's Table 1: trains one model per loss-term row and seed, tabulates the CCs.

Each row of `ast_net/configs/ablation.py` is trained once per seed in `<workdir>/<row>/seed_<s>`
(resumable like any training run) and scored on a split. The table has the paper's columns,
Max / Min / Mean CC, for valence and arousal. `ablation.csv` holds one line per (row, seed) and,
after each row's seeds, two summary lines whose `seed` is "mean" and "sd" (sample standard
deviation over the seeds, ddof = 1; empty with one seed); `ablation.md` shows mean ± sd per row
and a second table of each seed's mean CC. A finished (row, seed) run leaves
`<workdir>/<row>/seed_<s>/ablation_row.json` (its table line, the split, the config and the
checkpoint it was scored with); a re-run with the same settings takes the line from there and
neither trains nor evaluates that run again. Other settings (more steps, another split) resume
or re-score it.
"""

from __future__ import annotations

import json
import math
import os
from typing import Iterable, List, Optional, Sequence

import keras
import pandas as pd
import tensorflow as tf

from ast_net import atomic, errors, evaluate_lib, metrics, train_lib, training_run
from ast_net.configs import ablation

ROW_RESULT = "ablation_row.json"
METRICS = [f"{dim} {stat} CC" for dim in ("valence", "arousal")
           for stat in ("Max", "Min", "Mean")]
# Column order of ablation.csv (a saved line is a JSON object: its key order is not kept).
COLUMNS = ["row", "loss", "seed"] + METRICS
SUMMARY = ("mean", "sd")  # `seed` of a row's summary lines in ablation.csv.


def row_config(row: str, data_dir: str, *, seed: int = 0, num_steps: Optional[int] = None,
               base: str = "default"):
    """The training config of one row (`ablation.get_config("<base>.<row>")` on `data_dir`)."""
    config = ablation.get_config(f"{base}.{row}")
    config.data.data_dir = os.path.expanduser(data_dir)
    config.seed = seed
    if num_steps:
        config.train.num_steps = int(num_steps)
        config.train.eval_every = int(num_steps)
    return config


def run_dir(workdir: str, row: str, seed: int) -> str:
    """The `ast-net-train` work directory of one (row, seed) run."""
    return os.path.join(workdir, row, f"seed_{seed}")


def _config_json(config) -> dict:
    return json.loads(config.to_json_best_effort())


def _latest_checkpoint_name(row_dir: str) -> str:
    latest = tf.train.latest_checkpoint(training_run.checkpoint_dir(row_dir))
    return os.path.basename(latest) if latest else ""


def finished_line(row_dir: str, config, split: str) -> Optional[dict]:
    """The saved table line of a run finished with this config and split, else None."""
    try:
        with open(os.path.join(row_dir, ROW_RESULT)) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return None
    if (saved.get("split") != split or saved.get("config") != _config_json(config)
            or not saved.get("checkpoint")
            or saved["checkpoint"] != _latest_checkpoint_name(row_dir)):
        return None
    return saved.get("line")


def _save_line(row_dir: str, config, split: str, line: dict) -> None:
    training_run.write_json(os.path.join(row_dir, ROW_RESULT), {
        "split": split, "config": _config_json(config),
        "checkpoint": _latest_checkpoint_name(row_dir), "line": line})


def _check_base(row_dir: str, config) -> None:
    """A run directory trained on another base config is not resumed (it would mix the two)."""
    try:
        with open(os.path.join(row_dir, "config.json")) as f:
            found = json.load(f).get("ablation_base", "default")
    except (OSError, ValueError):
        return
    if found != config.ablation_base:
        raise errors.UserError(f"{row_dir} holds a run of the {found!r} base config, not "
                               f"{config.ablation_base!r}: use another --workdir")


def _train_and_score(row: str, seed: int, config, row_dir: str, split: str) -> dict:
    """Trains (or resumes) one run, evaluates it on `split` and returns its table line."""
    _check_base(row_dir, config)
    keras.backend.clear_session()
    train_lib.train_and_evaluate(config, row_dir)
    _, summary, _ = evaluate_lib.evaluate_workdir(row_dir, split)
    line = {"row": row, "loss": ablation.ROWS[row], "seed": seed}
    line.update(metrics.flat_summary(summary))  # "valence Max CC", ... (ast_net.metrics)
    return line


def summarize(lines: List[dict]) -> pd.DataFrame:
    """The CSV table: each row's per-seed lines (in run order), then its "mean" and "sd" lines
    (sample standard deviation, ddof = 1; NaN with one seed)."""
    out = []
    rows = list(dict.fromkeys(line["row"] for line in lines))
    for row in rows:
        mine = [line for line in lines if line["row"] == row]
        out += mine
        frame = pd.DataFrame(mine, columns=COLUMNS)
        stats = {"mean": frame[METRICS].mean(), "sd": frame[METRICS].std(ddof=1)}
        for name in SUMMARY:
            out.append({"row": row, "loss": mine[0]["loss"], "seed": name,
                        **{m: float(stats[name][m]) for m in METRICS}})
    return pd.DataFrame(out, columns=COLUMNS)


def _write_tables(workdir: str, table: pd.DataFrame) -> None:
    with atomic.path(os.path.join(workdir, "ablation.csv")) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    atomic.write_text(os.path.join(workdir, "ablation.md"), to_markdown(table) + "\n")


def run_ablation(data_dir: str, workdir: str, *, split: str = "test",
                 rows: Optional[Iterable[str]] = None, num_steps: Optional[int] = None,
                 seeds: Sequence[int] = (0, 1, 2), base: str = "default") -> pd.DataFrame:
    """Trains and evaluates every row once per seed (skipping finished runs); returns the table
    of `summarize` and writes it to `<workdir>/ablation.csv` and `ablation.md` after each run.
    `base` is the config the rows are built on: "default" or "paper" (`ablation.BASES`).
    Paths may start with `~`."""
    rows = list(rows or ablation.ROWS)
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, got {seeds}")
    workdir = os.path.expanduser(workdir)
    lines: List[dict] = []
    for k, row in enumerate(rows):
        for seed in seeds:
            config = row_config(row, data_dir, seed=seed, num_steps=num_steps, base=base)
            warmup = int(config.loss.get("warmup_steps", 0))
            if not lines and k == 0 and int(config.train.num_steps) <= warmup:
                print(f"note: {config.train.num_steps} steps per row <= loss.warmup_steps "
                      f"{warmup}: rows with La are trained with the label loss only, so they "
                      f"do not differ in their loss (use --num_steps > {warmup})", flush=True)
            row_dir = run_dir(workdir, row, seed)
            line = finished_line(row_dir, config, split)
            if line is not None:
                print(f"== {ablation.ROWS[row]}, seed {seed} ({row_dir}): finished, skipped",
                      flush=True)
            else:
                print(f"== {ablation.ROWS[row]}, seed {seed} ({row_dir})", flush=True)
                line = _train_and_score(row, seed, config, row_dir, split)
                _save_line(row_dir, config, split, line)
            lines.append(line)
            _write_tables(workdir, summarize(lines))
    return summarize(lines)


def _cell(mean: float, sd: float) -> str:
    return f"{mean:.4f}" if math.isnan(sd) else f"{mean:.4f} ± {sd:.4f}"


def to_markdown(table: pd.DataFrame) -> str:
    """The table as the paper prints it (Max CC / Min CC and Mean CC per dimension), each
    figure the mean ± sd over the seeds; then the mean CC of every seed."""
    seed_of = table["seed"].astype(str)
    per_seed = table[~seed_of.isin(SUMMARY)]
    mean = table[seed_of == "mean"].set_index("row")
    sd = table[seed_of == "sd"].set_index("row")
    lines = ["| Loss | Seeds | Valence Max / Min CC | Valence Mean CC | Arousal Max / Min CC | "
             "Arousal Mean CC |", "| --- | --- | --- | --- | --- | --- |"]
    for row, m in mean.iterrows():
        s = sd.loc[row]
        cells = []
        for dim in ("valence", "arousal"):
            c = {stat: _cell(m[f"{dim} {stat} CC"], s[f"{dim} {stat} CC"])
                 for stat in ("Max", "Min", "Mean")}
            cells += [f"{c['Max']} / {c['Min']}", c["Mean"]]
        seeds = per_seed[per_seed["row"] == row]["seed"].astype(str).tolist()
        lines.append(f"| {m['loss']} | {', '.join(seeds)} | " + " | ".join(cells) + " |")
    lines += ["", "Mean CC of each seed (valence / arousal):", "",
              "| Loss | Seed | Valence Mean CC | Arousal Mean CC |", "| --- | --- | --- | --- |"]
    for _, r in per_seed.iterrows():
        lines.append(f"| {r['loss']} | {r['seed']} | {r['valence Mean CC']:.4f} | "
                     f"{r['arousal Mean CC']:.4f} |")
    return "\n".join(lines)
