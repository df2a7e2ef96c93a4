"""ast-net-predict's work: videos -> per-frame valence/arousal CSV, a plot, an annotated copy.

For each video `predict_video` streams the frames through the engine (`inference.Engine`:
tracking, alignment, CNN, LSTM or zero-shot head) and writes, in `out_dir`:

* `<name>.csv`: one row per frame and face, columns `CSV_COLUMNS`. A frame with no face gets one
  row with `face_present` 0 and empty face_id / values / box, so no frame is ever dropped and
  every row has its frame index and `timestamp_s = frame / fps`. Rows are written as the frames
  come out of the engine (to `<name>.csv.part`, renamed when the video is done), so memory stays
  flat however long the video is.
* `<name>.png`: valence and arousal over time, one line per face id (drawn from the CSV at the
  end).
* with `annotate`: `<name>_annotated.mp4` (OpenCV `mp4v`), each frame with the face boxes, track
  ids and current values.

`predict(inputs, ...)` takes a file, a directory (its video files, not recursive) or a glob,
loads the models once and runs every video; a video that fails (cannot be opened, damaged,
truncated) is reported in one line and the others go on; the summary names the failures and
`predict` then raises `errors.UserError`, so the binary exits non-zero.
"""

from __future__ import annotations

import csv
import dataclasses
import glob
import math
import os
import sys
import time
from typing import Optional

import cv2
import numpy as np

from ast_net import errors
from ast_net.faces import video as video_lib

CSV_COLUMNS = ("frame", "timestamp_s", "face_id", "face_present", "valence", "arousal",
               "box_x", "box_y", "box_w", "box_h")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv",
                    ".flv", ".3gp", ".ts")


def expand_inputs(spec: str) -> list[str]:
    """A video path, a directory of videos or a glob -> the list of video paths.

    Raises errors.UserError when a directory or glob holds no video. A plain path is returned
    as is (opening it reports a missing or unreadable file).
    """
    if os.path.isdir(spec):
        paths = sorted(os.path.join(spec, n) for n in os.listdir(spec)
                       if n.lower().endswith(VIDEO_EXTENSIONS)
                       and os.path.isfile(os.path.join(spec, n)))
        if not paths:
            raise errors.UserError(f"{spec}: directory holds no video file (expected one of "
                                   f"{', '.join(VIDEO_EXTENSIONS)})")
        return paths
    if glob.has_magic(spec):
        paths = sorted(p for p in glob.glob(spec) if os.path.isfile(p))
        if not paths:
            raise errors.UserError(f"{spec}: no file matches this pattern")
        return paths
    return [spec]


def output_names(paths: list[str]) -> list[str]:
    """Output base names: the file stem, or the whole file name where two stems collide."""
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    return [os.path.basename(p) if stems.count(s) > 1 else s for p, s in zip(paths, stems)]


def ensure_out_dir(path: str) -> str:
    """Creates the output directory `path` (and its parents) if needed.

    Raises errors.UserError, naming the path, when it exists and is not a directory, a parent
    is a file, or it cannot be created (permissions, read-only file system ...).
    """
    if os.path.exists(path) and not os.path.isdir(path):
        raise errors.UserError(f"{path}: --out exists and is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise errors.UserError(f"{path}: cannot create the output directory "
                               f"({e.strerror or e})") from None
    return path


def _num(value: float, digits: int) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


class CsvWriter:
    """Writes `CSV_COLUMNS` rows of FramePredictions to `path.part`; `close()` renames it."""

    def __init__(self, path: str, flush_every_s: float = 1.0):
        self.path = path
        self.part = path + ".part"
        self.flush_every_s = flush_every_s
        self._file = open(self.part, "w", newline="")
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
        """Flushes, closes and renames `.part` to the final name; returns that path."""
        if not self._file.closed:
            self._file.close()
            os.replace(self.part, self.path)
        return self.path

    def abort(self) -> None:
        """Closes and deletes the partial file."""
        if not self._file.closed:
            self._file.close()
            os.remove(self.part)


def plot_figure(csv_path: str, title: str):
    """The matplotlib figure of `plot_csv`: two axes (valence, arousal), and on each one line
    per face id, labelled `face <id>`, over every frame time (NaN where that face is absent)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    data = pd.read_csv(csv_path, usecols=["timestamp_s", "face_id", "valence", "arousal"])
    fig, axes = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True)
    faces = data.dropna(subset=["face_id"])
    ids = sorted(faces["face_id"].astype(int).unique())
    for face_id in ids:
        # Reindex on every frame time so a face's line breaks where it is absent.
        rows = data[["timestamp_s"]].drop_duplicates().merge(
            faces[faces["face_id"] == face_id], on="timestamp_s", how="left")
        for ax, dim in zip(axes, ("valence", "arousal")):
            ax.plot(rows["timestamp_s"], rows[dim], lw=1.2, label=f"face {face_id}")
    for ax, dim in zip(axes, ("valence", "arousal")):
        ax.set_ylabel(dim)
        ax.set_ylim(-1.05, 1.05)
        ax.axhline(0.0, color="0.7", lw=0.6)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("time (s)")
    if data["timestamp_s"].size:
        axes[-1].set_xlim(float(data["timestamp_s"].min()),
                          max(float(data["timestamp_s"].max()), 1e-3))
    if not ids:
        axes[0].text(0.5, 0.5, "no face found in this video", transform=axes[0].transAxes,
                     ha="center", va="center")
    elif len(ids) <= 10:  # A legend of more faces would hide the lines.
        axes[0].legend(loc="upper right", fontsize=8)
    axes[0].set_title(title)
    fig.tight_layout()
    return fig


def plot_csv(csv_path: str, png_path: str, title: str) -> str:
    """Valence and arousal over time from a predictions CSV, one line per face; atomic PNG."""
    import matplotlib.pyplot as plt

    fig = plot_figure(csv_path, title)
    part = png_path + ".part"
    try:
        fig.savefig(part, format="png", dpi=100)
    finally:
        plt.close(fig)
    os.replace(part, png_path)
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
    """An mp4v video written to a temporary name and renamed by `close()`."""

    def __init__(self, path: str, fps: float, width: int, height: int):
        self.path = path
        self.part = path[:-4] + ".part.mp4"  # VideoWriter picks the container by extension.
        self._writer = cv2.VideoWriter(self.part, cv2.VideoWriter_fourcc(*"mp4v"), float(fps),
                                       (int(width), int(height)))
        if not self._writer.isOpened():
            raise errors.UserError(f"{path}: cannot write an mp4v video here")

    def write(self, bgr: np.ndarray) -> None:
        self._writer.write(bgr)

    def close(self) -> str:
        self._writer.release()
        os.replace(self.part, self.path)
        return self.path

    def abort(self) -> None:
        self._writer.release()
        if os.path.exists(self.part):
            os.remove(self.part)


@dataclasses.dataclass
class VideoResult:
    """What one video gave: output paths, counts, and `error` (None when it went well)."""

    path: str
    csv_path: Optional[str] = None
    plot_path: Optional[str] = None
    video_path: Optional[str] = None
    frames: int = 0
    frames_with_face: int = 0
    face_ids: tuple = ()
    seconds: float = 0.0
    error: Optional[str] = None


def predict_video(engine, path: str, out_dir: str, *, name: str = "",
                  annotate: bool = False, progress: bool = True,
                  mode: str = "") -> VideoResult:
    """Runs one video; see the module docstring. Raises errors.UserError if it cannot open."""
    reader = video_lib.iter_frames(path, prefetch=16)
    info = reader.info
    name = name or os.path.splitext(os.path.basename(path))[0]
    result = VideoResult(path=path)
    ensure_out_dir(out_dir)
    writer = CsvWriter(os.path.join(out_dir, name + ".csv"))
    sink = (VideoSink(os.path.join(out_dir, name + "_annotated.mp4"), info.fps, info.width,
                      info.height) if annotate else None)
    engine.keep_images = annotate
    engine.reset()
    from tqdm import tqdm

    bar = tqdm(total=info.num_frames or None, desc=os.path.basename(path), unit="frame",
               dynamic_ncols=True, disable=None if progress else True, file=sys.stderr)
    t0 = time.perf_counter()
    ids: set = set()
    try:
        for pred in engine.run(reader):
            writer.write(pred)
            result.frames += 1
            result.frames_with_face += bool(pred.faces)
            ids.update(f.track_id for f in pred.faces)
            if sink is not None:
                sink.write(draw(pred.image, pred))
            bar.update(1)
    except BaseException:
        writer.abort()
        if sink is not None:
            sink.abort()
        raise
    finally:
        bar.close()
        reader.close()
    result.seconds = time.perf_counter() - t0
    result.csv_path = writer.close()
    result.video_path = sink.close() if sink is not None else None
    result.face_ids = tuple(sorted(ids))
    title = f"{os.path.basename(path)}: {mode}" if mode else os.path.basename(path)
    result.plot_path = plot_csv(result.csv_path, os.path.join(out_dir, name + ".png"), title)
    if reader.truncated:
        result.error = f"{reader.error}; the CSV holds the {result.frames} frames decoded"
    return result


def predict(inputs: list[str], out_dir: str, *, checkpoint: Optional[str] = None,
            annotate: bool = False, progress: bool = True, engine=None,
            **engine_options) -> list[VideoResult]:
    """Runs every video of `inputs` (paths, directories or globs); see the module docstring.

    Args:
      inputs: video paths, directories or glob patterns.
      out_dir: where CSVs, plots and annotated videos go.
      checkpoint: an ast-net-train work directory (None: the zero-shot default).
      annotate: also write an annotated copy of each video.
      progress: show a progress bar per video (on a terminal).
      engine: an already loaded `inference.Engine` to use (then `checkpoint` only names the
        mode in plot titles and `engine_options` are ignored); None loads one.
      **engine_options: passed to `inference.load_engine` (backbone, detect_every, ...).

    Raises:
      errors.UserError: bad options or checkpoint (before any video), a single input that
        cannot be read, or, after all videos ran, if any of them failed.
    """
    paths = [p for spec in inputs for p in expand_inputs(spec)]
    if len(paths) == 1:  # A single video: opening errors are THE error, reported as such.
        video_lib.probe(paths[0])
    ensure_out_dir(out_dir)  # Before TensorFlow starts: a bad --out fails at once.
    if engine is None:
        # Imported here, after the inputs were checked: TensorFlow takes seconds to start.
        from ast_net import inference

        engine = inference.load_engine(checkpoint, **engine_options)
    mode = (f"AST-Net ({checkpoint})" if checkpoint
            else f"zero-shot {engine.backbone.name} + Russell circumplex")
    results = []
    for path, name in zip(paths, output_names(paths)):
        try:
            result = predict_video(engine, path, out_dir, name=name, annotate=annotate,
                                   progress=progress, mode=mode)
        except errors.UserError as e:
            result = VideoResult(path=path, error=str(e))
        results.append(result)
        if result.error:
            print(f"failed: {result.error}", file=sys.stderr, flush=True)
        else:
            fps = result.frames / max(result.seconds, 1e-9)
            print(f"{path}: {result.frames} frames ({result.frames_with_face} with a face, "
                  f"face ids {list(result.face_ids)}), {fps:.1f} frames/s -> "
                  f"{result.csv_path}, {result.plot_path}"
                  + (f", {result.video_path}" if result.video_path else ""), flush=True)
    failed = [r for r in results if r.error]
    print(f"done: {len(results) - len(failed)} of {len(results)} videos predicted"
          + (f", {len(failed)} failed" if failed else ""), flush=True)
    if failed:
        raise errors.UserError(f"{len(failed)} of {len(results)} videos failed: "
                               + "; ".join(r.path for r in failed))
    return results
