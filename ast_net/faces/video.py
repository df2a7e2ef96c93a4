"""Video decoding with OpenCV: probe a file, iterate its frames as RGB with index and timestamp.

`probe(path)` opens the file, decodes its first frame and returns a `VideoInfo`; anything a user
can get wrong (missing file, a directory, not a video, no decodable frame, no frame rate) is an
`errors.UserError` whose message starts with the path.

`iter_frames(path, start=0)` returns a `FrameReader`, an iterator of
`(frame_index, timestamp_s, rgb)` with `timestamp_s = frame_index / fps` (constant frame rate,
the container's nominal fps: the same convention the label readers resample onto). Iteration
ends cleanly at the end of the stream or at the first frame that cannot be decoded (a truncated
or damaged file); it never raises for that. After the loop, `reader.truncated` tells whether the
stream stopped clearly before the container's frame count (more than `max(5, 1%)` frames short:
container counts are often a few frames off at the end, e.g. `no_face.mp4` says 98 and holds
95) and `reader.error` says why in one line naming the path. The batch pipeline records such a
video as truncated/failed and keeps the frames it got.

`prefetch=N` decodes up to N frames ahead in a background thread (OpenCV releases the GIL while
decoding and converting), which overlaps decoding with detection on a second core.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from typing import Iterator

import cv2
import numpy as np

from ast_net import errors, threads

Frame = tuple[int, float, np.ndarray]
# File endings taken as videos (compare lower-cased): by data-set layouts and predict inputs.
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv",
                    ".flv", ".3gp", ".ts")


@dataclasses.dataclass
class VideoInfo:
    """What `probe` finds: nominal fps, container frame count (0 if unknown), frame size."""

    path: str
    fps: float
    num_frames: int
    width: int
    height: int


def _open(path: str) -> cv2.VideoCapture:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise errors.UserError(f"{path}: cannot be opened as a video (no such file)")
    if os.path.isdir(path):
        raise errors.UserError(f"{path}: cannot be opened as a video (it is a directory)")
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        capture.release()
        raise errors.UserError(
            f"{path}: cannot be opened as a video (not a format OpenCV/FFmpeg can read, "
            "or the file is damaged)")
    return capture


def _info(path: str, capture: cv2.VideoCapture, first_rgb: np.ndarray) -> VideoInfo:
    fps = float(capture.get(cv2.CAP_PROP_FPS) or 0.0)
    if not np.isfinite(fps) or fps <= 0:
        raise errors.UserError(f"{path}: cannot be opened as a video (no frame rate in the file)")
    count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    num_frames = int(count) if np.isfinite(count) and count > 0 else 0
    height, width = first_rgb.shape[:2]  # Decoded size (after any rotation OpenCV applies).
    return VideoInfo(path=path, fps=fps, num_frames=num_frames, width=width, height=height)


def _read_rgb(capture: cv2.VideoCapture) -> np.ndarray | None:
    try:
        ok, bgr = capture.read()
    except cv2.error:
        return None
    if not ok or bgr is None:
        return None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def probe(path) -> VideoInfo:
    """Opens `path`, decodes its first frame and returns its `VideoInfo`.

    Raises:
      errors.UserError: "<path>: cannot be opened as a video (...)" if the file is missing,
        unreadable, has no decodable frame or no frame rate.
    """
    path = os.fspath(path)
    capture = _open(path)
    try:
        first = _read_rgb(capture)
        if first is None:
            raise errors.UserError(f"{path}: cannot be opened as a video (no decodable frame)")
        return _info(path, capture, first)
    finally:
        capture.release()


def short_by_tolerance(num_frames: int) -> int:
    """Frames a stream may end short of the container count before it counts as truncated."""
    return max(5, int(0.01 * num_frames))


class _Decoder:
    """An open capture plus the frame `FrameReader` already decoded to probe the file.

    The prefetch thread holds only this object, never the reader, so a reader dropped without
    `close()` is still garbage-collected, and its `__del__` stops the thread.
    """

    def __init__(self, capture: cv2.VideoCapture, pending: np.ndarray | None):
        self.capture, self.pending = capture, pending
        self.lock = threading.Lock()

    def next_rgb(self) -> np.ndarray | None:
        with self.lock:
            if self.pending is not None:
                rgb, self.pending = self.pending, None
                return rgb
            return None if self.capture is None else _read_rgb(self.capture)

    def release(self) -> None:
        with self.lock:
            if self.capture is not None:
                self.capture.release()
                self.capture = None


def _decoded(decoder: _Decoder) -> Iterator[np.ndarray]:
    """The decoder's frames until the stream ends (the prefetch thread's items)."""
    while (rgb := decoder.next_rgb()) is not None:
        yield rgb


class FrameReader:
    """Iterator of `(frame_index, timestamp_s, rgb)`; see the module docstring.

    Attributes:
      info: the `VideoInfo` of the file (probed when the reader is created).
      frames_read: frames yielded so far.
      finished: True once the stream has ended (normally or not).
      truncated: True if it ended clearly before `info.num_frames` (set when finished).
      error: one line naming the path and what stopped decoding, or None.
    """

    def __init__(self, path, start: int = 0, prefetch: int = 0):
        self.path = os.fspath(path)
        self.start = int(start)
        if self.start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        capture = _open(self.path)
        try:
            first = _read_rgb(capture)
            if first is None:
                raise errors.UserError(
                    f"{self.path}: cannot be opened as a video (no decodable frame)")
            self.info = _info(self.path, capture, first)
        except BaseException:
            capture.release()
            raise
        self.frames_read = 0
        self.finished = False
        self.truncated = False
        self.error: str | None = None
        self._next_index = self.start
        if self.start > 0:
            _seek(capture, self.start)
        self._decoder = _Decoder(capture, first if self.start == 0 else None)
        self._prefetch: threads.Producer | None = None
        if prefetch > 0:  # Decodes until the stream ends (next_rgb gives None) or close().
            self._prefetch = threads.Producer(
                _decoded(self._decoder), maxsize=int(prefetch),
                name="ast_net-frame-reader").start()

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        if self.finished:
            raise StopIteration
        rgb = self._next_queued() if self._prefetch is not None else self._decoder.next_rgb()
        if rgb is None:
            self._finish()
            raise StopIteration
        index = self._next_index
        self._next_index += 1
        self.frames_read += 1
        return index, index / self.info.fps, rgb

    def _next_queued(self) -> np.ndarray | None:
        """The next prefetched frame; None at the end of the stream or once `close()` ran (a
        consumer in another thread never blocks forever on a closed reader)."""
        rgb = self._prefetch.get()
        if rgb is threads.END:
            if self._prefetch.error is not None:  # As without prefetch: the decoder's error.
                raise self._prefetch.error
            return None
        return rgb

    def _finish(self) -> None:
        self.finished = True
        expected = self.info.num_frames
        if expected and self._next_index < expected - short_by_tolerance(expected):
            self.truncated = True
            self.error = (f"{self.path}: decoding stopped at frame {self._next_index} of "
                          f"{expected} (truncated or damaged file)")
        self.close()

    def close(self) -> None:
        """Stops the prefetch thread and releases the decoder (safe to call twice)."""
        if not hasattr(self, "_decoder"):  # __init__ failed before opening.
            return
        if getattr(self, "_prefetch", None) is not None:
            self._prefetch.stop(timeout=5)
        self._decoder.release()  # Waits for a decode call in flight (the lock).

    def __enter__(self) -> "FrameReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown.
            pass


def quiet_ffmpeg() -> None:
    """Keeps FFmpeg's and OpenCV's own log lines (`[mov,mp4,... @ 0x...] moov atom not found`,
    `[ WARN:0@...] ...`) off stderr: our errors already say what went wrong, in one line.

    For binaries' `main()`: it changes process-wide state, and FFmpeg reads
    `OPENCV_FFMPEG_LOGLEVEL` once, when OpenCV first opens a video, so call it before that. A
    value the user set in the environment (to debug a file) is kept.
    """
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def _seek(capture: cv2.VideoCapture, start: int) -> None:
    capture.set(cv2.CAP_PROP_POS_FRAMES, start)
    if int(capture.get(cv2.CAP_PROP_POS_FRAMES)) != start:
        # The backend could not seek exactly: decode forward from the start instead.
        capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
        for _ in range(start):
            if not capture.grab():
                break


def iter_frames(path, start: int = 0, *, prefetch: int = 0) -> FrameReader:
    """Frames of `path` from index `start` as `(frame_index, timestamp_s, rgb uint8)`.

    Raises errors.UserError at once (not at the first `next`) if the file cannot be opened.
    See `FrameReader` for `truncated` / `error` after the loop.
    """
    return FrameReader(path, start=start, prefetch=prefetch)
