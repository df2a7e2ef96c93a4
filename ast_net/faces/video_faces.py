"""Video -> per-frame tracked, eye-aligned faces: what the TFRecord pipeline and the predictor eat.

`iter_video_faces(path)` decodes the video (`video.iter_frames`, prefetched in a thread), runs
the `FaceTracker` through `HeldTracker` (full MTCNN every `detect_every` frames, O-Net
refinement in between, every `refine_every`-th frame; the predictor's engine uses the same
`HeldTracker`, so both cut the same crops from the same video and settings) and
aligns every tracked face to an S x S crop (`align.align_face` on MTCNN's eye centres). It
yields one `FrameFaces` per decoded frame, also for frames without a face (`faces == []`), so
frame indices and timestamps are never dropped. The returned iterator carries the `VideoInfo`
(`.info`) and, once exhausted, whether the file ended early (`.truncated`, `.error`): see
`video.FrameReader`. Opening errors raise `errors.UserError` at the call, before any frame.

For a live source (camera, stream) use `FaceTracker` and `align_tracked` per frame directly.

Single-subject datasets (AVEC, RECOLA, SEWA) want one face per frame. Two ways:

* streaming, bounded memory: `iter_video_faces(path, max_faces=1)`; the tracker then follows
  the largest face found at the first detection and keeps its id while it can (a new, largest
  face is picked when it is lost);
* after the fact: `primary_track(frames)` returns the id seen on the most frames (ties: larger
  median box), and `face_of_track(frame, id)` picks that face out of a frame. `primary_track`
  only reads ids and boxes, so it can run over any iterable of `FrameFaces` (a list, or a
  first pass whose crops are discarded).
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Iterable, Iterator

import cv2
import numpy as np

from ast_net.faces import align as align_lib
from ast_net.faces import detector as detector_lib
from ast_net.faces import tracker as tracker_lib
from ast_net.faces import video as video_lib


@dataclasses.dataclass
class FaceResult:
    """One tracked face on one frame: detection, aligned crop and the image -> crop matrix.

    `detected` is True when the full cascade found it on this frame, False when O-Net
    refinement of the previous box did.
    """

    track_id: int
    box: tuple[float, float, float, float]
    landmarks: dict[str, tuple[float, float]]
    confidence: float
    crop: np.ndarray
    matrix: np.ndarray
    detected: bool = True


@dataclasses.dataclass
class FrameFaces:
    """The faces of one frame (`faces == []` when there is none), ordered by track id."""

    index: int
    timestamp: float
    faces: list[FaceResult]

    @property
    def face_present(self) -> bool:
        return bool(self.faces)


def align_tracked(rgb, tracked: Iterable[tracker_lib.TrackedFace],
                  face_size: int) -> list[FaceResult]:
    """Aligns each tracked face of `rgb` to a `face_size` crop."""
    results = []
    for t in tracked:
        marks = t.face.landmarks
        aligned = align_lib.align_face(rgb, marks["left_eye"], marks["right_eye"], face_size)
        results.append(FaceResult(
            track_id=t.track_id, box=t.face.box, landmarks=marks, confidence=t.face.confidence,
            crop=aligned.crop, matrix=aligned.matrix, detected=t.detected))
    return results


class HeldTracker:
    """The face stage's tracking, shared by prepare-videos (`VideoFaces`) and the predictor
    (`inference.Engine`), so that the same video and settings give the same boxes and crops.

    The `FaceTracker` runs on every `refine_every`-th frame (O-Net refinement, full MTCNN
    every `detect_every` frames or when a face is lost); on the frames between, the last boxes
    and landmarks are held (the crop is still cut from the new frame). The tracker's own
    period is scaled so a full detection still comes about every `detect_every` frames.
    With `refine_every=1` every frame is tracked (the default of both tools, see
    `ast_net.contract`).
    """

    def __init__(self, detector, *, detect_every: int, refine_every: int = 1,
                 max_faces=None):
        if detect_every < 1 or refine_every < 1:
            raise ValueError(f"detect_every and refine_every must be >= 1, got {detect_every} "
                             f"and {refine_every}")
        self.detector = detector
        self.detect_every = int(detect_every)
        self.refine_every = int(refine_every)
        self.max_faces = max_faces
        self.reset()

    def reset(self) -> None:
        """A new video: a new tracker (ids from 0 again), nothing held."""
        period = max(1, -(-self.detect_every // self.refine_every))  # ceil
        self.tracker = tracker_lib.FaceTracker(self.detector, detect_every=period,
                                               max_faces=self.max_faces)
        self._held: list[tracker_lib.TrackedFace] = []
        self._frames_seen = 0

    @property
    def stats(self) -> dict:
        return self.tracker.stats

    def update(self, rgb) -> tuple[list[tracker_lib.TrackedFace], bool]:
        """(tracked faces of this frame, whether they were refreshed on it); frame order."""
        refresh = self._frames_seen % self.refine_every == 0
        if refresh:
            self._held = self.tracker.update(rgb)
        self._frames_seen += 1
        return self._held, refresh


class VideoFaces:
    """Iterator of `FrameFaces` over one video; see `iter_video_faces`."""

    def __init__(self, path, *, face_size=224, detect_every=10, min_face_size=40,
                 detector=None, max_faces=None, start=0, prefetch=4, refine_every=1):
        self.face_size = int(face_size)
        self.frames = video_lib.iter_frames(path, start, prefetch=prefetch)
        self.info = self.frames.info
        if detector is None:
            detector = detector_lib.MtcnnDetector(min_face_size=min_face_size)
        self.tracker = HeldTracker(detector, detect_every=detect_every,
                                   refine_every=refine_every, max_faces=max_faces)

    @property
    def truncated(self) -> bool:
        return self.frames.truncated

    @property
    def error(self) -> str | None:
        return self.frames.error

    @property
    def frames_read(self) -> int:
        return self.frames.frames_read

    def __iter__(self) -> Iterator[FrameFaces]:
        return self

    def __next__(self) -> FrameFaces:
        index, timestamp, rgb = next(self.frames)
        tracked, refreshed = self.tracker.update(rgb)
        faces = align_tracked(rgb, tracked, self.face_size)
        if not refreshed:  # Held boxes: not detected on this frame.
            for f in faces:
                f.detected = False
        return FrameFaces(index=index, timestamp=timestamp, faces=faces)

    def close(self) -> None:
        self.frames.close()

    def __enter__(self) -> "VideoFaces":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def iter_video_faces(path, *, face_size=224, detect_every=10, min_face_size=40, detector=None,
                     max_faces=None, start=0, prefetch=4, refine_every=1) -> VideoFaces:
    """Tracked, aligned faces of every frame of `path`.

    Args:
      path: a video file OpenCV/FFmpeg can read.
      face_size: side S of the aligned crops.
      detect_every: frames between full detections (1 = full MTCNN on every frame).
      min_face_size: smallest face side in pixels (ignored when `detector` is given).
      detector: an `MtcnnDetector` to use (e.g. with other thresholds), shared if you like.
      max_faces: at most this many faces per frame (None = all).
      start: first frame index to decode.
      prefetch: frames decoded ahead in a background thread (0 = decode inline).
      refine_every: track every k-th frame, holding boxes in between (`HeldTracker`).

    Raises:
      errors.UserError: the file cannot be opened as a video.
    """
    return VideoFaces(path, face_size=face_size, detect_every=detect_every,
                      min_face_size=min_face_size, detector=detector, max_faces=max_faces,
                      start=start, prefetch=prefetch, refine_every=refine_every)


def primary_track(frames: Iterable[FrameFaces]) -> int | None:
    """Id of the main face: on the most frames; ties broken by the larger median box area.

    Returns None if no frame has a face. Reads only `track_id` and `box` of each face.
    """
    counts: collections.Counter = collections.Counter()
    areas: dict[int, list[float]] = collections.defaultdict(list)
    for frame in frames:
        for face in frame.faces:
            counts[face.track_id] += 1
            areas[face.track_id].append(float(face.box[2]) * float(face.box[3]))
    if not counts:
        return None
    return max(counts, key=lambda i: (counts[i], float(np.median(areas[i])), -i))


def face_of_track(frame: FrameFaces, track_id: int | None) -> FaceResult | None:
    """The face of `track_id` on `frame`, or None."""
    for face in frame.faces:
        if face.track_id == track_id:
            return face
    return None


def encode_jpeg(crop: np.ndarray, quality: int = 90) -> bytes:
    """JPEG bytes of an RGB uint8 crop (OpenCV's encoder; it expects BGR, so we convert)."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"JPEG encoding failed for a crop of shape {crop.shape}")
    return data.tobytes()
