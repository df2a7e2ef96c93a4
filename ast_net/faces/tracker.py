"""Face tracking by detection: full MTCNN every k frames, O-Net refinement in between, stable ids.

`FaceTracker.update(rgb)` per frame:

1. If faces are tracked and the last full detection was fewer than `detect_every` frames ago,
   every track is refined with one batched O-Net call on its previous box (a few ms). If all
   survive, that is the frame's answer (`detected=False`).
2. Otherwise (nothing tracked, `detect_every` frames since the last detection, or a track was
   lost, i.e. O-Net no longer sees a face in its box) the full cascade runs on this frame. Each
   detection is matched to a track by IoU (greedy, best pair first, IoU >= `iou_threshold`) and
   keeps that track's id; unmatched detections start new tracks (ids count up from 0 and are never
   reused). A track that no detection matched is refined once more on this frame and kept if
   O-Net still sees a face there (full MTCNN misses some faces that look down or sideways
   which O-Net, given the box, still confirms); otherwise it ends.
3. Tracks that converge on the same face (IoU > 0.5) are merged into the older id.

With `max_faces=n`, at most n tracks live at once: existing tracks first, then new detections by
decreasing box area (so `max_faces=1` follows the largest face and keeps it).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ast_net.faces import boxes as box_lib
from ast_net.faces import detector as detector_lib

_DUPLICATE_IOU = 0.5


@dataclasses.dataclass
class TrackedFace:
    """A face on the current frame with its track id; `detected` = full detection ran."""

    track_id: int
    face: detector_lib.Face
    detected: bool


class FaceTracker:
    """Stable-id face tracker over consecutive frames; see the module docstring.

    Args:
      detector: an `MtcnnDetector` (anything with `detect(rgb)` and `refine_many(rgb, boxes)`).
      detect_every: frames between periodic full detections (1 = detect on every frame).
      iou_threshold: minimum IoU for a detection to continue a track.
      max_faces: cap on simultaneous tracks (None = no cap).
    """

    def __init__(self, detector, detect_every=10, iou_threshold=0.3, max_faces=None):
        if detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {detect_every}")
        if max_faces is not None and max_faces < 1:
            raise ValueError(f"max_faces must be >= 1 or None, got {max_faces}")
        self.detector = detector
        self.detect_every = int(detect_every)
        self.iou_threshold = float(iou_threshold)
        self.max_faces = max_faces
        self.stats = {"frames": 0, "detections": 0, "refinements": 0}
        self.reset()

    def reset(self) -> None:
        """Forgets all tracks (ids keep counting up, so old and new ids never collide)."""
        self._tracks: dict[int, detector_lib.Face] = {}
        self._since_detect = 0
        if not hasattr(self, "_next_id"):
            self._next_id = 0

    @property
    def tracks(self) -> dict[int, detector_lib.Face]:
        """The live tracks after the last update: id -> face."""
        return dict(self._tracks)

    def update(self, rgb) -> list[TrackedFace]:
        """Faces of this frame, ordered by track id."""
        self.stats["frames"] += 1
        refined: dict[int, detector_lib.Face] = {}
        tried: set[int] = set()
        if self._tracks and self._since_detect < self.detect_every:
            tried = set(self._tracks)
            refined, lost = self._refine(rgb, list(self._tracks))
            if not lost:
                self._tracks = refined
                self._since_detect += 1
                self._merge_duplicates()
                return [TrackedFace(i, f, False) for i, f in sorted(self._tracks.items())]
        return self._detect(rgb, refined, tried)

    def _refine(self, rgb, ids) -> tuple[dict[int, detector_lib.Face], bool]:
        self.stats["refinements"] += len(ids)
        faces = self.detector.refine_many(rgb, [self._tracks[i].box for i in ids])
        kept = {i: f for i, f in zip(ids, faces) if f is not None}
        return kept, len(kept) < len(ids)

    def _detect(self, rgb, refined, tried) -> list[TrackedFace]:
        self.stats["detections"] += 1
        self._since_detect = 1
        detections = self.detector.detect(rgb)
        # Where each track is best known now: its refined box on this frame, else the last one.
        previous = {i: refined.get(i, f) for i, f in self._tracks.items()}
        matches = self._match(previous, detections)
        out: dict[int, tuple[detector_lib.Face, bool]] = {
            track_id: (detections[d], True) for track_id, d in matches.items()}
        unmatched = [i for i in previous if i not in matches]
        retry = [i for i in unmatched if i not in tried]  # Not refined yet on this frame.
        if retry:
            again, _ = self._refine(rgb, retry)
            refined = {**refined, **again}
        for i in unmatched:
            if i in refined:
                out[i] = (refined[i], False)
        used = set(matches.values())
        new = [d for d in range(len(detections)) if d not in used]
        new.sort(key=lambda d: -box_lib.area(detections[d].corners))
        for d in new:
            if self.max_faces is not None and len(out) >= self.max_faces:
                break
            out[self._next_id] = (detections[d], True)
            self._next_id += 1
        self._tracks = {i: f for i, (f, _) in out.items()}
        self._merge_duplicates()
        return [TrackedFace(i, out[i][0], out[i][1]) for i in sorted(self._tracks)]

    def _match(self, previous: dict[int, detector_lib.Face], detections) -> dict[int, int]:
        """Greedy IoU matching: track id -> detection index."""
        if not previous or not detections:
            return {}
        ids = list(previous)
        iou = box_lib.iou_matrix(np.stack([previous[i].corners for i in ids]),
                                 np.stack([d.corners for d in detections]))
        matches: dict[int, int] = {}
        for flat in np.argsort(-iou, axis=None):
            t, d = np.unravel_index(flat, iou.shape)
            if iou[t, d] < self.iou_threshold:
                break
            if ids[t] in matches or d in matches.values():
                continue
            matches[ids[t]] = int(d)
        return matches

    def _merge_duplicates(self) -> None:
        ids = sorted(self._tracks)
        if len(ids) < 2:
            return
        iou = box_lib.iou_matrix(np.stack([self._tracks[i].corners for i in ids]),
                                 np.stack([self._tracks[i].corners for i in ids]))
        for a in range(len(ids)):
            for b in range(a + 1, len(ids)):
                if ids[a] in self._tracks and ids[b] in self._tracks and iou[a, b] > _DUPLICATE_IOU:
                    del self._tracks[ids[b]]  # The younger id goes.
