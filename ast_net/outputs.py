"""The outputs of ast-net-predict and ast-net-realtime: predictions CSV, plot, annotated video.

* `CsvWriter`: one row per frame and face, columns `CSV_COLUMNS`; a frame with no face gets one
  row with `face_present` 0 and empty face_id / values / box. Rows go to the `ast_net.atomic`
  temporary name (flushed every `flush_every_s`), renamed by `close()`, removed by `abort()`.
* `plot_csv` / `plot_figure`: valence and arousal over time, one line per face id, read back
  from the CSV in chunks in bounded memory: at most `MAX_PLOT_IDS` ids (the longest tracks) and
  `MAX_PLOT_POINTS` points per line (means over consecutive frames).
* `draw`: a frame with each face's box, track id and values (annotated video, live display).
* `VideoSink`: the annotated mp4v video, appearing under its name only when complete.
* `ensure_out_dir`: the output folder, created and checked writable before any work.

A new output format is one more writer here with the same `write` / `close` / `abort` shape,
used by `predict_lib.predict_video` and `realtime_lib.run_realtime`.
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
import time
from typing import Optional

import cv2
import numpy as np

from ast_net import atomic, errors

CSV_COLUMNS = ("frame", "timestamp_s", "face_id", "face_present", "valence", "arousal",
               "box_x", "box_y", "box_w", "box_h")
MAX_PLOT_IDS = 10  # Face ids drawn in a plot: the longest tracks.
MAX_PLOT_POINTS = 2000  # Points per line of a plot (the frames of a bin are averaged).


def ensure_out_dir(path: str) -> str:
    """Creates the output directory `path` (and its parents) if needed, and checks that a file
    can be written in it (by writing and removing one: permission bits do not tell, e.g. for
    root or on a read-only mount).

    Raises errors.UserError, naming the path, when it exists and is not a directory, a parent
    is a file, it cannot be created, or nothing can be written in it.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise errors.UserError(f"{path}: --out exists and is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise errors.UserError(f"{path}: cannot create the output directory "
                               f"({e.strerror or e})") from None
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=".ast_net-write-check-")
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise errors.UserError(f"{path}: cannot write in the output directory "
                               f"({e.strerror or e})") from None
    return path


def _num(value: float, digits: int) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


class _Abort(Exception):
    """Thrown into an `atomic` context to make it remove its temporary file."""


class CsvWriter:
    """Writes `CSV_COLUMNS` rows of FramePredictions to `atomic.temporary_name(path)`;
    `close()` renames it to `path`, `abort()` removes it."""

    def __init__(self, path: str, flush_every_s: float = 1.0):
        self.path = path
        self.temp = atomic.temporary_name(path)
        self.flush_every_s = flush_every_s
        self._context = atomic.open(path, "w", newline="")
        self._file = self._context.__enter__()
        self._done = False
        self._csv = csv.writer(self._file)
        self._csv.writerow(CSV_COLUMNS)
        self._last_flush = time.monotonic()
        self.rows = 0

    def write(self, pred) -> None:
        """Rows of one `inference.FramePrediction`."""
        ts = f"{pred.timestamp:.6f}"
        if not pred.faces:
            self._csv.writerow((pred.index, ts, "", 0, "", "", "", "", "", ""))
            self.rows += 1
        for f in pred.faces:
            x, y, w, h = f.box
            self._csv.writerow((pred.index, ts, f.track_id, 1, _num(f.valence, 6),
                                _num(f.arousal, 6), _num(x, 2), _num(y, 2), _num(w, 2),
                                _num(h, 2)))
            self.rows += 1
        if time.monotonic() - self._last_flush >= self.flush_every_s:
            self.flush()

    def flush(self) -> None:
        self._file.flush()
        self._last_flush = time.monotonic()

    def close(self) -> str:
        """Flushes, closes and renames the file to `path` (returned). On an error (disk full
        on the last flush ...) the temporary file is removed and the error raised."""
        if not self._done:
            self._done = True
            self._context.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        """Closes and deletes the temporary file (never raises: it runs while another error
        is on its way up)."""
        if not self._done:
            self._done = True
            try:
                self._context.__exit__(_Abort, _Abort(), None)
            except OSError:  # The close's own flush failed (disk full): the file is gone.
                pass


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
    for face_id, values in series.items():
        for ax, ys in zip(axes, values):
            ax.plot(times, ys, lw=1.2, label=f"face {face_id}")
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
    else:
        axes[0].legend(loc="upper right", fontsize=8)
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


def draw(rgb: np.ndarray, pred, extra: str = "") -> np.ndarray:
    """A BGR copy of the frame with each face's box, id and current values (and `extra`)."""
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    scale = max(bgr.shape[0] / 720.0, 0.4)
    thick = max(int(round(2 * scale)), 1)
    for f in pred.faces:
        x, y, w, h = (int(round(v)) for v in f.box)
        cv2.rectangle(bgr, (x, y), (x + w, y + h), (0, 220, 0), thick)
        label = f"id {f.track_id}  V {f.valence:+.2f}  A {f.arousal:+.2f}"
        cv2.putText(bgr, label, (x, max(y - 6, 12)), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale,
                    (0, 220, 0), thick, cv2.LINE_AA)
    text = f"t {pred.timestamp:7.2f} s  frame {pred.index}" + (f"  {extra}" if extra else "")
    cv2.putText(bgr, text, (8, bgr.shape[0] - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.55 * scale,
                (255, 255, 255), thick, cv2.LINE_AA)
    return bgr


class VideoSink:
    """An mp4v video under `atomic.path(path)`: `close()` makes it appear, `abort()` removes it.

    cv2.VideoWriter picks the container from the file name's extension, so the frames go to the
    atomic temporary name plus `.mp4`, moved onto that temporary name when the video is done.
    """

    def __init__(self, path: str, fps: float, width: int, height: int):
        self.path = path
        self._context = atomic.path(path)
        self._temp = self._context.__enter__()
        self.part = self._temp + ".mp4"
        self._done = False
        self._writer = cv2.VideoWriter(self.part, cv2.VideoWriter_fourcc(*"mp4v"), float(fps),
                                       (int(width), int(height)))
        if not self._writer.isOpened():
            self.abort()
            raise errors.UserError(f"{path}: cannot write an mp4v video here")

    def write(self, bgr: np.ndarray) -> None:
        self._writer.write(bgr)

    def close(self) -> str:
        if not self._done:
            self._done = True
            self._writer.release()
            try:
                os.replace(self.part, self._temp)
            except BaseException as e:
                remove(self.part)
                self._context.__exit__(type(e), e, e.__traceback__)
                raise
            self._context.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        if not self._done:
            self._done = True
            self._writer.release()
            remove(self.part)
            self._context.__exit__(_Abort, _Abort(), None)


def remove(path: Optional[str]) -> None:
    try:
        if path:
            os.remove(path)
    except FileNotFoundError:
        pass
