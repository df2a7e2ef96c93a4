"""The plot of ast-net-predict: valence and arousal over time, one line per face, bounded memory.

`plot_csv` / `plot_figure` read a predictions CSV (`outputs.CSV_COLUMNS`) back in chunks: at
most `MAX_PLOT_IDS` ids (the longest tracks; the title says how many of how many) and
`MAX_PLOT_POINTS` points per line (means over consecutive frames), so memory is a count per id
plus (MAX_PLOT_IDS + 1) x MAX_PLOT_POINTS numbers whatever the length of the video. The time
axis is in seconds (the CSV's `timestamp_s`); the title names the video and the model the
values come from (zero-shot or a trained checkpoint and its step), as the caller words it.
"""

from __future__ import annotations

import math

import numpy as np

from ast_net import atomic

MAX_PLOT_IDS = 10  # Face ids drawn in a plot (and named in its legend): the longest tracks.
MAX_PLOT_POINTS = 2000  # Points per line of a plot (the frames of a bin are averaged).


def _plot_series(csv_path: str, max_ids: int, max_points: int, chunk_rows: int):
    """Streams the CSV twice in chunks of `chunk_rows` rows: (1) rows per face id and the frame
    range; (2) for the `max_ids` longest tracks, per-bin sums of valence / arousal, the frames
    cut into at most `max_points` consecutive bins. Memory: a count per id plus
    (max_ids + 1) * max_points numbers, whatever the length of the video.

    Returns (bin times, {id: (valence, arousal)} of the ids drawn, rows per id of all ids).
    """
    import pandas as pd

    counts: dict = {}
    first, last = math.inf, -math.inf
    for chunk in pd.read_csv(csv_path, usecols=["frame", "face_id"], chunksize=chunk_rows):
        if not len(chunk):
            continue
        first, last = min(first, int(chunk["frame"].min())), max(last, int(chunk["frame"].max()))
        for face_id, n in chunk["face_id"].dropna().astype(np.int64).value_counts().items():
            counts[int(face_id)] = counts.get(int(face_id), 0) + int(n)
    if first > last:
        return np.zeros(0), {}, counts
    drawn = sorted(sorted(counts, key=lambda k: (-counts[k], k))[:max_ids])
    span = last - first + 1
    bins = min(span, max_points)
    t_sum, t_n = np.zeros(bins), np.zeros(bins)
    sums = {k: np.zeros((3, bins)) for k in drawn}  # valence, arousal, rows.
    columns = ["frame", "timestamp_s", "face_id", "valence", "arousal"]
    previous = None  # The last frame of the previous chunk (a frame's rows may straddle two).
    for chunk in pd.read_csv(csv_path, usecols=columns, chunksize=chunk_rows):
        frame = chunk["frame"].to_numpy(np.int64)
        if not frame.size:
            continue
        b = (frame - first) * bins // span
        new_frame = np.r_[frame[0] != previous, frame[1:] != frame[:-1]]  # A time per frame.
        previous = frame[-1]
        t_sum += np.bincount(b[new_frame], chunk["timestamp_s"].to_numpy(float)[new_frame],
                             minlength=bins)
        t_n += np.bincount(b[new_frame], minlength=bins)
        ids = chunk["face_id"].to_numpy(float)
        v, a = chunk["valence"].to_numpy(float), chunk["arousal"].to_numpy(float)
        valid = np.isfinite(v) & np.isfinite(a)
        for k in drawn:
            rows = valid & (ids == k)
            sums[k][0] += np.bincount(b[rows], v[rows], minlength=bins)
            sums[k][1] += np.bincount(b[rows], a[rows], minlength=bins)
            sums[k][2] += np.bincount(b[rows], minlength=bins)
    keep = t_n > 0
    times = t_sum[keep] / t_n[keep]
    series = {}
    for k in drawn:
        n = sums[k][2][keep]
        with np.errstate(invalid="ignore", divide="ignore"):
            series[k] = (np.where(n > 0, sums[k][0][keep] / n, np.nan),
                         np.where(n > 0, sums[k][1][keep] / n, np.nan))
    return times, series, counts


def plot_figure(csv_path: str, title: str, *, max_ids: int = MAX_PLOT_IDS,
                max_points: int = MAX_PLOT_POINTS, chunk_rows: int = 100_000):
    """The matplotlib figure of `plot_csv`: two axes (valence, arousal), and on each one line
    per drawn face id, labelled `face <id>`, over the frame times (NaN where that face is
    absent, so its line breaks). At most `max_ids` ids (the most rows; the title says how many
    of how many) and `max_points` points per line (a point = the mean over a run of
    consecutive frames; every frame is a point in a video of at most `max_points` frames)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times, series, counts = _plot_series(csv_path, max_ids, max_points, chunk_rows)
    fig, axes = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True)
    for i, (face_id, values) in enumerate(series.items()):
        for ax, ys in zip(axes, values):  # One colour per face on both axes.
            ax.plot(times, ys, lw=1.2, color=f"C{i % 10}", label=f"face {face_id}")
    for ax, dim in zip(axes, ("valence", "arousal")):
        ax.set_ylabel(dim)
        ax.set_ylim(-1.05, 1.05)
        ax.axhline(0.0, color="0.7", lw=0.6)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("time (s)")
    if times.size:
        axes[-1].set_xlim(float(times.min()), max(float(times.max()), 1e-3))
    if not series:
        axes[0].text(0.5, 0.5, "no face found in this video", transform=axes[0].transAxes,
                     ha="center", va="center")
    else:  # Beside the axes, not over the lines; at most MAX_PLOT_IDS entries.
        axes[0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
                       title="face id", title_fontsize=8, borderaxespad=0.0)
    if len(counts) > len(series):
        title += f" ({len(series)} longest of {len(counts)} face tracks shown)"
    axes[0].set_title(title)
    fig.tight_layout()
    return fig


def plot_csv(csv_path: str, png_path: str, title: str) -> str:
    """Valence and arousal over time from a predictions CSV, one line per face; atomic PNG."""
    import matplotlib.pyplot as plt

    fig = plot_figure(csv_path, title)
    try:
        with atomic.path(png_path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)
    return png_path
