"""Evaluation: per-video predictions of whole videos, CC / CCC / RMSE, the paper's table, plots.

Every frame of a video is predicted from clip windows (see `ast_net.windows`); metrics use only
frames with a face and a valid label. The table (per-video CC / CCC / RMSE; per dimension the
paper's Max / Min / Mean CC, mean CCC, pooled CCC and RMSE, and the videos whose CC is
undefined) is `ast_net.metrics.Evaluation`, the one implementation training and the ablation
use too.
"""

from __future__ import annotations

import io
import os
from typing import List, Optional, Tuple

import numpy as np
import pandas as pd
import tensorflow as tf

from ast_net import atomic, metrics, training_run, windows
from ast_net.data import records

format_table = metrics.format_table  # The one table (see `ast_net.metrics`).


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
    merge, value_range = windows.output_options(config)  # config.output: merged, clipped.
    for video in records.iter_videos(files, feature_dim):
        preds = windows.predict_video(predict, video.features, int(config.data.clip_length),
                                      int(config.data.frame_step),
                                      batch_size=int(config.train.eval_batch_size),
                                      merge=merge, value_range=value_range)
        yield video, preds


# How the per-video plot looks (one place; not behaviour, so the tests check what is drawn).
PLOT_STYLE = {
    "figsize": (9, 4.5), "dpi": 90, "grid_alpha": 0.3,
    "legend": {"loc": "upper right", "fontsize": 8},
    "truth": {"color": "black", "lw": 1.2, "label": "ground truth"},
    "pred": {"color": "tab:red", "lw": 1.0, "label": "AST-Net"},
}


def video_figure(video, preds):
    """Matplotlib figure of predicted vs true valence (top) and arousal (bottom) over time for
    one video: the truth is NaN (a gap) where a frame does not count, and the title gives the
    video's CC per dimension ("undefined" where it is; see `ast_net.metrics`)."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=PLOT_STYLE["figsize"], sharex=True)
    t = video.timestamp
    ccs = []
    for d, name in enumerate(metrics.DIMENSIONS):
        ax = axes[d]
        truth = np.where(video.mask > 0, video.labels[:, d], np.nan)
        ax.plot(t, truth, **PLOT_STYLE["truth"])
        ax.plot(t, preds[:, d], **PLOT_STYLE["pred"])
        ax.set_ylabel(name)
        ax.grid(alpha=PLOT_STYLE["grid_alpha"])
        cc = metrics.pearson_cc(video.labels[:, d], preds[:, d], mask=video.mask)
        ccs.append(f"{name} CC {cc:.3f}" if np.isfinite(cc) else f"{name} CC undefined")
    axes[0].legend(**PLOT_STYLE["legend"])
    axes[0].set_title(f"{video.video_id}: " + ", ".join(ccs))
    axes[1].set_xlabel("time (s)")
    fig.tight_layout()
    return fig


def plot_video_png(video, preds) -> bytes:
    """PNG bytes of `video_figure` (the figure is closed afterwards)."""
    from matplotlib import pyplot as plt

    fig = video_figure(video, preds)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=PLOT_STYLE["dpi"])
    plt.close(fig)
    return buf.getvalue()


def _write_predictions(predictions_dir: str, video, preds) -> None:
    frame = pd.DataFrame({
        "frame": np.arange(len(preds)), "timestamp_s": video.timestamp,
        "valence": preds[:, 0], "arousal": preds[:, 1],
        "valence_true": np.where(video.mask > 0, video.labels[:, 0], np.nan),
        "arousal_true": np.where(video.mask > 0, video.labels[:, 1], np.nan)})
    safe = video.video_id.replace("/", "_")
    with atomic.path(os.path.join(predictions_dir, f"{safe}.csv")) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.5f")


def evaluate_model(temporal, files: List[str], feature_dim: int, config,
                   predictions_dir: Optional[str] = None, plot_videos: int = 1,
                   ) -> Tuple[pd.DataFrame, pd.DataFrame, List[tuple]]:
    """Scores every video (`ast_net.metrics.Evaluation`); optionally writes per-frame
    prediction CSVs.

    Args:
      plot_videos: how many (video, predictions) pairs to keep for plots (the first ones).

    Returns:
      (per-video rows, summary table (see `ast_net.metrics`), up to `plot_videos`
      (video, preds) pairs).
    """
    evaluation = metrics.Evaluation()
    kept = []
    if predictions_dir:
        os.makedirs(predictions_dir, exist_ok=True)
    for video, preds in predict_videos(temporal, files, feature_dim, config):
        evaluation.add(video.video_id, video.labels, preds, video.mask)
        if len(kept) < plot_videos:
            kept.append((video, preds))
        if predictions_dir:
            _write_predictions(predictions_dir, video, preds)
    return evaluation.per_video(), evaluation.summary(), kept


def evaluate_workdir(workdir: str, split: str, data_dir: Optional[str] = None,
                     out_dir: Optional[str] = None, merge_phases: Optional[bool] = None,
                     step=None) -> Tuple[pd.DataFrame, pd.DataFrame, str]:
    """Evaluates a checkpoint of `workdir` on `split`: `step` "latest" (None) / "best" / a
    number, resolved by `workdir.resolve_checkpoint`.

    Writes `<out_dir>/<split>_per_video.csv` (`metrics.PER_VIDEO_COLUMNS`: video, dimension,
    CC, CCC, RMSE, frames, CC undefined), `<out_dir>/<split>_summary.csv` (one row per
    dimension, `metrics.SUMMARY_COLUMNS`), per-frame prediction CSVs and a plot of the first
    video, each file atomically.
    Paths may start with `~`. A record that does not match the schema is one UserError naming
    its file, record and key.

    `merge_phases` overrides the workdir's `config.output.merge_phases` (None: keep it).

    Returns:
      (per-video rows, summary table, path of the per-video CSV).
    """
    workdir = os.path.expanduser(workdir)
    temporal, config, info, step = training_run.load_temporal(workdir, step)
    if merge_phases is not None:
        config.output = dict(config.get("output") or {}, merge_phases=bool(merge_phases))
    data_dir = os.path.expanduser(data_dir or config.data.data_dir)
    out_dir = os.path.expanduser(out_dir) if out_dir else None
    files = records.list_files(data_dir, split)
    feature_dim = records.validate_files(files)
    training_run.check_compatible(workdir, config, feature_dim)
    out_dir = out_dir or os.path.join(workdir, "eval")
    os.makedirs(out_dir, exist_ok=True)
    per_video, summary, first = evaluate_model(
        temporal, files, feature_dim, config,
        predictions_dir=os.path.join(out_dir, f"{split}_predictions"))
    csv_path = os.path.join(out_dir, f"{split}_per_video.csv")
    with atomic.path(csv_path) as tmp:
        per_video.to_csv(tmp, index=False, float_format="%.4f")
    with atomic.path(os.path.join(out_dir, f"{split}_summary.csv")) as tmp:
        summary.to_csv(tmp, float_format="%.4f")
    if first:
        with atomic.open(os.path.join(out_dir, f"{split}_first_video.png"), "wb") as f:
            f.write(plot_video_png(*first[0]))
    return per_video, summary, csv_path
