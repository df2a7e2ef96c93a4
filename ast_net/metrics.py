"""Evaluation metrics and THE evaluation table (numpy and pandas only, no TensorFlow).

Per video and dimension, over the frames that count (mask > 0 / True and both values finite):
- `pearson_cc`: Pearson CC = Σ(x − x̄)(y − ȳ) / sqrt(Σ(x − x̄)² Σ(y − ȳ)²). Undefined (NaN,
  never an exception) with fewer than 2 frames or when either sequence is constant over them
  (max == min exactly; `cc_undefined_reason` says which).
- `ccc`: Lin's concordance correlation with population moments,
  2·cov(x, y) / (var(x) + var(y) + (x̄ − ȳ)²); NaN with fewer than 2 frames or when both
  sequences are the same constant (0/0); one constant sequence gives 0.
- `rmse`: sqrt(mean((x − y)²)); NaN when no frame remains.

`Evaluation` is the one implementation of the table that `ast-net-evaluate`, training's dev
evaluation and the ablation use: add videos, then `per_video()` (one row per video and
dimension: video, dimension, CC, CCC, RMSE, frames, CC undefined) and `summary()` (one row per
dimension, `SUMMARY_COLUMNS`):
  Max CC / Min CC / Mean CC   over the videos whose CC is defined (the paper, AVEC2012),
  Mean CCC                    mean of the per-video CCCs (defined ones),
  Pooled CCC                  one CCC over all counted frames of the split (ABAW / Aff-Wild2),
  RMSE                        one RMSE over all counted frames of the split,
  videos / frames             all videos added / all counted frames,
  CC undefined                how many videos have no CC, and
  CC undefined videos         which, with the reason ("test003 (constant labels); ...").
`format_table` prints it (undefined videos named on a line under the table) and
`flat_summary` gives the "valence Max CC"-style keys of the ablation table.
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np
import pandas as pd

# Output dims in the model's and the TFRecord schema's label order (the schema module imports
# TensorFlow, so the tuple is repeated here; a test checks the two agree).
DIMENSIONS = ("valence", "arousal")
PER_VIDEO_COLUMNS = ("video", "dimension", "CC", "CCC", "RMSE", "frames", "CC undefined")
SUMMARY_COLUMNS = ("Max CC", "Min CC", "Mean CC", "Mean CCC", "Pooled CCC", "RMSE", "videos",
                   "frames", "CC undefined", "CC undefined videos")


def _valid_pair(x, y, mask) -> tuple:
    x = np.asarray(x, np.float64).reshape(-1)
    y = np.asarray(y, np.float64).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"sequences differ in length: {x.shape[0]} vs {y.shape[0]}")
    keep = np.isfinite(x) & np.isfinite(y)
    if mask is not None:
        mask = np.asarray(mask).reshape(-1)
        if mask.shape != x.shape:
            raise ValueError(f"mask has {mask.shape[0]} entries, expected {x.shape[0]}")
        keep &= np.nan_to_num(mask.astype(np.float64)) > 0
    return x[keep], y[keep]


def _constant(x: np.ndarray) -> bool:
    # Exact: a mean of identical floats can differ from them by an ulp, which would give a
    # tiny non-zero variance and a CC made of rounding noise.
    return bool(x.max() == x.min())


def cc_undefined_reason(x, y, mask=None) -> str:
    """Why the CC of x and y is undefined ("" when it is defined)."""
    x, y = _valid_pair(x, y, mask)
    if x.size < 2:
        return f"{x.size} labelled frame{'' if x.size == 1 else 's'}"
    cx, cy = _constant(x), _constant(y)
    if cx and cy:
        return "constant labels and predictions"
    if cx:
        return "constant labels"
    if cy:
        return "constant predictions"
    return ""


def pearson_cc(x, y, mask=None) -> float:
    """Pearson correlation of x and y over the kept frames; NaN if undefined (see module doc)."""
    x, y = _valid_pair(x, y, mask)
    if x.size < 2 or _constant(x) or _constant(y):
        return math.nan
    dx, dy = x - x.mean(), y - y.mean()
    sxx, syy = float(np.dot(dx, dx)), float(np.dot(dy, dy))
    return float(np.clip(np.dot(dx, dy) / math.sqrt(sxx * syy), -1.0, 1.0))


def ccc(x, y, mask=None) -> float:
    """Lin's concordance correlation coefficient over the kept frames (population moments)."""
    x, y = _valid_pair(x, y, mask)
    if x.size < 2:
        return math.nan
    if _constant(x) and _constant(y) and x[0] == y[0]:
        return math.nan
    mx, my = x.mean(), y.mean()
    cov = 0.0 if _constant(x) or _constant(y) else float(np.mean((x - mx) * (y - my)))
    denom = float(np.var(x) + np.var(y) + (mx - my) ** 2)
    if denom <= 0.0:
        return math.nan
    return 2.0 * cov / denom


def rmse(x, y, mask=None) -> float:
    """Root mean squared difference over the kept frames; NaN when no frame is kept."""
    x, y = _valid_pair(x, y, mask)
    if x.size == 0:
        return math.nan
    return float(math.sqrt(np.mean((x - y) ** 2)))


def video_rows(video: str, y_true, y_pred, mask=None,
               dimensions: Sequence[str] = DIMENSIONS) -> List[Dict[str, object]]:
    """Rows of one video, one per output dimension, keyed by `PER_VIDEO_COLUMNS`.

    Args:
      video: the video id.
      y_true, y_pred: `[T, len(dimensions)]` ground truth and prediction.
      mask: optional `[T]` frame validity (label mask AND face present).
    """
    return _score_video(video, y_true, y_pred, mask, dimensions)[0]


def _score_video(video, y_true, y_pred, mask, dimensions):
    y_true = np.asarray(y_true, np.float64).reshape(-1, len(dimensions))
    y_pred = np.asarray(y_pred, np.float64).reshape(-1, len(dimensions))
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{video}: {y_true.shape[0]} label frames vs {y_pred.shape[0]} "
                         f"predicted frames")
    rows, pairs = [], []
    for d, name in enumerate(dimensions):
        x, y = _valid_pair(y_true[:, d], y_pred[:, d], mask)
        rows.append({"video": str(video), "dimension": name, "CC": pearson_cc(x, y),
                     "CCC": ccc(x, y), "RMSE": rmse(x, y), "frames": int(x.size),
                     "CC undefined": cc_undefined_reason(x, y)})
        pairs.append((x, y))
    return rows, pairs


def _stat(values: np.ndarray, fn) -> float:
    values = values[np.isfinite(values)]
    return float(fn(values)) if values.size else math.nan


class Evaluation:
    """Accumulates scored videos of one split; `per_video()` and `summary()` are the table.

        ev = metrics.Evaluation()
        for video_id, y_true, y_pred, mask in videos:
            ev.add(video_id, y_true, y_pred, mask)
        print(metrics.format_table(ev.summary()))
    """

    def __init__(self, dimensions: Sequence[str] = DIMENSIONS):
        self.dimensions = tuple(dimensions)
        self._rows: List[Dict[str, object]] = []
        self._frames = {d: ([], []) for d in self.dimensions}  # Counted (labels, predictions).

    def add(self, video: str, y_true, y_pred, mask=None) -> List[Dict[str, object]]:
        """Scores one video (`[T, dims]` arrays, `[T]` mask); returns its rows."""
        rows, pairs = _score_video(video, y_true, y_pred, mask, self.dimensions)
        self._rows.extend(rows)
        for name, (x, y) in zip(self.dimensions, pairs):
            self._frames[name][0].append(x)
            self._frames[name][1].append(y)
        return rows

    def per_video(self) -> pd.DataFrame:
        """One row per (video, dimension): `PER_VIDEO_COLUMNS`."""
        return pd.DataFrame(self._rows, columns=list(PER_VIDEO_COLUMNS))

    def summary(self) -> pd.DataFrame:
        """One row per dimension (index "dimension"), columns `SUMMARY_COLUMNS`."""
        per_video = self.per_video()
        out = []
        for name in self.dimensions:
            part = per_video[per_video["dimension"] == name]
            cc = part["CC"].to_numpy(np.float64)
            xs, ys = self._frames[name]
            x = np.concatenate(xs) if xs else np.zeros(0)
            y = np.concatenate(ys) if ys else np.zeros(0)
            undefined = part[~np.isfinite(cc)]
            out.append({
                "dimension": name, "Max CC": _stat(cc, np.max), "Min CC": _stat(cc, np.min),
                "Mean CC": _stat(cc, np.mean),
                "Mean CCC": _stat(part["CCC"].to_numpy(np.float64), np.mean),
                "Pooled CCC": ccc(x, y), "RMSE": rmse(x, y), "videos": len(part),
                "frames": int(x.size), "CC undefined": len(undefined),
                "CC undefined videos": "; ".join(
                    f"{v} ({r})" for v, r in zip(undefined["video"], undefined["CC undefined"]))})
        return pd.DataFrame(out, columns=["dimension", *SUMMARY_COLUMNS]).set_index("dimension")


def evaluate(videos: Iterable[tuple], dimensions: Sequence[str] = DIMENSIONS) -> Evaluation:
    """An `Evaluation` of `(video, y_true, y_pred, mask)` tuples."""
    ev = Evaluation(dimensions)
    for video, y_true, y_pred, mask in videos:
        ev.add(video, y_true, y_pred, mask)
    return ev


def undefined_lines(summary: pd.DataFrame) -> List[str]:
    """"valence: CC undefined for 2 videos: a (constant labels); b (1 labelled frame)" lines
    (those videos are left out of Max / Min / Mean CC and Mean CCC where it is undefined too)."""
    lines = []
    for name, r in summary.iterrows():
        n = int(r["CC undefined"])
        if n:
            lines.append(f"{name}: CC undefined for {n} video{'' if n == 1 else 's'}: "
                         f"{r['CC undefined videos']}")
    return lines


def format_table(summary: pd.DataFrame, title: Optional[str] = None) -> str:
    """The summary as text: one line per dimension, then a line per dimension with an
    undefined CC naming those videos."""
    lines = [title] if title else []
    lines.append(f"{'dimension':<10} {'Max CC':>8} {'Min CC':>8} {'Mean CC':>8} {'Mean CCC':>9} "
                 f"{'Pooled CCC':>10} {'RMSE':>8} {'videos':>6}")
    for name, r in summary.iterrows():
        lines.append(f"{name:<10} {r['Max CC']:8.4f} {r['Min CC']:8.4f} {r['Mean CC']:8.4f} "
                     f"{r['Mean CCC']:9.4f} {r['Pooled CCC']:10.4f} {r['RMSE']:8.4f} "
                     f"{int(r['videos']):6d}")
    return "\n".join(lines + undefined_lines(summary))


def flat_summary(summary: pd.DataFrame,
                 columns: Sequence[str] = ("Max CC", "Min CC", "Mean CC")) -> Dict[str, float]:
    """{"valence Max CC": ..., "arousal Mean CC": ...}: `columns` of every dimension, as floats
    (the keys of the ablation table)."""
    return {f"{name} {col}": float(r[col]) for name, r in summary.iterrows() for col in columns}


def summary_scalars(summary: pd.DataFrame) -> Dict[str, float]:
    """{"valence/mean_cc": ..., "arousal/pooled_ccc": ...}: every numeric column of every
    dimension under a TensorBoard-friendly name (lower case, "_" for spaces)."""
    out = {}
    for name, r in summary.iterrows():
        for col in ("Max CC", "Min CC", "Mean CC", "Mean CCC", "Pooled CCC", "RMSE",
                    "CC undefined"):
            out[f"{name}/{col.lower().replace(' ', '_')}"] = float(r[col])
    return out

