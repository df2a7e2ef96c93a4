"""Re-runs the paper's Table 1: trains one model per loss-term row and tabulates the CCs.

Each row of `ast_net/configs/ablation.py` is trained in `<workdir>/<row>` (resumable like any
training run: finished rows are not trained again) and scored on a split. The table has the
paper's columns, Max / Min / Mean CC, for valence and arousal, and is written as CSV and
Markdown.
"""

from __future__ import annotations

import os
from typing import Iterable, Optional

import keras
import pandas as pd

from ast_net import evaluate_lib, train_lib
from ast_net.configs import ablation


def run_ablation(data_dir: str, workdir: str, *, split: str = "test",
                 rows: Optional[Iterable[str]] = None, num_steps: Optional[int] = None,
                 seed: int = 0) -> pd.DataFrame:
    """Trains and evaluates every row; returns the table (one line per row)."""
    rows = list(rows or ablation.ROWS)
    table = []
    for row in rows:
        config = ablation.get_config(row)
        config.data.data_dir = data_dir
        config.seed = seed
        if num_steps:
            config.train.num_steps = int(num_steps)
            config.train.eval_every = int(num_steps)
        row_dir = os.path.join(workdir, row)
        keras.backend.clear_session()
        print(f"== {ablation.ROWS[row]} ({row_dir})", flush=True)
        train_lib.train_and_evaluate(config, row_dir)
        _, summary, _ = evaluate_lib.evaluate_workdir(row_dir, split)
        line = {"row": row, "loss": ablation.ROWS[row]}
        for dim, r in summary.iterrows():
            line[f"{dim} Max CC"] = r["Max CC"]
            line[f"{dim} Min CC"] = r["Min CC"]
            line[f"{dim} Mean CC"] = r["Mean CC"]
        table.append(line)
        frame = pd.DataFrame(table)
        csv_path = os.path.join(workdir, "ablation.csv")
        frame.to_csv(csv_path + ".part", index=False, float_format="%.4f")
        os.replace(csv_path + ".part", csv_path)
    return pd.DataFrame(table)


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
