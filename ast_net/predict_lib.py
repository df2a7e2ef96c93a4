"""ast-net-predict's work: videos -> per-frame valence/arousal CSV, a plot, an annotated copy.

For each video `predict_video` streams the frames through the engine (`inference.Engine`:
tracking, alignment, CNN, LSTM or zero-shot head) and writes, in `out_dir`:

* `<name>.csv`: one row per frame and face, columns `outputs.CSV_COLUMNS` (docs/outputs.md:
  the original ten, then detection confidence, the 5 landmarks and the 7 emotion
  probabilities). A frame with no face gets one row with `face_present` 0 and every face
  column empty, so no frame is ever dropped and every row has its frame index and
  `timestamp_s = frame / fps`. Rows are written as the frames come out of the engine (to the
  `ast_net.atomic` temporary name `.<name>.csv.<pid>.tmp`, renamed when the video is done), so
  memory stays flat however long the video is.
* `<name>.png`: valence and arousal over time, one line per face id, read back from the CSV in
  chunks in bounded memory: at most `outputs.MAX_PLOT_IDS` ids (the longest tracks; the title
  says so when there are more) and `outputs.MAX_PLOT_POINTS` points per line (means over
  consecutive frames).
* `<name>.json`: the sidecar (`run_record`): the model (zero-shot, or checkpoint and step), the
  preprocessing contract, sampling, package versions and run time. Not a video: never an input.
* with `annotate`: `<name>_annotated.mp4` (H.264 through imageio-ffmpeg's ffmpeg, else OpenCV
  `mp4v`; `outputs_video.py`), each frame with the face boxes, track ids and current values,
  text sized to the face box, and whether the values are zero-shot or from a trained model.
  Files named `*_annotated.mp4` are never taken as inputs from a directory or a glob (a later
  run over the same folder skips them); name one explicitly to predict it.

Every output appears under its final name only when it is complete (`ast_net.atomic`); a video
that fails leaves none of its outputs behind.

`predict(inputs, ...)` takes a file, a directory (its video files, not recursive) or a glob
(recursive: `dir/**/*.mp4` matches at any depth),
loads the models once and runs every video. A video that fails (cannot be opened, damaged,
truncated, an output that cannot be written) is reported in one line and the others go on,
except when the output folder is full or read-only (ENOSPC, EDQUOT, EROFS): every next video
would fail the same way, so the batch stops there and the videos not done are listed. The
summary names the failures and `predict` then raises `errors.UserError`, so the binary exits 2.

A video that looks sideways to the detector (`SidewaysCheck`: a face on fewer than half of its
first 100 frames, or most faces with their eyes one above the other) gets one warning line
suggesting it lacks a rotation tag. The progress bar is drawn only when stderr is a terminal.
"""

from __future__ import annotations

import dataclasses
import errno
import glob
import os
import sys
import time
from typing import Optional

from ast_net import atomic, errors, outputs
from ast_net.faces import video as video_lib
from ast_net.progress import bar as progress_bar

VIDEO_EXTENSIONS = video_lib.VIDEO_EXTENSIONS
ANNOTATED_SUFFIX = "_annotated.mp4"  # --annotate's output; never an input of a folder / glob.
# A full or read-only output device: every next video would fail too, so a batch stops.
STOP_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
FACE_CHECK_FRAMES = 100  # After this many frames (or at the end of a shorter video) ...
FACE_CHECK_MIN_FRAMES = 25  # ... of at least this many, a sideways video gets one warning.


def is_annotated_output(path: str) -> bool:
    """True for a file `--annotate` writes (`<name>_annotated.mp4`)."""
    return os.path.basename(path).lower().endswith(ANNOTATED_SUFFIX)


def expand_inputs(spec: str, skipped: Optional[list] = None) -> list[str]:
    """A video path, a directory of videos or a glob -> the list of video paths.

    From a directory or a glob, hidden files (a writer's temporary files) and `--annotate`
    outputs (`*_annotated.mp4`) are left out; the latter are appended to `skipped` if given.
    Raises errors.UserError when a directory or glob holds no video. A plain path is returned
    as is (opening it reports a missing or unreadable file).
    """
    if os.path.isdir(spec):
        found = sorted(os.path.join(spec, n) for n in os.listdir(spec)
                       if n.lower().endswith(VIDEO_EXTENSIONS) and not n.startswith(".")
                       and os.path.isfile(os.path.join(spec, n)))
        paths = _without_outputs(found, skipped)
        if not paths:
            raise errors.UserError(f"{spec}: directory holds no video file (expected one of "
                                   f"{', '.join(VIDEO_EXTENSIONS)}"
                                   + (f"; {len(found)} {ANNOTATED_SUFFIX} output(s) of "
                                      "--annotate skipped" if found else "") + ")")
        return paths
    if glob.has_magic(spec):
        found = sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p))
        paths = _without_outputs(found, skipped)
        if not paths:
            raise errors.UserError(f"{spec}: no file matches this pattern"
                                   + (f" (but {ANNOTATED_SUFFIX} outputs of --annotate)"
                                      if found else ""))
        return paths
    return [spec]


def _without_outputs(paths: list[str], skipped: Optional[list]) -> list[str]:
    outputs = [p for p in paths if is_annotated_output(p)]
    if skipped is not None:
        skipped.extend(outputs)
    return [p for p in paths if not is_annotated_output(p)]


def output_names(paths: list[str]) -> list[str]:
    """Output base names: the file stem, or the whole file name where two stems collide."""
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    return [os.path.basename(p) if stems.count(s) > 1 else s for p, s in zip(paths, stems)]


@dataclasses.dataclass
class VideoResult:
    """What one video gave: output paths, counts, and `error` (None when it went well)."""

    path: str
    csv_path: Optional[str] = None
    plot_path: Optional[str] = None
    video_path: Optional[str] = None
    sidecar_path: Optional[str] = None
    video_codec: Optional[str] = None  # "h264", or "mp4v" when no ffmpeg could write H.264.
    frames: int = 0
    frames_with_face: int = 0
    face_ids: tuple = ()
    seconds: float = 0.0
    error: Optional[str] = None
    warning: Optional[str] = None


class SidewaysCheck:
    """Counts what a video turned 90 degrees with no rotation tag looks like to the detector:
    frames without a face, and faces whose eye line is tilted more than 45 degrees (upright
    heads stay within about 25: `WolfgangLanger_Pexels.mp4` looking down and up, 5th-95th
    percentile -24 to 7 degrees; `single_face.mp4` turned 90 degrees: 82% of its faces past
    45)."""

    def __init__(self):
        self.frames = self.with_face = self.faces = self.tilted = 0

    def add(self, pred) -> None:
        self.frames += 1
        self.with_face += bool(pred.faces)
        for f in pred.faces:
            (lx, ly), (rx, ry) = f.landmarks["left_eye"], f.landmarks["right_eye"]
            self.faces += 1
            self.tilted += abs(ry - ly) > abs(rx - lx)

    def warning(self, path: str) -> Optional[str]:
        """One line if fewer than half of the frames have a face, or more than half of the
        faces are tilted past 45 degrees (after at least FACE_CHECK_MIN_FRAMES frames)."""
        if self.frames < FACE_CHECK_MIN_FRAMES:
            return None
        if 2 * self.with_face < self.frames:
            what = f"a face on only {self.with_face} of the first {self.frames} frames"
        elif 2 * self.tilted > self.faces:
            what = (f"{self.tilted} of {self.faces} faces in the first {self.frames} frames "
                    "have their eyes one above the other")
        else:
            return None
        return (f"warning: {path}: {what}; if the video is sideways (turned 90 degrees with no "
                "rotation tag), rotate it first, e.g. ffmpeg -i IN -vf transpose=1 OUT")


def model_title(engine, checkpoint: Optional[str] = None) -> str:
    """The model in a plot title: `zero-shot mini_xception + Russell circumplex` or
    `AST-Net <checkpoint>, step N`."""
    info = getattr(engine, "model_info", None) or {}
    if info.get("kind") == "checkpoint" or checkpoint:
        where = info.get("checkpoint", checkpoint)
        return f"AST-Net {where}" + (f", step {info['step']}" if info.get("step") is not None
                                     else "")
    return f"zero-shot {engine.backbone.name} + Russell circumplex"


def run_record(engine, path: str, info, result: VideoResult, started: float,
               complete: bool = True) -> dict:
    """The sidecar of one video (`outputs.write_sidecar`): model, contract, sampling,
    versions, run time."""
    import platform

    import cv2

    import ast_net

    contract = getattr(engine, "contract", None)
    versions = {"ast_net": ast_net.__version__, "python": platform.python_version(),
                "opencv": cv2.__version__}
    for module in ("tensorflow", "keras", "imageio_ffmpeg"):
        if module in sys.modules:
            versions[module] = getattr(sys.modules[module], "__version__", "")
    return {
        "video": os.path.abspath(path),
        "outputs": {k: os.path.basename(v) for k, v in (
            ("csv", result.csv_path), ("plot", result.plot_path),
            ("annotated_video", result.video_path)) if v},
        "model": dict(getattr(engine, "model_info", None) or {}),
        "contract": contract.to_dict() if contract is not None else None,
        "sampling": {
            "fps": info.fps, "width": info.width, "height": info.height,
            "frames": result.frames, "frames_with_face": result.frames_with_face,
            "face_ids": len(result.face_ids), "timestamp_s": "frame / fps",
            "every_frame": True, "detect_every": engine.detect_every,
            "refine_every": engine.refine_every, "max_faces": engine.max_faces,
            "batch_frames": engine.batch_frames},
        "annotated_codec": result.video_codec if result.video_path else None,
        "versions": versions,
        "run": {"started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                "seconds": round(result.seconds, 3),
                "frames_per_s": round(result.frames / max(result.seconds, 1e-9), 2),
                "complete": complete},
    }


def predict_video(engine, path: str, out_dir: str, *, name: str = "",
                  annotate: bool = False, progress: bool = True,
                  mode: str = "") -> VideoResult:
    """Runs one video; see the module docstring.

    Raises:
      errors.UserError: the video cannot be opened.
      OSError: an output cannot be written (nothing of this video is left in `out_dir`, and
        the decode and face threads have stopped when it is raised).
    """
    reader = video_lib.iter_frames(path, prefetch=16)
    info = reader.info
    name = name or os.path.splitext(os.path.basename(path))[0]
    result = VideoResult(path=path)
    writer = sink = results = bar = None
    started = time.time()
    done: list[str] = []  # Outputs of this video already under their final name.
    try:
        outputs.ensure_out_dir(out_dir)
        writer = outputs.CsvWriter(os.path.join(out_dir, name + ".csv"))
        if annotate:
            sink = outputs.VideoSink(os.path.join(out_dir, name + ANNOTATED_SUFFIX),
                             info.fps, info.width, info.height)
        engine.reset()
        bar = progress_bar(total=info.num_frames or None, desc=os.path.basename(path),
                           unit="frame", dynamic_ncols=True, enabled=progress)
        t0 = time.perf_counter()
        ids: set = set()
        sideways = SidewaysCheck()
        label = outputs.model_label(engine)
        results = engine.run(reader, keep_images=annotate)
        for pred in results:
            writer.write(pred)
            result.frames += 1
            result.frames_with_face += bool(pred.faces)
            ids.update(f.track_id for f in pred.faces)
            if sink is not None:
                sink.write(outputs.draw(pred.image, pred, model=label))
            bar.update(1)
            if sideways.frames < FACE_CHECK_FRAMES:
                sideways.add(pred)
                if sideways.frames == FACE_CHECK_FRAMES:
                    _warn(result, sideways.warning(path))
        if sideways.frames < FACE_CHECK_FRAMES:  # A shorter video: checked at its end.
            _warn(result, sideways.warning(path))
        result.seconds = time.perf_counter() - t0
        done.append(writer.close())
        result.csv_path = writer.path
        if sink is not None:
            done.append(sink.close())
            result.video_path, result.video_codec = sink.path, sink.codec
        result.face_ids = tuple(sorted(ids))
        title = f"{os.path.basename(path)}: {mode}" if mode else os.path.basename(path)
        result.plot_path = outputs.plot_csv(result.csv_path, os.path.join(out_dir, name + ".png"),
                                            title)
        done.append(result.plot_path)
        result.sidecar_path = outputs.write_sidecar(
            result.csv_path, run_record(engine, path, info, result, started,
                                        complete=not reader.truncated))
    except BaseException:
        _stop(results, reader)  # The threads first: nothing may outlive a failed video.
        for part in (writer, sink):
            if part is not None:
                part.abort()
        for output in done:  # A failed video leaves no output (no lone CSV without its plot).
            outputs.remove(output)
        raise
    finally:
        _stop(results, reader)
        if bar is not None:
            bar.close()
    if reader.truncated:
        result.error = f"{reader.error}; the CSV holds the {result.frames} frames decoded"
    return result


def _warn(result: VideoResult, warning: Optional[str]) -> None:
    if warning and not result.warning:
        result.warning = warning
        print(warning, file=sys.stderr, flush=True)


def _stop(results, reader) -> None:
    """Stops the engine's face thread (closing its generator) and then the decode thread."""
    if results is not None:
        results.close()
    reader.close()


def format_ids(ids, limit: int = 10) -> str:
    """`[0, 1, 2]` for a few ids; `0-399 (400)` for a run; `0, 2, 5, 7, 9, ... 977 (400)`."""
    ids = sorted(ids)
    if len(ids) <= limit:
        return str(list(ids))
    if ids[-1] - ids[0] + 1 == len(ids):
        return f"{ids[0]}-{ids[-1]} ({len(ids)})"
    return ", ".join(str(i) for i in ids[:5]) + f", ... {ids[-1]} ({len(ids)})"


def _some(paths: list[str], limit: int = 5) -> str:
    shown = "; ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def _write_error(path: str, out_dir: str, e: OSError) -> str:
    name = e.filename2 or e.filename  # os.replace: the final name, not the temporary one.
    where = f" ({name})" if name else ""
    return f"{path}: cannot write its outputs in {out_dir}: {e.strerror or e}{where}"


def predict(inputs: list[str], out_dir: str, *, checkpoint: Optional[str] = None,
            annotate: bool = False, progress: bool = True, engine=None,
            options=None, **engine_options) -> list[VideoResult]:
    """Runs every video of `inputs` (paths, directories or globs); see the module docstring.

    Args:
      inputs: video paths, directories or glob patterns.
      out_dir: where CSVs, plots and annotated videos go.
      checkpoint: an ast-net-train work directory (None: the zero-shot default).
      annotate: also write an annotated copy of each video.
      progress: show a progress bar per video (on a terminal only).
      engine: an already loaded `inference.Engine` to use (then `checkpoint` only names the
        mode in plot titles and `options` / `engine_options` are ignored); None loads one.
      options: an `engine_options.EngineOptions` (the flags of ast-net-predict).
      **engine_options: passed to `inference.load_engine` (backbone, detect_every, ...).

    Raises:
      errors.UserError: bad options or checkpoint, an output folder that cannot be written
        (before any video), a single input that cannot be read, or, after the batch, if any
        video failed or the batch stopped at a full / read-only output device.
    """
    skipped: list[str] = []
    paths = [p for spec in inputs for p in expand_inputs(spec, skipped)]
    if skipped:
        print(f"skipped {len(skipped)} {ANNOTATED_SUFFIX} file(s), outputs of --annotate "
              f"({_some(skipped, 3)}); name one explicitly to predict it", flush=True)
    if len(paths) == 1:  # A single video: opening errors are THE error, reported as such.
        video_lib.probe(paths[0])
    outputs.ensure_out_dir(out_dir)  # Before TensorFlow starts: a bad --out fails at once.
    atomic.remove_leftovers(out_dir)  # Temporary files of a killed run.
    if engine is None:
        # Imported here, after the inputs were checked: TensorFlow takes seconds to start.
        from ast_net import inference

        engine = inference.load_engine(checkpoint, options, **engine_options)
    mode = model_title(engine, checkpoint)
    results, not_done, stopped = [], [], ""
    for i, (path, name) in enumerate(zip(paths, output_names(paths))):
        try:
            result = predict_video(engine, path, out_dir, name=name, annotate=annotate,
                                   progress=progress, mode=mode)
        except errors.UserError as e:
            result = VideoResult(path=path, error=str(e))
        except OSError as e:
            result = VideoResult(path=path, error=_write_error(path, out_dir, e))
            if e.errno in STOP_ERRNOS:
                stopped = f"{out_dir}: {e.strerror or errno.errorcode.get(e.errno, e.errno)}"
                not_done = paths[i + 1:]
        results.append(result)
        if result.error:
            print(f"failed: {result.error}", file=sys.stderr, flush=True)
        else:
            fps = result.frames / max(result.seconds, 1e-9)
            print(f"{path}: {result.frames} frames ({result.frames_with_face} with a face, "
                  f"face ids {format_ids(result.face_ids)}), {fps:.1f} frames/s -> "
                  f"{result.csv_path}, {result.plot_path}"
                  + (f", {result.video_path}" if result.video_path else "")
                  + f", {result.sidecar_path}", flush=True)
        if stopped:
            break
    failed = [r for r in results if r.error]
    total = len(paths)
    print(f"done: {len(results) - len(failed)} of {total} videos predicted"
          + (f", {len(failed)} failed" if failed else "")
          + (f", {len(not_done)} not done (stopped: {stopped})" if stopped else ""),
          flush=True)
    if failed:
        message = f"{len(failed)} of {total} videos failed: {_some([r.path for r in failed])}"
        if stopped:
            message += (f"; the batch stopped ({stopped})"
                        + (f", not done: {_some(not_done)}" if not_done else ""))
        raise errors.UserError(message)
    return results
