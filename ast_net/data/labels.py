"""Continuous valence/arousal label tracks and their resampling onto video frame timestamps.

Every reader in `labels_readers` returns a `LabelTrack`: either time-based (`times_s`, one
sample per label step, e.g. 40 ms for RECOLA) or frame-indexed (`frames`, line i = frame i, as
in Aff-Wild2 or a generic CSV with a `frame` column). `resample` puts a track on the frames of
a video: time-based tracks are interpolated **linearly** between the two valid label samples
around each frame time (`method="nearest"` takes the nearest valid sample instead); a frame
gets mask 0 when it lies before the first or after the last label sample, or inside a gap of
unlabelled samples (two valid neighbours further apart than `max_gap_s`, by default 1.5 label
steps). Frame-indexed tracks map label i to frame i directly. `length_mismatch` counts how much
a label file is shorter or longer than its video. The small text helpers at the end are shared
by the readers: they accept a BOM, CRLF endings, trailing blank lines, quoted fields and
trailing spaces, and raise `errors.UserError` naming the file and line for anything else.
"""

from __future__ import annotations

import csv
import dataclasses
import pathlib
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ast_net import errors

METHODS = ("linear", "nearest")
_EPS = 1e-6  # seconds of slack when comparing frame times with label times


@dataclasses.dataclass
class LabelTrack:
    """Valence/arousal samples of one video (NaN where unlabelled).

    Exactly one of `times_s` (seconds, strictly increasing) or `frames` (0-based video frame
    indices, strictly increasing) is set. `valid[i]` is True when both dims of sample i are
    labels. `raters` holds per-rater values when the source has several raters:
    {"arousal": {"FM1": array, ...}, "valence": {...}}.
    """

    valence: np.ndarray
    arousal: np.ndarray
    valid: np.ndarray
    source: str
    times_s: Optional[np.ndarray] = None
    frames: Optional[np.ndarray] = None
    raters: Dict[str, Dict[str, np.ndarray]] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if (self.times_s is None) == (self.frames is None):
            raise ValueError("give exactly one of times_s or frames")

    @property
    def frame_indexed(self) -> bool:
        return self.frames is not None

    def __len__(self) -> int:
        return len(self.valence)

    def step_s(self) -> float:
        """Median spacing of the label samples in seconds (time-based tracks)."""
        if self.times_s is None or len(self.times_s) < 2:
            return 0.0
        return float(np.median(np.diff(self.times_s)))


def make_track(valence, arousal, source, *, times_s=None, frames=None, raters=None):
    """Builds a LabelTrack from float sequences; non-finite values are unlabelled."""
    val = np.asarray(valence, np.float64)
    aro = np.asarray(arousal, np.float64)
    valid = np.isfinite(val) & np.isfinite(aro)
    return LabelTrack(
        valence=val, arousal=aro, valid=valid, source=str(source),
        times_s=None if times_s is None else np.asarray(times_s, np.float64),
        frames=None if frames is None else np.asarray(frames, np.int64),
        raters=raters or {})


def combine_dims(arousal: Tuple[np.ndarray, np.ndarray], valence: Tuple[np.ndarray, np.ndarray],
                 source: str, raters=None) -> LabelTrack:
    """Joins two one-dimension series `(times_s, values)` that share one time grid.

    Files of different lengths are allowed (the shorter dim is unlabelled past its end); files
    whose time stamps disagree on their common part raise UserError.
    """
    (t_a, v_a), (t_v, v_v) = arousal, valence
    n = max(len(t_a), len(t_v))
    common = min(len(t_a), len(t_v))
    if not np.allclose(t_a[:common], t_v[:common], atol=1e-4):
        i = int(np.argmax(~np.isclose(t_a[:common], t_v[:common], atol=1e-4)))
        raise errors.UserError(
            f"{source}: expected arousal and valence on the same time stamps, sample {i} is at "
            f"{t_a[i]:g} s in one and {t_v[i]:g} s in the other")
    times = t_a if len(t_a) == n else t_v
    val = np.full(n, np.nan)
    aro = np.full(n, np.nan)
    val[:len(v_v)] = v_v
    aro[:len(v_a)] = v_a
    return make_track(val, aro, source, times_s=times, raters=raters)


def resample(track: LabelTrack, frame_times_s: Sequence[float], method: str = "linear",
             max_gap_s: Optional[float] = None, frame_indices: Optional[Sequence[int]] = None
             ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Puts a label track on video frames.

    Args:
      track: the labels.
      frame_times_s: [T] timestamp of each video frame in seconds.
      method: "linear" (default) or "nearest"; time-based tracks only.
      max_gap_s: valid label samples further apart than this are not bridged; default 1.5
        times the track's median step, so one unlabelled sample already opens a gap.
      frame_indices: [T] video frame index of each frame (default 0..T-1); used by
        frame-indexed tracks, where label row with frame f goes to video frame f.

    Returns:
      valence [T] float32, arousal [T] float32 (0 where masked), mask [T] int64 (1 = valid).
    """
    if method not in METHODS:
        raise errors.UserError(f"resample method: expected one of {METHODS}, got {method!r}")
    times = np.asarray(frame_times_s, np.float64)
    num = len(times)
    val = np.zeros(num, np.float64)
    aro = np.zeros(num, np.float64)
    mask = np.zeros(num, bool)
    if track.frame_indexed:
        idx = (np.arange(num) if frame_indices is None
               else np.asarray(frame_indices, np.int64))
        pos = np.searchsorted(track.frames, idx)
        pos_c = np.minimum(pos, max(len(track.frames) - 1, 0))
        if len(track.frames):
            hit = (pos < len(track.frames)) & (track.frames[pos_c] == idx)
            mask = hit & track.valid[pos_c]
            val = np.where(mask, track.valence[pos_c], 0.0)
            aro = np.where(mask, track.arousal[pos_c], 0.0)
        return _finish(val, aro, mask)

    t_valid = track.times_s[track.valid]
    if len(t_valid) == 0 or num == 0:
        return _finish(val, aro, mask)
    v_valid = track.valence[track.valid]
    a_valid = track.arousal[track.valid]
    if max_gap_s is None:
        max_gap_s = 1.5 * track.step_s() if len(track) > 1 else 0.0
    inside = (times >= t_valid[0] - _EPS) & (times <= t_valid[-1] + _EPS)
    # Bracketing valid samples: left <= t < right (clipped into range).
    right = np.clip(np.searchsorted(t_valid, times, side="right"), 1, len(t_valid) - 1)
    left = right - 1
    if len(t_valid) == 1:
        left = right = np.zeros(num, np.int64)
    t_l, t_r = t_valid[left], t_valid[right]
    on_left = np.abs(times - t_l) <= _EPS
    on_right = np.abs(times - t_r) <= _EPS
    gap_ok = (t_r - t_l) <= max_gap_s + _EPS
    mask = inside & (on_left | on_right | gap_ok)
    if method == "nearest":
        pick = np.where(np.abs(times - t_l) <= np.abs(t_r - times), left, right)
        val, aro = v_valid[pick], a_valid[pick]
    else:
        span = np.where(t_r > t_l, t_r - t_l, 1.0)
        w = np.clip((times - t_l) / span, 0.0, 1.0)
        w = np.where(on_left, 0.0, np.where(on_right & ~on_left, 1.0, w))
        val = v_valid[left] * (1 - w) + v_valid[right] * w
        aro = a_valid[left] * (1 - w) + a_valid[right] * w
    return _finish(val, aro, mask)


def _finish(val, aro, mask):
    mask = np.asarray(mask, bool)
    val = np.where(mask, val, 0.0).astype(np.float32)
    aro = np.where(mask, aro, 0.0).astype(np.float32)
    return val, aro, mask.astype(np.int64)


@dataclasses.dataclass(frozen=True)
class LengthMismatch:
    """How a label file's length disagrees with its video's.

    frames_past_labels: video frames after the last label sample (label file shorter; masked).
    labels_past_video: label samples after the last video frame (label file longer; dropped).
    """

    frames_past_labels: int
    labels_past_video: int

    @property
    def total(self) -> int:
        return self.frames_past_labels + self.labels_past_video


def length_mismatch(track: LabelTrack, frame_times_s: Sequence[float],
                    frame_indices: Optional[Sequence[int]] = None) -> LengthMismatch:
    """Counts the label/video length mismatch of a whole video (all of its frame times)."""
    times = np.asarray(frame_times_s, np.float64)
    if len(track) == 0:
        return LengthMismatch(len(times), 0)
    if track.frame_indexed:
        idx = np.arange(len(times)) if frame_indices is None else np.asarray(frame_indices)
        last_label, last_frame = int(track.frames[-1]), int(idx[-1]) if len(idx) else -1
        return LengthMismatch(int(np.sum(idx > last_label)),
                              int(np.sum(track.frames > last_frame)))
    if len(times) == 0:
        return LengthMismatch(0, len(track))
    period = float(np.median(np.diff(times))) if len(times) > 1 else track.step_s()
    frames_past = int(np.sum(times > track.times_s[-1] + _EPS))
    # A label sample belongs to the video while it is before the end of the last frame.
    labels_past = int(np.sum(track.times_s >= times[-1] + period - _EPS))
    return LengthMismatch(frames_past, labels_past)


# ---------------------------------------------------------------------------------------------
# Text helpers shared by the readers.


def read_lines(path) -> List[Tuple[int, str]]:
    """(line number, text) of a text file: BOM and line endings removed, trailing blanks cut."""
    path = pathlib.Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise errors.UserError(f"{path}: cannot read label file ({e.strerror or e})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    lines = [(i + 1, line) for i, line in enumerate(text.splitlines())]
    while lines and not lines[-1][1].strip():
        lines.pop()
    if not lines:
        raise errors.UserError(f"{path}: empty label file, expected label rows")
    return lines


def split_fields(line: str, delimiter: str, quotechar: str = '"') -> List[str]:
    """Splits one row; quoted fields are unquoted and every field is stripped of spaces."""
    fields = next(csv.reader([line], delimiter=delimiter, quotechar=quotechar,
                             skipinitialspace=True))
    out = []
    for f in fields:
        f = f.strip()
        if len(f) >= 2 and f[0] == f[-1] and f[0] in "\"'":
            f = f[1:-1].strip()
        out.append(f)
    return out


_MISSING = {"", "nan", "?", "na", "n/a", "null", "none"}


def parse_float(field: str, path, lineno: int, what: str) -> float:
    """A float field; empty / NaN / `?` give NaN; anything else raises UserError."""
    s = field.strip()
    if s.lower() in _MISSING:
        return float("nan")
    try:
        return float(s)
    except ValueError:
        raise errors.UserError(
            f"{path}, line {lineno}: expected {what} as a number, got {field!r}") from None


def check_increasing(values: np.ndarray, linenos: Sequence[int], path, what: str) -> None:
    """Raises UserError at the first sample that is not after its predecessor."""
    if len(values) < 2:
        return
    bad = np.nonzero(~(np.diff(values) > 0))[0]
    if len(bad):
        i = int(bad[0]) + 1
        raise errors.UserError(
            f"{path}, line {linenos[i]}: expected {what} increasing, got {values[i]:g} after "
            f"{values[i - 1]:g}")
