"""The outputs of ast-net-predict and ast-net-realtime: predictions CSV, sidecar, plot, video.

* `CsvWriter`: one row per frame and face, columns `CSV_COLUMNS` (docs/outputs.md); a frame
  with no face gets one row with `face_present` 0 and every face column empty. Rows go to the
  `ast_net.atomic` temporary name (flushed every `flush_every_s`), renamed by `close()`,
  removed by `abort()`; nothing is kept per video, so memory stays flat.
* `write_sidecar`: `<name>.json` beside the CSV (model, contract, sampling, versions, run
  time), written atomically; `predict_lib.run_record` fills it.
* `plot_csv` / `plot_figure` (`outputs_plot.py`): valence and arousal over time, one line per
  face id, in bounded memory.
* `draw` / `VideoSink` (`outputs_video.py`): the annotated frames, and the annotated H.264 (or
  mp4v) video appearing under its name only when complete.
* `ensure_out_dir`: the output folder, created and checked writable before any work.

A new output format is one more writer with the same `write` / `close` / `abort` shape, used
by `predict_lib.predict_video` and `realtime_lib.run_realtime`. This module imports neither
TensorFlow nor the detector: predict checks `--out_dir` with it before TensorFlow starts.
"""

from __future__ import annotations

import csv
import math
import os
import tempfile
import time
from typing import Optional

from ast_net import atomic, errors, outputs_plot, outputs_video
from ast_net.models import backbones

# The detector's 5 landmarks (`faces.detector.LANDMARK_KEYS`, same order; a test checks).
LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
EMOTION_COLUMNS = tuple(f"emotion_{e.lower()}" for e in backbones.EMOTIONS)
# Stable order: the first 10 are the original columns, unchanged; new columns only go last.
CSV_COLUMNS = ("frame", "timestamp_s", "face_id", "face_present", "valence", "arousal",
               "box_x", "box_y", "box_w", "box_h", "confidence",
               *(f"{k}_{c}" for k in LANDMARKS for c in "xy"), *EMOTION_COLUMNS)
SIDECAR_VERSION = 1  # `format_version` of the `<name>.json` sidecar.
# The plot and the annotated video live in their own modules; their names stay here too.
MAX_PLOT_IDS = outputs_plot.MAX_PLOT_IDS
MAX_PLOT_POINTS = outputs_plot.MAX_PLOT_POINTS
plot_figure = outputs_plot.plot_figure
plot_csv = outputs_plot.plot_csv
draw = outputs_video.draw
model_label = outputs_video.model_label
VideoSink = outputs_video.VideoSink


def ensure_out_dir(path: str) -> str:
    """Creates the output directory `path` (and its parents) if needed, and checks that a file
    can be written in it (by writing and removing one: permission bits do not tell, e.g. for
    root or on a read-only mount).

    Raises errors.UserError, naming the path, when it exists and is not a directory, a parent
    is a file, it cannot be created, or nothing can be written in it.
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise errors.UserError(f"{path}: --out_dir exists and is not a directory")
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


def _num(value: Optional[float], digits: int) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


_Abort = outputs_video._Abort  # Thrown into an `atomic` context: remove its temporary file.


def csv_rows(pred) -> list[tuple]:
    """The `CSV_COLUMNS` rows of one `inference.FramePrediction`: one per face, or one with
    `face_present` 0 and empty values for a frame without a face (the one place that formats
    them: `CsvWriter` and the notebook API's DataFrames)."""
    ts = f"{pred.timestamp:.6f}"
    if not pred.faces:
        return [(pred.index, ts, "", 0) + ("",) * (len(CSV_COLUMNS) - 4)]
    rows = []
    for f in pred.faces:
        x, y, w, h = f.box
        marks = getattr(f, "landmarks", None) or {}
        emotions = getattr(f, "emotions", None)
        rows.append(
            (pred.index, ts, f.track_id, 1, _num(f.valence, 6), _num(f.arousal, 6),
             _num(x, 2), _num(y, 2), _num(w, 2), _num(h, 2),
             _num(getattr(f, "confidence", None), 6))
            + tuple(_num(marks[k][c], 3) if k in marks else ""
                    for k in LANDMARKS for c in (0, 1))
            + (tuple(_num(float(p), 6) for p in emotions) if emotions is not None
               else ("",) * len(EMOTION_COLUMNS)))
    return rows


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
        rows = csv_rows(pred)
        self._csv.writerows(rows)
        self.rows += len(rows)
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


def sidecar_path(csv_path: str) -> str:
    """`<name>.json` beside `<name>.csv`."""
    return os.path.splitext(csv_path)[0] + ".json"


def write_sidecar(csv_path: str, record: dict) -> str:
    """Writes `record` (plus `format_version` and the CSV's `columns`) atomically as the JSON
    sidecar of `csv_path`; returns its path."""
    path = sidecar_path(csv_path)
    atomic.write_json(path, {"format_version": SIDECAR_VERSION,
                             "columns": list(CSV_COLUMNS), **record})
    return path


def remove(path: Optional[str]) -> None:
    try:
        if path:
            os.remove(path)
    except FileNotFoundError:
        pass
