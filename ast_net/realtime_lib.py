"""ast-net-realtime's work: the streaming engine on a camera, a stream URL or a video file, live.

Three things run at once: a capture thread (`LiveSource`) reads frames and keeps only the
NEWEST one; the engine's face thread takes it when it is free (tracking + alignment); the main
thread runs the CNN and the LSTM on whatever frames are ready (`Engine.run(greedy=True)`, at most
`batch_frames` at a time) and writes the CSV. When the source is faster than the model, frames
are dropped at the capture stage instead of queueing, so latency stays bounded by about one
batch. For a video FILE, `pace=True` plays it at its own frame rate (dropping frames if we are
slow, like a camera); `pace=False` hands over every frame as fast as the model takes them (no
drops: a file processed at full speed).

Every second the log gets one line: processed frames/s, median latency (capture of a frame to
its prediction), frames dropped. With `display`, the annotated frames are shown with
`cv2.imshow` (press q to stop), with the last second's frames/s and median latency drawn on
them (`status_text`, the log line's figures); the pip package `opencv-python-headless` has no
GUI, in which case that is said once and the figures stay in the log.

Each session writes its own CSV, `<out_dir>/<source name>-<UTC start, YYYYMMDDTHHMMSSZ>.csv`
(`-2`, `-3` ... appended if that name is taken), so a session never overwrites an earlier one's
output, whether it ran on the same camera or on another file of the same name. The columns are
those of `outputs.CSV_COLUMNS`, rows only for processed frames (`frame` = index in the
source, so dropped frames show as gaps). While the session runs the rows go, flushed every
second, to the `ast_net.atomic` temporary name beside it (`.<session>.csv.<pid>.tmp`).

Ctrl-C (SIGINT), and SIGTERM once the binary installed `on_sigterm` as its handler, stop
cleanly: the CSV is flushed, closed and renamed, a summary is printed, and `run_realtime`
returns normally, so the binary exits 0. The end of a file or stream does the same. The CSV is
only created once the model is loaded and warmed up: a Ctrl-C before that leaves no file (the
KeyboardInterrupt propagates: `interrupted`, exit status 130). A CSV that cannot be written
(disk full, folder removed ...) stops the session with one `errors.UserError` line: its
temporary file is removed, the capture and face threads are stopped.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from typing import Optional

import cv2
import numpy as np

from ast_net import errors, outputs


def parse_source(source: str):
    """'0' -> ("camera", 0); 'rtsp://...' -> ("stream", url); a path -> ("file", path)."""
    source = str(source).strip()
    if re.fullmatch(r"\d+", source):
        return "camera", int(source)
    if "://" in source:
        return "stream", source
    if not os.path.isfile(source):
        raise errors.UserError(f"{source}: no such video file (a --source is a camera index, "
                               "a stream URL or a video file)")
    return "file", source


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised by `on_sigterm`: ends a session like Ctrl-C (it is a KeyboardInterrupt,
    so every clean-up path of Ctrl-C runs for it too)."""


def on_sigterm(signum, frame):
    """A `signal.signal(signal.SIGTERM, ...)` handler for binaries: raises `Terminated`."""
    raise Terminated()


def session_csv(out_dir: str, name: str, now: Optional[float] = None) -> str:
    """`<out_dir>/<name>-<UTC YYYYMMDDTHHMMSSZ>.csv` of a session started at `now` (time.time
    seconds; default: now), with `-2`, `-3` ... if that file exists already."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    base = os.path.join(out_dir, f"{name}-{stamp}")
    path, k = base + ".csv", 1
    while os.path.exists(path):
        k += 1
        path = f"{base}-{k}.csv"
    return path


def source_name(kind: str, value) -> str:
    if kind == "camera":
        return f"camera{value}"
    if kind == "file":
        return os.path.splitext(os.path.basename(value))[0]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(value).split("://", 1)[-1]).strip("_") or "stream"


class LiveSource:
    """A capture thread keeping only the newest frame; iterate for `(index, t_s, rgb, t_cap)`.

    Args:
      source: a `--source` string (see `parse_source`).
      pace: files only: play at the file's frame rate (True) or hand over every frame (False).
    """

    def __init__(self, source: str, pace: bool = True):
        self.kind, value = parse_source(source)
        self.name = source_name(self.kind, value)
        self.pace = pace and self.kind == "file"
        previous = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        try:
            self.capture = cv2.VideoCapture(value)
            ok = self.capture.isOpened()
            first = self.capture.read()[1] if ok else None
        finally:
            cv2.utils.logging.setLogLevel(previous)
        if first is None:
            self.capture.release()
            what = {"camera": f"camera {value}", "stream": f"stream {value}",
                    "file": f"{value}"}[self.kind]
            raise errors.UserError(f"{what}: cannot be opened (no such device, in use, "
                                   "unreachable or not a video)")
        fps = float(self.capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if np.isfinite(fps) and 0 < fps < 1000 else 30.0
        self.height, self.width = first.shape[:2]
        self.dropped = 0
        self.captured = 0
        self._first = first
        self._slot = None
        self._ended = False
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="ast_net-capture")
        self._t0 = 0.0

    def start(self) -> "LiveSource":
        """Starts the capture thread (the source is opened, and checked, by the constructor)."""
        self._t0 = time.perf_counter()
        self._thread.start()
        return self

    def _loop(self) -> None:
        bgr, index = self._first, 0
        try:
            while bgr is not None and not self._stop.is_set():
                if self.pace:  # Wait until this frame is due on the file's clock.
                    delay = self._t0 + index / self.fps - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                now = time.perf_counter()
                t_s = index / self.fps if self.kind == "file" else now - self._t0
                item = (index, t_s, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), now)
                with self._cond:
                    if self.kind == "file" and not self.pace:
                        while self._slot is not None and not self._stop.is_set():
                            self._cond.wait(0.1)  # No drops: wait for the consumer.
                    elif self._slot is not None:
                        self.dropped += 1  # The consumer is behind: the older frame goes.
                    self._slot = item
                    self.captured += 1
                    self._cond.notify_all()
                index += 1
                ok, bgr = self.capture.read()
                bgr = bgr if ok else None
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def __iter__(self):
        while True:
            with self._cond:
                while self._slot is None and not self._ended and not self._stop.is_set():
                    self._cond.wait(0.1)
                if self._slot is None or self._stop.is_set():
                    return
                item, self._slot = self._slot, None
                self._cond.notify_all()
            yield item

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.capture.release()


def status_text(fps: float, latencies: list) -> str:
    """`'  12.3 frames/s | latency     85 ms'`: frames/s and the median latency (seconds in
    `latencies`) of a window; the log line and the on-screen overlay both show it."""
    latency = f"{1000 * float(np.median(latencies)):6.0f}" if latencies else "     -"
    return f"{fps:6.1f} frames/s | latency {latency} ms"


class _Display:
    """cv2.imshow when the OpenCV build has a GUI; otherwise says so once and stays off."""

    def __init__(self, enabled: bool, title: str):
        self.enabled, self.title, self.quit = enabled, title, False
        if enabled:
            try:
                cv2.namedWindow(title, cv2.WINDOW_NORMAL)
            except cv2.error:
                print("--display: this OpenCV build has no GUI (opencv-python-headless); "
                      "fps and latency go to the log instead", file=sys.stderr, flush=True)
                self.enabled = False

    def show(self, bgr) -> None:
        if self.enabled:
            cv2.imshow(self.title, bgr)
            self.quit = (cv2.waitKey(1) & 0xFF) == ord("q")

    def close(self) -> None:
        if self.enabled:
            cv2.destroyWindow(self.title)


def run_realtime(source: str, out_dir: str, *, pace: bool = True, display: bool = False,
                 max_seconds: float = 0.0, checkpoint: Optional[str] = None,
                 log_every_s: float = 1.0, engine=None, options=None,
                 **engine_options) -> dict:
    """Runs the live predictor until the source ends, `max_seconds` pass, q, or Ctrl-C.

    Args:
      source: camera index, stream URL or video file.
      out_dir: where the session's `<source name>-<UTC start>.csv` goes (`session_csv`).
      pace: for a file: real-time playback (True) or every frame as fast as possible (False).
      display: show annotated frames (needs an OpenCV with a GUI).
      max_seconds: stop after this long (0 = no limit).
      checkpoint: ast-net-train work directory (None: the zero-shot default).
      log_every_s: seconds between status lines.
      engine: an already loaded `inference.Engine` (then `checkpoint`, `options` and
        `engine_options` are ignored); None loads one.
      options: an `engine_options.EngineOptions` (the flags of ast-net-realtime); without it
        `batch_frames` defaults to 4.
      **engine_options: passed to `inference.load_engine` (batch_frames, detect_every, ...).

    Returns:
      A summary dict: csv path, processed / captured / dropped frames, seconds, how it ended.

    Raises:
      errors.UserError: a bad source, an output folder that cannot be written, or a CSV write
        that failed during the session (the partial CSV is removed; threads are stopped).
      KeyboardInterrupt: Ctrl-C (or `Terminated`) while the model loads: no file is written.
    """
    live = LiveSource(source, pace=pace)  # Opened first: a bad source fails before TF starts.
    writer, screen, results = None, None, None
    try:
        outputs.ensure_out_dir(out_dir)
        print(f"source {source}: {live.width}x{live.height} at {live.fps:.1f} fps; loading the "
              "model", file=sys.stderr, flush=True)
        if engine is None:
            from ast_net import inference

            if options is None:
                engine_options.setdefault("batch_frames", 4)
            engine = inference.load_engine(checkpoint, options, **engine_options)
        engine.reset()
        engine.warmup(live.height, live.width)
        screen = _Display(display, f"ast-net {live.name}")
        processed, ended = 0, "end of source"
        window_frames, latencies = 0, []
        shown = ""  # Frames/s and latency of the last full window, drawn on screen.
        label = outputs.model_label(engine)  # zero-shot / trained, step N: on screen too.
        t_start = t_log = time.perf_counter()
        # Created last, with the model ready: a Ctrl-C while loading leaves no file behind.
        csv_path = session_csv(out_dir, live.name)
        try:
            writer = outputs.CsvWriter(csv_path, flush_every_s=1.0)
        except OSError as e:
            raise errors.UserError(f"{csv_path}: cannot be written ({e.strerror or e})") from None
    except BaseException:
        live.close()
        if screen is not None:
            screen.close()
        if writer is not None:
            writer.abort()
        raise

    def stop() -> None:
        live.close()  # First: the face thread waiting on the source then ends at once.
        if results is not None:
            results.close()
        screen.close()

    try:
        print(f"writing {writer.path} (as {os.path.basename(writer.temp)} until the session "
              "ends); Ctrl-C stops", file=sys.stderr, flush=True)
        results = engine.run(live.start(), greedy=True, keep_images=display)
        for pred in results:
            writer.write(pred)
            processed += 1
            window_frames += 1
            latencies.append(pred.t_done - pred.t_capture)
            now = time.perf_counter()
            if not shown or now - t_log >= log_every_s:
                fps = window_frames / max(now - t_log, 1e-9)
                shown = status_text(fps, latencies)
            if screen.enabled:
                screen.show(outputs.draw(pred.image, pred, shown, model=label))
                if screen.quit:
                    ended = "q pressed"
                    break
            if now - t_log >= log_every_s:
                print(f"{shown} | dropped {live.dropped} | faces {len(pred.faces)}",
                      file=sys.stderr, flush=True)
                t_log, window_frames, latencies = now, 0, []
            if max_seconds and now - t_start >= max_seconds:
                ended = f"--max_seconds={max_seconds:g} reached"
                break
    except KeyboardInterrupt as e:
        ended = "terminated (SIGTERM)" if isinstance(e, Terminated) else "interrupted (Ctrl-C)"
    except BaseException as e:
        stop()
        writer.abort()
        if isinstance(e, OSError):
            raise errors.UserError(
                f"{writer.path}: cannot be written ({e.strerror or e}); the session stopped "
                f"after {processed} frames and its partial CSV was removed") from None
        raise
    stop()
    try:
        csv_path = writer.close()
    except OSError as e:  # The last flush or the rename failed; the file is removed.
        raise errors.UserError(f"{writer.path}: cannot be written ({e.strerror or e}); the "
                               f"session's {processed} frames are lost") from None
    seconds = time.perf_counter() - t_start
    summary = {"csv": csv_path, "processed": processed, "captured": live.captured,
               "dropped": live.dropped, "seconds": seconds, "ended": ended}
    print(f"stopped: {ended}; {processed} frames processed in {seconds:.1f} s "
          f"({processed / max(seconds, 1e-9):.1f} frames/s), {live.dropped} dropped -> "
          f"{csv_path}", file=sys.stderr, flush=True)
    return summary
