"""Tests of the face tracker: scheduling and id logic (scripted detector), then real videos.

The scripted detector below is not a mock of MTCNN's behaviour but a stage prop: it returns
boxes we choose, so that crossings, losses and caps happen on the frames we want.
"""

from __future__ import annotations

import numpy as np
import pytest

from ast_net.faces import detector as detector_lib
from ast_net.faces import tracker as tracker_lib
from ast_net.faces import video


def _face(x, y, w=50.0, h=60.0, conf=0.99):
    eyes = {"left_eye": (x + 0.3 * w, y + 0.4 * h), "right_eye": (x + 0.7 * w, y + 0.4 * h)}
    return detector_lib.Face(box=(x, y, w, h), confidence=conf, landmarks=eyes)


class ScriptedDetector:
    """detect() returns the script's faces for the frame number it is given (rgb[0, 0, 0]);
    refine() finds a face of that frame overlapping the box, or None."""

    def __init__(self, script):
        self.script = script
        self.calls = []

    def detect(self, rgb):
        frame = int(rgb[0, 0, 0])
        self.calls.append(("detect", frame))
        return list(self.script.get(frame, []))

    def refine_many(self, rgb, boxes):
        frame = int(rgb[0, 0, 0])
        self.calls.append(("refine", frame))
        out = []
        for box in boxes:
            x, y = box[0], box[1]
            near = [f for f in self.script.get(frame, [])
                    if abs(f.box[0] - x) < 30 and abs(f.box[1] - y) < 30]
            out.append(near[0] if near else None)
        return out


def _frame(i):
    return np.full((4, 4, 3), i, np.uint8)


def test_detects_every_k_frames_and_refines_in_between():
    script = {i: [_face(100 + i, 100)] for i in range(25)}
    det = ScriptedDetector(script)
    tracker = tracker_lib.FaceTracker(det, detect_every=10)
    results = [tracker.update(_frame(i)) for i in range(25)]
    assert [c for c in det.calls if c[0] == "detect"] == [("detect", 0), ("detect", 10),
                                                           ("detect", 20)]
    assert all(len(r) == 1 and r[0].track_id == 0 for r in results)
    assert [r[0].detected for r in results[:11]] == [True] + [False] * 9 + [True]


def test_lost_track_triggers_detection_on_the_same_frame_and_new_faces_get_new_ids():
    script = {0: [_face(100, 100)], 1: [_face(102, 100)], 2: [_face(300, 100)],
              3: [_face(302, 100)]}
    det = ScriptedDetector(script)
    tracker = tracker_lib.FaceTracker(det, detect_every=10)
    ids = [[t.track_id for t in tracker.update(_frame(i))] for i in range(4)]
    # Frame 2: refinement at the old place fails -> full detection right away -> a new id.
    assert ids == [[0], [0], [1], [1]]
    assert ("detect", 2) in det.calls and ("detect", 3) not in det.calls


def test_ids_follow_faces_by_iou_when_they_cross():
    # Face a walks right, face b walks left 40 px lower; they pass each other at frame 15.
    # The detector lists them in alternating order, so only IoU matching can keep the ids.
    def a(i):
        return _face(100 + 10 * i, 100)

    def b(i):
        return _face(400 - 10 * i, 140)

    script = {i: [a(i), b(i)] if i % 2 else [b(i), a(i)] for i in range(31)}
    tracker = tracker_lib.FaceTracker(ScriptedDetector(script), detect_every=1)
    first = {t.track_id: t.face.box[0] for t in tracker.update(_frame(0))}
    id_of_a = min(first, key=first.get)
    for i in range(1, 31):
        xs = {t.track_id: t.face.box[0] for t in tracker.update(_frame(i))}
        assert set(xs) == {0, 1}
        assert xs[id_of_a] == pytest.approx(100 + 10 * i)


def test_max_faces_keeps_the_largest_and_holds_it():
    small, big = _face(10, 10, 40, 40), _face(200, 10, 90, 100)
    script = {0: [small, big], 1: [small, big], 2: [small, big, _face(400, 10, 120, 130)]}
    tracker = tracker_lib.FaceTracker(ScriptedDetector(script), detect_every=1, max_faces=1)
    boxes = [[t.face.box for t in tracker.update(_frame(i))] for i in range(3)]
    assert boxes[0] == [big.box] and boxes[1] == [big.box]
    assert boxes[2] == [big.box]  # An even larger newcomer does not steal the slot.


def test_track_missed_by_full_detection_survives_if_onet_still_sees_it():
    face = _face(100, 100)
    det = ScriptedDetector({0: [face], 1: [face], 2: [face]})
    det.detect = lambda rgb, d=det.detect: [] if int(rgb[0, 0, 0]) == 1 else d(rgb)
    tracker = tracker_lib.FaceTracker(det, detect_every=1)
    out = [tracker.update(_frame(i)) for i in range(3)]
    assert [[(t.track_id, t.detected) for t in o] for o in out] == [
        [(0, True)], [(0, False)], [(0, True)]]


def test_reset_forgets_tracks_but_never_reuses_ids():
    script = {0: [_face(100, 100)], 1: [_face(100, 100)]}
    tracker = tracker_lib.FaceTracker(ScriptedDetector(script), detect_every=10)
    assert tracker.update(_frame(0))[0].track_id == 0
    tracker.reset()
    assert tracker.tracks == {}
    assert tracker.update(_frame(1))[0].track_id == 1


def test_bad_arguments():
    with pytest.raises(ValueError):
        tracker_lib.FaceTracker(ScriptedDetector({}), detect_every=0)
    with pytest.raises(ValueError):
        tracker_lib.FaceTracker(ScriptedDetector({}), max_faces=0)


# ----- real videos ------------------------------------------------------------------------


def _track(detector, path, stride=1, detect_every=10):
    tracker = tracker_lib.FaceTracker(detector, detect_every=detect_every)
    out = []
    for index, _, rgb in video.iter_frames(path):
        if index % stride == 0:
            out.append(tracker.update(rgb))
    return out


def test_single_face_video_keeps_one_id_on_every_frame(detector, media):
    frames = _track(detector, media("single_face.mp4"))
    assert len(frames) == 72
    assert all(len(f) == 1 for f in frames)
    assert {f[0].track_id for f in frames} == {0}
    assert sum(f[0].detected for f in frames) == 8  # Frames 0, 10, ..., 70.


def test_no_face_video_has_no_face_on_any_frame(detector, media):
    frames = _track(detector, media("no_face.mp4"))
    assert len(frames) == 95 and all(f == [] for f in frames)


def test_face_lost_then_found_again_on_the_hevc_movs(detector, media):
    # face_noface.mov (face on frames 0-71, then none) followed by noface_face.mov (none on
    # frames 0-95, then a face) as one stream: found, lost, found again. Both are HEVC .mov
    # (960 x 540, 169 frames): every frame is decoded, every 3rd is tracked to keep this short.
    tracker = tracker_lib.FaceTracker(detector, detect_every=10)
    present, ids, decoded = {}, {}, {}
    for name in ("face_noface.mov", "noface_face.mov"):
        reader = video.iter_frames(media(name))
        for index, _, rgb in reader:
            assert rgb.shape == (540, 960, 3)
            if index % 3 == 0:
                faces = tracker.update(rgb)
                present[name, index] = bool(faces)
                ids[name, index] = {t.track_id for t in faces}
        decoded[name] = reader.frames_read
        assert not reader.truncated
    assert decoded == {"face_noface.mov": 169, "noface_face.mov": 169}
    first = [i for (n, i), p in present.items() if n == "face_noface.mov" and p]
    second = [i for (n, i), p in present.items() if n == "noface_face.mov" and p]
    # Face on the first ~72 frames, lost for the rest of the first file and the start of the
    # second, then found again (frame ~96) with a new id.
    assert min(first) == 0 and 60 <= max(first) <= 75 and len(first) >= 20
    assert not any(present[n, i] for (n, i) in present
                   if (n == "face_noface.mov" and i > 75) or (n == "noface_face.mov" and i < 90))
    assert 90 <= min(second) <= 102 and len(second) >= 20
    assert ids["face_noface.mov", 0] == {0}
    assert ids["noface_face.mov", min(second)] == {1}


def test_a_failed_refinement_is_not_retried_on_the_same_frame():
    script = {0: [_face(100, 100)], 1: [_face(300, 300)]}
    det = ScriptedDetector(script)
    tracker = tracker_lib.FaceTracker(det, detect_every=10)
    tracker.update(_frame(0))
    assert [t.track_id for t in tracker.update(_frame(1))] == [1]
    assert det.calls == [("detect", 0), ("refine", 1), ("detect", 1)]
