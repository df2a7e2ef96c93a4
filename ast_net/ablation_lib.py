"""Re-runs the paper's Table 1: trains one model per loss-term row and tabulates the CCs.

Each row of `ast_net/configs/ablation.py` is trained in `<workdir>/<row>` (resumable like any
training run) and scored on a split. The table has the paper's columns, Max / Min / Mean CC,
for valence and arousal, and is written as CSV and Markdown. A finished row leaves
`<workdir>/<row>/ablation_row.json` (its table line, the split, the config and the checkpoint
it was scored with); a re-run with the same settings takes the line from there and neither
trains nor evaluates that row again. Other settings (more steps, another split) resume or
re-score it.
"""

from __future__ import annotations

import json
import os
from typing import Iterable, Optional

import keras
import pandas as pd
import tensorflow as tf

from ast_net import evaluate_lib, train_lib
from ast_net import workdir as workdir_lib
from ast_net.configs import ablation

ROW_RESULT = "ablation_row.json"
# Column order of ablation.csv (a saved line is a JSON object: its key order is not kept).
COLUMNS = ["row", "loss"] + [f"{dim} {stat} CC" for dim in ("valence", "arousal")
                             for stat in ("Max", "Min", "Mean")]


def row_config(row: str, data_dir: str, *, seed: int = 0, num_steps: Optional[int] = None):
    """The training config of one row (`ablation.get_config(row)` on `data_dir`)."""
    config = ablation.get_config(row)
    config.data.data_dir = os.path.expanduser(data_dir)
    config.seed = seed
    if num_steps:
        config.train.num_steps = int(num_steps)
        config.train.eval_every = int(num_steps)
    return config


def _config_json(config) -> dict:
    return json.loads(config.to_json_best_effort())


def _latest_checkpoint_name(row_dir: str) -> str:
    latest = tf.train.latest_checkpoint(workdir_lib.checkpoint_dir(row_dir))
    return os.path.basename(latest) if latest else ""


def finished_line(row_dir: str, config, split: str) -> Optional[dict]:
    """The saved table line of a row finished with this config and split, else None."""
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
    workdir_lib.write_json(os.path.join(row_dir, ROW_RESULT), {
        "split": split, "config": _config_json(config),
        "checkpoint": _latest_checkpoint_name(row_dir), "line": line})


def run_ablation(data_dir: str, workdir: str, *, split: str = "test",
                 rows: Optional[Iterable[str]] = None, num_steps: Optional[int] = None,
                 seed: int = 0) -> pd.DataFrame:
    """Trains and evaluates every row (skipping finished ones); returns the table (one line per
    row) and writes it to `<workdir>/ablation.csv` and `ablation.md` after each row. Paths may
    start with `~`."""
    rows = list(rows or ablation.ROWS)
    workdir = os.path.expanduser(workdir)
    table = []
    for k, row in enumerate(rows):
        config = row_config(row, data_dir, seed=seed, num_steps=num_steps)
        warmup = int(config.loss.get("warmup_steps", 0))
        if k == 0 and int(config.train.num_steps) <= warmup:
            print(f"note: {config.train.num_steps} steps per row <= loss.warmup_steps {warmup}: "
                  f"rows with La are trained with the label loss only, so they do not differ "
                  f"in their loss (use --num_steps > {warmup})", flush=True)
        row_dir = os.path.join(workdir, row)
        line = finished_line(row_dir, config, split)
        if line is not None:
            print(f"== {ablation.ROWS[row]} ({row_dir}): finished, skipped", flush=True)
        else:
            keras.backend.clear_session()
            print(f"== {ablation.ROWS[row]} ({row_dir})", flush=True)
            train_lib.train_and_evaluate(config, row_dir)
            _, summary, _ = evaluate_lib.evaluate_workdir(row_dir, split)
            line = {"row": row, "loss": ablation.ROWS[row]}
            for dim, r in summary.iterrows():
                line[f"{dim} Max CC"] = float(r["Max CC"])
                line[f"{dim} Min CC"] = float(r["Min CC"])
                line[f"{dim} Mean CC"] = float(r["Mean CC"])
            _save_line(row_dir, config, split, line)
        table.append(line)
        frame = pd.DataFrame(table, columns=COLUMNS)
        csv_path = os.path.join(workdir, "ablation.csv")
        frame.to_csv(csv_path + ".part", index=False, float_format="%.4f")
        os.replace(csv_path + ".part", csv_path)
        md_path = os.path.join(workdir, "ablation.md")
        with open(md_path + ".part", "w") as f:
            f.write(to_markdown(frame) + "\n")
        os.replace(md_path + ".part", md_path)
    return pd.DataFrame(table, columns=COLUMNS)


def to_markdown(table: pd.DataFrame) -> str:
    """The table as the paper prints it: Max CC / Min CC and Mean CC per dimension."""
    lines = ["| Loss | Valence Max / Min CC | Valence Mean CC | Arousal Max / Min CC | "
             "Arousal Mean CC |", "| --- | --- | --- | --- | --- |"]
    for _, r in table.iterrows():
        lines.append(
            f"| {r['loss']} | {r['valence Max CC']:.4f} / {r['valence Min CC']:.4f} | "
            f"{r['valence Mean CC']:.4f} | {r['arousal Max CC']:.4f} / "
            f"{r['arousal Min CC']:.4f} | {r['arousal Mean CC']:.4f} |")
    return "\n".join(lines)
