"""Per-video evaluation metrics (numpy): Pearson CC, Lin's CCC, RMSE and the paper's table.

Each metric takes two 1-D sequences (ground truth, prediction) of one video and dimension and an
optional mask (> 0 / True = use the frame). Frames where the mask is 0 or where either value is
NaN/±inf are ignored. Conventions:
- `pearson_cc` is NaN when fewer than 2 frames remain or when either sequence is constant over
  them (its standard deviation is 0: the correlation is undefined). It never raises.
- `ccc` (Lin's concordance correlation, population moments)
  2·cov(x, y) / (var(x) + var(y) + (mean(x) − mean(y))²) is NaN with fewer than 2 frames or
  when both sequences are the same constant (0/0); one constant sequence gives 0.
- `rmse` is NaN when no frame remains.
`summarize` turns per-video rows into the paper's per-dimension Max / Min / Mean CC (Table 1-3)
plus mean CCC and RMSE; videos whose CC is NaN are left out of the statistics and counted.
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np

from ast_net.data import schema

DIMENSIONS = schema.DIMENSIONS  # Output dims in the schema's label order: valence, arousal.


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


def pearson_cc(x, y, mask=None) -> float:
    """Pearson correlation of x and y over the kept frames; NaN if undefined (see module doc)."""
    x, y = _valid_pair(x, y, mask)
    if x.size < 2:
        return math.nan
    dx, dy = x - x.mean(), y - y.mean()
    sxx, syy = float(np.dot(dx, dx)), float(np.dot(dy, dy))
    if sxx <= 0.0 or syy <= 0.0:
        return math.nan
    return float(np.clip(np.dot(dx, dy) / math.sqrt(sxx * syy), -1.0, 1.0))


def ccc(x, y, mask=None) -> float:
    """Lin's concordance correlation coefficient over the kept frames (population moments)."""
    x, y = _valid_pair(x, y, mask)
    if x.size < 2:
        return math.nan
    mx, my = x.mean(), y.mean()
    cov = float(np.mean((x - mx) * (y - my)))
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
    """Rows {video, dimension, cc, ccc, rmse, frames} of one video, one per output dimension.

    Args:
      video: the video id.
      y_true, y_pred: `[T, len(dimensions)]` ground truth and prediction.
      mask: optional `[T]` frame validity (label mask AND face present).
    """
    y_true = np.asarray(y_true, np.float64).reshape(-1, len(dimensions))
    y_pred = np.asarray(y_pred, np.float64).reshape(-1, len(dimensions))
    rows = []
    for d, name in enumerate(dimensions):
        x, y = _valid_pair(y_true[:, d], y_pred[:, d], mask)
        rows.append({"video": video, "dimension": name, "cc": pearson_cc(x, y),
                     "ccc": ccc(x, y), "rmse": rmse(x, y), "frames": int(x.size)})
    return rows


def _stat(values: np.ndarray, fn) -> float:
    return float(fn(values)) if values.size else math.nan


def summarize(per_video_rows: Iterable[Mapping[str, object]]) -> Dict[str, Dict[str, float]]:
    """Per-dimension statistics over videos, as in the paper's tables.

    Args:
      per_video_rows: mappings with keys "dimension", "cc", "ccc" and optionally "rmse"
        (e.g. from `video_rows` or the evaluation CSV), one per (video, dimension).

    Returns:
      {dimension: {"max_cc", "min_cc", "mean_cc", "mean_ccc", "mean_rmse", "videos",
      "nan_cc"}} in first-seen dimension order. Max / Min / Mean CC and mean CCC / RMSE skip
      NaN values; "videos" counts all rows of the dimension and "nan_cc" those with a NaN CC.
    """
    by_dim: Dict[str, Dict[str, list]] = {}
    for row in per_video_rows:
        cols = by_dim.setdefault(str(row["dimension"]), {"cc": [], "ccc": [], "rmse": []})
        for key in cols:
            value = row.get(key, math.nan)
            cols[key].append(math.nan if value is None else float(value))
    out = {}
    for dim, cols in by_dim.items():
        cc = np.asarray(cols["cc"], np.float64)
        ok = cc[np.isfinite(cc)]
        ccc_ok = np.asarray(cols["ccc"], np.float64)
        ccc_ok = ccc_ok[np.isfinite(ccc_ok)]
        rmse_ok = np.asarray(cols["rmse"], np.float64)
        rmse_ok = rmse_ok[np.isfinite(rmse_ok)]
        out[dim] = {"max_cc": _stat(ok, np.max), "min_cc": _stat(ok, np.min),
                    "mean_cc": _stat(ok, np.mean), "mean_ccc": _stat(ccc_ok, np.mean),
                    "mean_rmse": _stat(rmse_ok, np.mean), "videos": int(cc.size),
                    "nan_cc": int(cc.size - ok.size)}
    return out


def format_table(summary: Mapping[str, Mapping[str, float]], title: Optional[str] = None) -> str:
    """The summary as a text table: dimension, Max CC / Min CC, Mean CC, Mean CCC, videos."""
    lines = [title] if title else []
    lines.append(f"{'dimension':<10} {'Max CC / Min CC':>17} {'Mean CC':>8} {'Mean CCC':>9}"
                 f" {'videos':>7}")
    for dim, s in summary.items():
        nan_note = f" ({s['nan_cc']} NaN)" if s.get("nan_cc") else ""
        lines.append(f"{dim:<10} {s['max_cc']:>8.4f}/{s['min_cc']:<8.4f} {s['mean_cc']:>8.4f}"
                     f" {s['mean_ccc']:>9.4f} {s['videos']:>7d}{nan_note}")
    return "\n".join(lines)
