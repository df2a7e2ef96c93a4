"""Evaluation: per-video predictions of whole videos, CC / CCC / RMSE, the paper's table, plots.

Every frame of a video is predicted from clip windows (see `ast_net.windows`); metrics use only
frames with a face and a valid label. The paper reports Max / Min / Mean Pearson CC over the
videos of a split for each dimension; we print that table and also the mean CCC.
"""

from __future__ import annotations

import io
import os
from typing import List, Optional, Tuple

import numpy as np
import pandas as pd
import tensorflow as tf

from ast_net import metrics, windows
from ast_net import workdir as workdir_lib
from ast_net.data import records, schema


def make_predict_fn(temporal, feature_dim: int, feature_scale: float = 1.0):
    """A traced forward pass over clips [B, n, D] -> [B, n, 2] (numpy in, numpy out)."""
    @tf.function(input_signature=[tf.TensorSpec([None, None, feature_dim], tf.float32)],
                 reduce_retracing=True)
    def forward(x):
        return temporal(x * feature_scale, training=False)

    return lambda batch: forward(tf.constant(batch)).numpy()


def predict_videos(temporal, files: List[str], feature_dim: int, config):
    """Yields (video, predictions [T, 2]) for every video in `files`."""
    predict = make_predict_fn(temporal, feature_dim, float(config.data.feature_scale))
    for video in records.iter_videos(files, feature_dim):
        preds = windows.predict_video(predict, video.features, int(config.data.clip_length),
                                      int(config.data.frame_step),
                                      batch_size=int(config.train.eval_batch_size))
        yield video, preds


def score_video(video, preds) -> List[dict]:
    """Rows (video, dimension, CC, CCC, RMSE, frames) for one video."""
    rows = []
    valid = video.mask > 0
    for d, name in enumerate(schema.DIMENSIONS):
        g, y = video.labels[:, d], preds[:, d]
        rows.append({
            "video": video.video_id, "dimension": name,
            "CC": metrics.pearson_cc(g, y, mask=valid),
            "CCC": metrics.ccc(g, y, mask=valid),
            "RMSE": metrics.rmse(g, y, mask=valid),
            "frames": int(valid.sum()),
        })
    return rows


def summarize(per_video: pd.DataFrame) -> pd.DataFrame:
    """Max / Min / Mean CC and mean CCC per dimension (videos with an undefined CC are skipped)."""
    out = []
    for name in schema.DIMENSIONS:
        part = per_video[per_video["dimension"] == name]
        cc = part["CC"].dropna()
        out.append({"dimension": name, "Max CC": cc.max(), "Min CC": cc.min(),
                    "Mean CC": cc.mean(), "Mean CCC": part["CCC"].dropna().mean(),
                    "videos": len(part)})
    return pd.DataFrame(out).set_index("dimension")


def format_table(summary: pd.DataFrame, title: str = "") -> str:
    lines = [title] if title else []
    lines.append(f"{'dimension':<10} {'Max CC':>8} {'Min CC':>8} {'Mean CC':>8} "
                 f"{'Mean CCC':>9} {'videos':>6}")
    for name, r in summary.iterrows():
        lines.append(f"{name:<10} {r['Max CC']:8.4f} {r['Min CC']:8.4f} {r['Mean CC']:8.4f} "
                     f"{r['Mean CCC']:9.4f} {int(r['videos']):6d}")
    return "\n".join(lines)


def plot_video_png(video, preds) -> bytes:
    """PNG of predicted vs true valence and arousal over time for one video."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(9, 4.5), sharex=True)
    t = video.timestamp
    for d, name in enumerate(schema.DIMENSIONS):
        ax = axes[d]
        truth = np.where(video.mask > 0, video.labels[:, d], np.nan)
        ax.plot(t, truth, color="black", lw=1.2, label="ground truth")
        ax.plot(t, preds[:, d], color="tab:red", lw=1.0, label="AST-Net")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=8)
    axes[0].set_title(video.video_id)
    axes[1].set_xlabel("time (s)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()


def evaluate_model(temporal, files: List[str], feature_dim: int, config,
                   predictions_dir: Optional[str] = None,
                   ) -> Tuple[pd.DataFrame, pd.DataFrame, Optional[tuple]]:
    """Scores every video; optionally writes per-frame prediction CSVs.

    Returns:
      (per-video rows, summary table, (video, preds) of the first video for plotting).
    """
    rows, first = [], None
    for video, preds in predict_videos(temporal, files, feature_dim, config):
        rows.extend(score_video(video, preds))
        if first is None:
            first = (video, preds)
        if predictions_dir:
            os.makedirs(predictions_dir, exist_ok=True)
            frame = pd.DataFrame({
                "frame": np.arange(len(preds)), "timestamp_s": video.timestamp,
                "valence": preds[:, 0], "arousal": preds[:, 1],
                "valence_true": np.where(video.mask > 0, video.labels[:, 0], np.nan),
                "arousal_true": np.where(video.mask > 0, video.labels[:, 1], np.nan)})
            safe = video.video_id.replace("/", "_")
            path = os.path.join(predictions_dir, f"{safe}.csv")
            frame.to_csv(path + ".part", index=False, float_format="%.5f")
            os.replace(path + ".part", path)
    per_video = pd.DataFrame(rows, columns=["video", "dimension", "CC", "CCC", "RMSE", "frames"])
    return per_video, summarize(per_video), first


def evaluate_workdir(workdir: str, split: str, data_dir: Optional[str] = None,
                     out_dir: Optional[str] = None) -> Tuple[pd.DataFrame, pd.DataFrame, str]:
    """Evaluates the latest checkpoint of `workdir` on `split`.

    Writes `<out_dir>/<split>_per_video.csv` (video, dimension, CC, CCC, RMSE, frames),
    `<out_dir>/<split>_summary.csv`, per-frame prediction CSVs and a plot of the first video.
    Paths may start with `~`. A record that does not match the schema is one UserError naming
    its file, record and key.

    Returns:
      (per-video rows, summary table, path of the per-video CSV).
    """
    workdir = os.path.expanduser(workdir)
    temporal, config, info, step = workdir_lib.load_temporal(workdir)
    data_dir = os.path.expanduser(data_dir or config.data.data_dir)
    out_dir = os.path.expanduser(out_dir) if out_dir else None
    files = records.list_files(data_dir, split)
    feature_dim = records.validate_files(files)
    workdir_lib.check_compatible(workdir, config, feature_dim)
    out_dir = out_dir or os.path.join(workdir, "eval")
    os.makedirs(out_dir, exist_ok=True)
    per_video, summary, first = evaluate_model(
        temporal, files, feature_dim, config,
        predictions_dir=os.path.join(out_dir, f"{split}_predictions"))
    csv_path = os.path.join(out_dir, f"{split}_per_video.csv")
    per_video.to_csv(csv_path + ".part", index=False, float_format="%.4f")
    os.replace(csv_path + ".part", csv_path)
    summary.to_csv(os.path.join(out_dir, f"{split}_summary.csv"), float_format="%.4f")
    if first is not None:
        with open(os.path.join(out_dir, f"{split}_first_video.png"), "wb") as f:
            f.write(plot_video_png(*first))
    return per_video, summary, csv_path
