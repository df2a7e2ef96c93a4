"""Tests of the synthetic face videos: AVEC 2012 layout and format, read-back, determinism, and
that the rendered faces really carry the emotion (measured independently with MTCNN + cv2).

The emotion check never uses the generator's own geometry: MTCNN finds eyes and mouth corners on
the rendered frames; mouth-corner height is measured perpendicular to the eye line, eye opening
as the fraction of dark pixels in eye windows of an eye-aligned crop.
"""

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from ast_net import errors
from ast_net.data import labels_readers, layouts
from ast_net.data import synthetic_video as sv
from ast_net.data import synthetic_video_io as svio

DIMS = ("arousal", "expectancy", "power", "valence")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synvid")
    manifest = svio.generate(root, seed=3, num_train=2, num_dev=1, num_test=1, num_frames=60,
                             progress=False)
    return root, manifest


@pytest.fixture(scope="module")
def detector():
    from mtcnn import MTCNN

    return MTCNN()  # Default min_face_size (20): mtcnn 1.0.0 finds nothing above 20.


def _read_video(path):
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return np.stack(frames), fps


def test_layout_is_the_avec2012_one(dataset):
    root, manifest = dataset
    expected = {"train/videos/train001.avi", "train/videos/train002.avi",
                "devel/videos/devel001.avi", "test/videos/test001.avi",
                "labels_truth.csv", "synthetic_manifest.json"}
    for split, session in [("train", "train001"), ("train", "train002"),
                           ("devel", "devel001"), ("test", "test001")]:
        expected |= {f"{split}/FC_{split}_labels/labels_continuous_{session}_{d}.dat"
                     for d in DIMS}
    found = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert found == expected  # Nothing else, no temporary files left behind.
    assert [v["session"] for v in manifest["videos"]] == [
        "train001", "train002", "devel001", "test001"]


def test_dat_format_one_float_per_line_one_line_per_frame(dataset):
    root, _ = dataset
    for path in root.rglob("*.dat"):
        text = path.read_text()
        lines = text.split("\n")
        assert lines[-1] == "" and len(lines) - 1 == 60, path  # Newline-terminated, 60 lines.
        values = [float(s) for s in lines[:-1]]  # No header: every line is a number.
        assert all(-1.0 <= v <= 1.0 for v in values)
        assert np.std(values) > 0.01  # A curve, not a constant.


def test_pipeline_layout_reader_finds_every_session(dataset):
    root, _ = dataset
    items = layouts.find_items("avec2012", root)
    assert [(it.split, it.video_id, it.problem) for it in items] == [
        ("dev", "avec2012/devel001", ""), ("test", "avec2012/test001", ""),
        ("train", "avec2012/train001", ""), ("train", "avec2012/train002", "")]
    times, values = labels_readers.read_avec2012_dat(items[0].label_paths["valence"])
    assert len(values) == 60 and times[1] == pytest.approx(1 / 49.979)


def test_video_reads_back_with_opencv(dataset):
    root, manifest = dataset
    frames, fps = _read_video(root / "devel/videos/devel001.avi")
    assert frames.shape == (60, 240, 320, 3)
    assert fps == pytest.approx(49.979, abs=0.01)  # AVI stores 49.98.
    spec = sv.video_spec(3, "devel", 1, num_frames=60)
    rendered = np.stack(list(sv.frames(spec)))
    # Motion JPEG is lossy but close to what was rendered.
    assert np.mean(np.abs(frames.astype(float) - rendered)) < 3.0
    assert manifest["videos"][2]["num_frames"] == 60


def test_generation_is_deterministic(tmp_path):
    kwargs = dict(num_train=1, num_dev=0, num_test=1, num_frames=12, progress=False)
    svio.generate(tmp_path / "a", seed=5, **kwargs)
    svio.generate(tmp_path / "b", seed=5, **kwargs)
    svio.generate(tmp_path / "c", seed=6, **kwargs)
    for rel in ["train/FC_train_labels/labels_continuous_train001_valence.dat",
                "test/FC_test_labels/labels_continuous_test001_arousal.dat", "labels_truth.csv"]:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
        assert (tmp_path / "a" / rel).read_bytes() != (tmp_path / "c" / rel).read_bytes()
    va, _ = _read_video(tmp_path / "a/train/videos/train001.avi")
    vb, _ = _read_video(tmp_path / "b/train/videos/train001.avi")
    vc, _ = _read_video(tmp_path / "c/train/videos/train001.avi")
    assert np.array_equal(va, vb) and not np.array_equal(va, vc)


def test_labels_are_the_truth_delayed_by_the_annotator(dataset):
    root, manifest = dataset
    # A longer video than the fixture's, so the cross-correlation peak is well defined.
    spec = sv.video_spec(3, "train", 2, num_frames=1500)
    labels = sv.label_tracks(spec)
    t = sv.frame_times(spec)
    truth_v, truth_a = sv.emotion(spec, t)
    lags = np.arange(0, 200)
    for label, truth in ((labels["valence"], truth_v), (labels["arousal"], truth_a)):
        cc = [np.corrcoef(label[lag:], truth[:len(truth) - lag])[0, 1] for lag in lags]
        assert abs(lags[int(np.argmax(cc))] - spec.annotator_delay_s * 49.979) <= 3
        assert max(cc) > 0.9
    delays = [v["annotator_delay_s"] for v in manifest["videos"]]
    assert all(1.0 <= d <= 3.0 for d in delays) and len(set(delays)) == len(delays)
    # The truth file holds the undelayed latent of every frame.
    rows = (root / "labels_truth.csv").read_text().splitlines()
    assert rows[0] == "session,frame,time_s,valence,arousal" and len(rows) == 1 + 4 * 60


def test_other_fps_gives_labels_at_49979_per_second(tmp_path):
    svio.generate(tmp_path, num_train=1, num_dev=0, num_test=0, num_frames=50, fps=25.0,
                  width=160, height=120, codec="mp4v", progress=False)
    frames, fps = _read_video(tmp_path / "train/videos/train001.mp4")
    assert frames.shape == (50, 120, 160, 3) and fps == pytest.approx(25.0)
    dat = tmp_path / "train/FC_train_labels/labels_continuous_train001_arousal.dat"
    assert len(dat.read_text().splitlines()) == 100  # round(50 frames / 25 fps * 49.979).


def test_stale_temporary_files_are_cleared(tmp_path):
    # What a killed run leaves (ast_net.atomic's temporary name; pid 999999999 is not alive).
    stale = tmp_path / "train" / "videos" / ".train001.999999999.tmp.avi"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"half a video")
    svio.generate(tmp_path, num_train=1, num_dev=0, num_test=0, num_frames=3, progress=False)
    assert not stale.exists()
    assert sorted(p.name for p in stale.parent.iterdir()) == ["train001.avi"]
    assert len(layouts.find_items("avec2012", tmp_path)) == 1


@pytest.mark.parametrize("kwargs, flag", [
    (dict(num_frames=0), "--frames"), (dict(width=321), "--width"),
    (dict(num_train=0, num_dev=0, num_test=0), "--num_train"), (dict(fps=0.0), "--fps"),
    (dict(codec="h265"), "--codec"), (dict(num_dev=1000), "--num_dev")])
def test_bad_arguments_are_user_errors(tmp_path, kwargs, flag):
    with pytest.raises(errors.UserError, match=flag):
        svio.generate(tmp_path, progress=False, **kwargs)


def test_binary_writes_and_reports_bad_flags(tmp_path):
    cmd = [sys.executable, "-m", "ast_net.make_synthetic_videos", f"--out_dir={tmp_path}",
           "--num_train=1", "--num_dev=0", "--num_test=0", "--frames=4"]
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "synthetic_manifest.json").read_text())["num_frames"] == 4
    proc = subprocess.run(cmd + ["--width=99"], capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: --width")


def test_landmark_constants_match_mtcnn_on_the_photo(detector):
    from skimage import data

    k = detector.detect_faces(data.astronaut())[0]["keypoints"]
    for name, ours in [("left_eye", (203.5, 100.0)), ("right_eye", (246.0, 102.0)),
                       ("mouth_left", (201.5, 139.5)), ("mouth_right", (244.0, 140.0))]:
        assert np.hypot(*(np.asarray(k[name]) - ours)) <= 2.0, name


def _measure(detector, frames):
    """Per frame: (face found, mouth-corner height / eye distance, dark fraction in eyes)."""
    found, mouth, eyes = [], [], []
    results = detector.detect_faces([f[:, :, ::-1] for f in frames])
    for frame, faces in zip(frames, results):
        if not faces:
            found.append(False), mouth.append(np.nan), eyes.append(np.nan)
            continue
        k = max(faces, key=lambda d: d["confidence"])["keypoints"]
        left, right = np.asarray(k["left_eye"], float), np.asarray(k["right_eye"], float)
        corners = (np.asarray(k["mouth_left"], float) + np.asarray(k["mouth_right"], float)) / 2
        axis = (right - left) / np.linalg.norm(right - left)
        down = np.array([-axis[1], axis[0]])
        mouth.append((corners - (left + right) / 2) @ down / np.linalg.norm(right - left))
        m, _ = cv2.estimateAffinePartial2D(np.float32([left, right]),
                                           np.float32([[30, 40], [70, 40]]))
        grey = cv2.cvtColor(cv2.warpAffine(frame, m, (100, 100)), cv2.COLOR_BGR2GRAY)
        cheek = np.median(grey[52:62, 25:75])
        windows = np.concatenate([grey[35:46, 20:41], grey[35:46, 60:81]], 1)
        eyes.append(np.mean(windows < 0.6 * cheek))
        found.append(True)
    return np.array(found), np.array(mouth), np.array(eyes)


@pytest.mark.parametrize("index", [1, 2])  # train001 is mirrored, train002 is not.
def test_faces_carry_the_emotion_and_mtcnn_finds_them(detector, index):
    # 4 fps over 20 s: several emotion swings in 80 frames, with every nuisance on.
    spec = sv.video_spec(0, "train", index, num_frames=80, fps=4.0)
    assert spec.subject.flip == (index == 1)
    frames = list(sv.frames(spec))
    valence, arousal = sv.emotion(spec, sv.frame_times(spec))
    found, mouth, eyes = _measure(detector, frames)
    assert found.mean() >= 0.95
    assert np.ptp(valence) > 1.0 and np.ptp(arousal) > 1.0
    # Lower mouth corners (larger height below the eyes) = lower valence.
    assert np.corrcoef(mouth[found], valence[found])[0, 1] < -0.7
    # Wider eyes (more dark iris/lash pixels) = higher arousal.
    assert np.corrcoef(eyes[found], arousal[found])[0, 1] > 0.7


def test_mtcnn_finds_the_face_on_sampled_frames_of_a_written_video(dataset, detector):
    root, _ = dataset
    found = []
    for path in sorted(root.rglob("*.avi")):
        frames, _ = _read_video(path)
        found.extend(_measure(detector, list(frames[::12]))[0])
    assert len(found) == 20 and np.mean(found) >= 0.95
