"""The annotated video of ast-net-predict --annotate (and the frames ast-net-realtime shows).

* `draw`: a BGR copy of a frame with each face's box, track id and current values, the label's
  text `LABEL_FRACTION` of the face box's height tall (at least `MIN_LABEL_PX`, at most
  `MAX_LABEL_PX`), and a bottom line with the time, the frame index and what the values come
  from (`model`: "zero-shot" or the trained checkpoint's step), `STATUS_FRACTION` of the frame
  height tall. Text is drawn with a dark outline, so it reads on light and dark faces alike.
* `VideoSink`: H.264 (libx264, yuv420p, `+faststart`) in MP4, the format browsers and
  notebooks play, by piping raw BGR frames to the ffmpeg binary of the `imageio-ffmpeg` wheel
  (odd frame sides are padded by one black row / column: yuv420p wants even sides). When that
  binary is missing or cannot encode H.264 (checked once per process by encoding two tiny
  frames), it falls back to OpenCV's mp4v with one warning line. Either way the frames go to
  the `ast_net.atomic` temporary name (`.<stem>.<pid>.tmp.mp4`), renamed by `close()` and
  removed by `abort()`. An ffmpeg that fails in the middle of a video (disk full ...) raises
  an OSError with ffmpeg's own message (and ENOSPC / EROFS / EDQUOT when it says so), so the
  caller treats it like any other write error.
"""

from __future__ import annotations

import errno
import fractions
import functools
import os
import subprocess
import sys
import tempfile
from typing import Optional

import cv2
import numpy as np

from ast_net import atomic, errors

LABEL_FRACTION = 0.08  # Face label text height / face box height.
MIN_LABEL_PX, MAX_LABEL_PX = 10, 40  # Bounds of that text height, in pixels.
STATUS_FRACTION = 1 / 30  # Bottom line text height / frame height (at least MIN_LABEL_PX + 2).
H264_ARGS = ("-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
             "-movflags", "+faststart")
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_CAP_PX = cv2.getTextSize("H", _FONT, 1.0, 1)[0][1]  # Capital height at font scale 1.
_WARNED: set = set()  # Fallback reasons already reported in this process.


def label_px(box_height: float) -> int:
    """Text height, in pixels, of the label of a face box `box_height` pixels tall."""
    return int(np.clip(round(LABEL_FRACTION * box_height), MIN_LABEL_PX, MAX_LABEL_PX))


def _text(bgr, text: str, origin, px: float, colour, max_width: int) -> tuple[int, int]:
    """Draws `text` with its capitals `px` tall (smaller if it would be wider than
    `max_width`), baseline at `origin`, over a dark outline; returns its (width, height)."""
    scale = px / _CAP_PX
    thick = max(1, int(round(px / 9)))
    width = cv2.getTextSize(text, _FONT, scale, thick)[0][0]
    if width > max_width > 0:
        scale *= max_width / width
    (width, height), _ = cv2.getTextSize(text, _FONT, scale, thick)
    x, y = int(origin[0]), int(origin[1])
    cv2.putText(bgr, text, (x, y), _FONT, scale, (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.putText(bgr, text, (x, y), _FONT, scale, colour, thick, cv2.LINE_AA)
    return width, height


def model_label(engine) -> str:
    """What the values come from, in a few words (the annotated frames' bottom line, in
    ast-net-predict's video and ast-net-realtime's window): `zero-shot` or
    `trained, step N`."""
    info = getattr(engine, "model_info", None) or {}
    if info.get("kind") == "checkpoint":
        return f"trained, step {info['step']}" if info.get("step") is not None else "trained"
    return "zero-shot"


def draw(rgb: np.ndarray, pred, extra: str = "", model: str = "") -> np.ndarray:
    """A BGR copy of the frame with each face's box, id and current values; the bottom line
    has the time, the frame index, `model` (what the values come from) and `extra`."""
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    height, width = bgr.shape[:2]
    box_thick = max(int(round(2 * max(height / 720.0, 0.4))), 1)
    for f in pred.faces:
        x, y, w, h = (int(round(v)) for v in f.box)
        cv2.rectangle(bgr, (x, y), (x + w, y + h), (0, 220, 0), box_thick)
        label = f"id {f.track_id} V {f.valence:+.2f} A {f.arousal:+.2f}"
        px = label_px(h)
        scale = px / _CAP_PX
        label_w = cv2.getTextSize(label, _FONT, scale, max(1, int(round(px / 9))))[0][0]
        tx = min(max(x, 0), max(width - label_w - 2, 0))
        ty = y - box_thick - 4  # Baseline just above the box's top edge ...
        if ty - px < 2:  # ... or, at the top of the frame, just under it, inside the box.
            ty = max(y, 0) + box_thick + 4 + px
        _text(bgr, label, (tx, ty), px, (0, 220, 0), width - tx - 2)
    px = max(MIN_LABEL_PX + 2, int(round(STATUS_FRACTION * height)))
    text = f"t {pred.timestamp:.2f} s  frame {pred.index}"
    text += "".join(f"  {part}" for part in (model, extra) if part)
    _text(bgr, text, (8, height - max(6, px // 2)), px, (255, 255, 255), width - 16)
    return bgr


def ffmpeg_exe() -> tuple[Optional[str], str]:
    """(the ffmpeg binary of imageio-ffmpeg, or its IMAGEIO_FFMPEG_EXE; None if none, with
    the reason)."""
    try:
        import imageio_ffmpeg
    except ImportError:
        return None, "imageio-ffmpeg is not installed (pip install imageio-ffmpeg)"
    try:
        return imageio_ffmpeg.get_ffmpeg_exe(), ""
    except RuntimeError as e:
        return None, f"imageio-ffmpeg found no ffmpeg binary ({e})"


@functools.lru_cache(maxsize=8)
def h264_problem(exe: str) -> str:
    """'' if `exe` encodes two raw 16x16 frames to H.264 (the sink's own arguments), else why
    not; once per binary and process."""
    args = [exe, "-hide_banner", "-nostats", "-loglevel", "error", "-f", "rawvideo",
            "-pix_fmt", "bgr24", "-s", "16x16", "-r", "25", "-i", "-", *H264_ARGS, "-f",
            "null", "-"]
    try:
        proc = subprocess.run(args, input=bytes(16 * 16 * 3 * 2), capture_output=True,
                              timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        return f"{exe} cannot be run ({e})"
    if proc.returncode:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        return (f"{exe} cannot encode H.264 "
                f"({lines[-1] if lines else f'exit status {proc.returncode}'})")
    return ""


_ERRNOS = (("No space left", errno.ENOSPC), ("Read-only file system", errno.EROFS),
           ("quota exceeded", errno.EDQUOT), ("Permission denied", errno.EACCES))


def _reason(lines: list[str]) -> tuple[int, str]:
    """(errno, line) of ffmpeg's messages: the first line naming a system error, else EIO and
    the last line."""
    for line in lines:
        for text, code in _ERRNOS:
            if text.lower() in line.lower():
                return code, line
    return errno.EIO, lines[-1] if lines else ""


class _Abort(Exception):
    """Thrown into an `atomic` context to make it remove its temporary file."""


class VideoSink:
    """An annotated video, H.264 (else mp4v), under `path` only when complete; see the module
    docstring. `codec` is "h264" or "mp4v" (what is written); `h264=False` asks for mp4v."""

    def __init__(self, path: str, fps: float, width: int, height: int, *, h264: bool = True):
        self.path = path
        self.size = (int(width), int(height))
        suffix = os.path.splitext(path)[1]
        if not suffix:
            raise ValueError(f"{path}: a video name needs an extension (.mp4)")
        self._context = atomic.path(path, suffix=suffix)
        self.part = self._context.__enter__()
        self._done = False
        self._proc = self._writer = self._log = None
        exe, why = ffmpeg_exe() if h264 else (None, "")
        why = why or (h264_problem(exe) if exe else "")
        if exe and not why:
            self.codec = "h264"
            self._start_ffmpeg(exe, fps)
            return
        if why and why not in _WARNED:
            _WARNED.add(why)
            print(f"warning: {why}: annotated videos are written as mp4v, which browsers and "
                  "notebooks do not play", file=sys.stderr, flush=True)
        self.codec = "mp4v"
        self._writer = cv2.VideoWriter(self.part, cv2.VideoWriter_fourcc(*"mp4v"), float(fps),
                                       self.size)
        if not self._writer.isOpened():
            self.abort()
            raise errors.UserError(f"{path}: cannot write an mp4v video here")

    def _start_ffmpeg(self, exe: str, fps: float) -> None:
        rate = fractions.Fraction(float(fps) if fps and fps > 0 else 30.0).limit_denominator(1001)
        self._log = tempfile.TemporaryFile()  # ffmpeg's messages (a pipe could fill and block).
        args = [exe, "-hide_banner", "-nostats", "-loglevel", "error", "-y", "-f", "rawvideo",
                "-pix_fmt", "bgr24", "-s", "{}x{}".format(*self.size), "-r", str(rate), "-i",
                "-", "-an", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", *H264_ARGS, "-f", "mp4",
                self.part]
        try:
            self._proc = subprocess.Popen(args, stdin=subprocess.PIPE,
                                          stdout=subprocess.DEVNULL, stderr=self._log)
        except OSError:
            self.abort()
            raise

    def _ffmpeg_error(self, what: str) -> OSError:
        self._log.seek(0)
        code, line = _reason(self._log.read().decode(errors="replace").strip().splitlines())
        message = f"ffmpeg {what} ({line or f'exit status {self._proc.returncode}'})"
        return OSError(code, message, self.path)

    def write(self, bgr: np.ndarray) -> None:
        if self._writer is not None:
            self._writer.write(bgr)
            return
        if bgr.shape != (self.size[1], self.size[0], 3) or bgr.dtype != np.uint8:
            raise ValueError(f"{self.path}: frame {bgr.shape} {bgr.dtype}, expected "
                             f"{(self.size[1], self.size[0], 3)} uint8")
        try:
            self._proc.stdin.write(np.ascontiguousarray(bgr).data)
        except (BrokenPipeError, ValueError):  # ffmpeg has exited (disk full ...).
            self._proc.wait()
            raise self._ffmpeg_error("stopped writing the video") from None

    def close(self) -> str:
        """Finishes the video and renames it to `path` (returned); on an error the temporary
        file is removed and the error raised."""
        if self._done:
            return self.path
        self._done = True
        try:
            if self._writer is not None:
                self._writer.release()
            else:
                try:
                    self._proc.stdin.close()
                except BrokenPipeError:
                    pass
                if self._proc.wait():
                    raise self._ffmpeg_error("failed to finish the video")
        except BaseException as e:
            self._end_ffmpeg()
            self._context.__exit__(type(e), e, e.__traceback__)
            raise
        self._end_ffmpeg()
        self._context.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        """Stops the encoder and removes the temporary file (never raises)."""
        if self._done:
            return
        self._done = True
        if self._writer is not None:
            self._writer.release()
        self._end_ffmpeg(kill=True)
        self._context.__exit__(_Abort, _Abort(), None)

    def _end_ffmpeg(self, kill: bool = False) -> None:
        if self._proc is not None:
            if kill and self._proc.poll() is None:
                self._proc.kill()
            try:
                self._proc.stdin.close()
            except OSError:
                pass
            self._proc.wait()
        if self._log is not None:
            self._log.close()
