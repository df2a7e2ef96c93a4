"""Faults of the data pipeline, injected for real: inputs edited between runs, a re-prepare with
another shard count, edited or truncated face shards, and `kill -9` of the real
`ast-net-prepare-videos` binary (two Beam worker processes) at a random point.

The data: an AVEC 2012 tree of two short videos of a real face photo (skimage's astronaut,
which MTCNN finds), 12 and 10 frames at 25 fps, with labels in the exact `.dat` format.
Expected label values are constants written into the files (linear interpolation of a
constant is that constant); expected frame counts are the frames written.
"""

import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid

import cv2
import numpy as np
import pytest
import tensorflow as tf
from ast_net.pipelines import extract_features_lib, prepare_videos_lib, video_records
from skimage import data as skdata

from ast_net import errors
from ast_net.data import records, schema

REPO = pathlib.Path(__file__).resolve().parents[2]
FPS = 25.0
FRAMES = {"train001": 12, "train002": 10}
SIZE = 64  # The mini_xception's input, so extract-features accepts the faces.


def _write_video(path, n):
    img = skdata.astronaut()
    path.parent.mkdir(parents=True, exist_ok=True)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (320, 240))
    for i in range(n):
        x0, y0 = 60 + i % 20, 10 + (i // 2) % 10
        frame = cv2.resize(img[y0:y0 + 300, x0:x0 + 400], (320, 240),
                           interpolation=cv2.INTER_AREA)
        vw.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    vw.release()


def _label_path(root, video, dim):
    split = video[:-3]
    return root / split / f"FC_{split}_labels" / f"labels_continuous_{video}_{dim}.dat"


def _write_labels(root, video, valence, arousal, lines=80):
    """`lines` label samples (1.6 s at 49.979 Hz: longer than both videos), constant values."""
    for dim, value in (("valence", valence), ("arousal", arousal)):
        path = _label_path(root, video, dim)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{value:.6f}\n" * lines)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    root = tmp_path_factory.mktemp("avec_src")
    for video, n in FRAMES.items():
        _write_video(root / "train/videos" / f"{video}.avi", n)
    _write_labels(root, "train001", 0.1, -0.1)
    _write_labels(root, "train002", 0.2, -0.2)
    return root


@pytest.fixture
def root(source, tmp_path):
    """A private copy of the data set, free to edit."""
    return pathlib.Path(shutil.copytree(source, tmp_path / "root"))


def _config(root, out, num_shards=1):
    opts = video_records.Options(face_size=SIZE, detect_every=5, min_face_size=20)
    return prepare_videos_lib.Config(dataset="avec2012", root=str(root), out_dir=str(out),
                                     options=opts, num_shards=num_shards, progress=False)


def _prepare(root, out, num_shards=1):
    return prepare_videos_lib.prepare_videos(_config(root, out, num_shards))


def _records(out):
    """{shard name: [serialized records]} of every shard in `out`."""
    return {p.name: [bytes(r) for r in tf.data.TFRecordDataset(str(p)).as_numpy_iterator()]
            for p in sorted(pathlib.Path(out).glob("*.tfrecord"))}


def _labels_by_video(out):
    """{video id: (valence, arousal, label mask)} read back from the face shards."""
    found = {}
    for recs in _records(out).values():
        for raw in recs:
            ex = tf.train.SequenceExample.FromString(raw)
            vid = ex.context.feature[schema.VIDEO_ID].bytes_list.value[0].decode()
            lists = ex.feature_lists.feature_list
            found[vid] = tuple(np.array([f.float_list.value[0] if key != schema.LABEL_MASK
                                         else f.int64_list.value[0]
                                         for f in lists[key].feature])
                               for key in (schema.VALENCE, schema.AROUSAL, schema.LABEL_MASK))
    return found


def _part(out, video):
    return next((pathlib.Path(out) / ".work/parts").glob(f"avec2012__{video}-*.tfrecord"))


def _identity(path):
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns


def test_edited_label_file_or_other_root_is_redone_unchanged_video_reused(root, tmp_path):
    out = tmp_path / "faces"
    _prepare(root, out)
    first = _labels_by_video(out)
    assert np.allclose(first["avec2012/train001"][0][first["avec2012/train001"][2] == 1], 0.1)
    kept = _identity(_part(out, "train002"))
    redone = _identity(_part(out, "train001"))
    _write_labels(root, "train001", 0.5, -0.5)  # Same length, new values.
    summary = _prepare(root, out)
    assert summary.ok == 2
    second = _labels_by_video(out)
    val, aro, mask = second["avec2012/train001"]
    # Faces on (nearly) every frame; the labels cover the whole video.
    assert len(mask) == FRAMES["train001"] and mask.sum() >= 10
    np.testing.assert_allclose(val[mask == 1], 0.5, atol=1e-6)
    np.testing.assert_allclose(aro[mask == 1], -0.5, atol=1e-6)
    np.testing.assert_allclose(second["avec2012/train002"][0][second["avec2012/train002"][2]
                                                              == 1], 0.2, atol=1e-6)
    assert _identity(_part(out, "train002")) == kept  # Unchanged inputs: not recomputed.
    assert _identity(_part(out, "train001")) != redone
    # The same videos under another --root, with other labels: redone from the new root.
    other = pathlib.Path(shutil.copytree(root, tmp_path / "elsewhere"))
    _write_labels(other, "train002", 0.7, -0.7)
    _write_labels(other, "train001", 0.5, -0.5)
    _prepare(other, out)
    third = _labels_by_video(out)
    v2, a2, m2 = third["avec2012/train002"]
    np.testing.assert_allclose(v2[m2 == 1], 0.7, atol=1e-6)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["root"] == str(other)
    assert all(str(other) in e["video_path"] for e in manifest["videos"])


def test_fixed_label_file_turns_the_cached_failure_into_ok(root, tmp_path):
    out = tmp_path / "faces"
    bad = _label_path(root, "train002", "arousal")
    bad.write_text("0.1\n0.2\nnot-a-number\n0.3\n")
    summary = _prepare(root, out)
    assert (summary.ok, summary.failed) == (1, 1)
    assert [(v, s) for v, s, _ in summary.problems] == [("avec2012/train002", "failed")]
    assert bad.name in summary.problems[0][2]
    entry = next((out / ".work/parts").glob("avec2012__train002-*.json"))
    stamp = _identity(entry)
    again = _prepare(root, out)  # Nothing changed: the failure is cached, and still listed.
    assert _identity(entry) == stamp
    assert again.problems == summary.problems
    _write_labels(root, "train002", 0.3, -0.3)
    fixed = _prepare(root, out)
    assert (fixed.ok, fixed.failed, fixed.problems) == (2, 0, [])
    val, _, mask = _labels_by_video(out)["avec2012/train002"]
    assert len(val) == FRAMES["train002"]
    np.testing.assert_allclose(val[mask == 1], 0.3, atol=1e-6)


def _frames_read(data_dir, split):
    files = records.list_files(str(data_dir), split)
    return files, sum(len(v.mask) for v in records.iter_videos(files, 128))


def test_reprepare_with_another_shard_count_then_reextract_reads_exactly_the_new_set(
        root, tmp_path):
    faces, feats = tmp_path / "faces", tmp_path / "features"
    total = sum(FRAMES.values())
    _prepare(root, faces, num_shards=2)
    first = extract_features_lib.extract_features(str(faces), str(feats), progress=False)
    assert first.shards_written == 2
    files, frames = _frames_read(feats, "train")
    assert [os.path.basename(f) for f in files] == ["train-00000-of-00002.tfrecord",
                                                    "train-00001-of-00002.tfrecord"]
    assert frames == total
    _prepare(root, faces, num_shards=1)  # Parts are reused; only the shards change.
    second = extract_features_lib.extract_features(str(faces), str(feats), progress=False)
    assert (second.shards_written, second.shards_skipped) == (1, 0)
    assert sorted(second.removed) == ["train-00000-of-00002.tfrecord",
                                      "train-00001-of-00002.tfrecord"]
    files, frames = _frames_read(feats, "train")
    assert [os.path.basename(f) for f in files] == ["train-00000-of-00001.tfrecord"]
    assert frames == total  # 22, not 44: no old shard mixed in.
    assert sorted(p.name for p in feats.glob("*.tfrecord")) == ["train-00000-of-00001.tfrecord"]
    # An old shard dropped back beside the new one (say, restored from a backup) is not read.
    shutil.copy(feats / "train-00000-of-00001.tfrecord", feats / "train-00000-of-00002.tfrecord")
    assert _frames_read(feats, "train")[1] == total


def _blacken_faces(path):
    """Rewrites a face shard in place (same name) with every face a black JPEG."""
    black = cv2.imencode(".jpg", np.zeros((SIZE, SIZE, 3), np.uint8))[1].tobytes()
    exs = [tf.train.SequenceExample.FromString(r)
           for r in tf.data.TFRecordDataset(str(path)).as_numpy_iterator()]
    with tf.io.TFRecordWriter(str(path)) as w:
        for ex in exs:
            for f in ex.feature_lists.feature_list[schema.FACE_JPEG].feature:
                f.bytes_list.value[0] = black
            w.write(ex.SerializeToString())


def _features(path):
    """Feature rows of the frames with a face in a feature shard."""
    out = []
    for raw in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
        lists = tf.train.SequenceExample.FromString(raw).feature_lists.feature_list
        out += [list(f.float_list.value) for f, p in zip(
            lists[schema.FEATURES].feature, lists[schema.FACE_PRESENT].feature)
                if p.int64_list.value[0]]
    return np.array(out)


def test_faces_edited_under_the_same_names_are_re_extracted(root, tmp_path):
    faces, feats = tmp_path / "faces", tmp_path / "features"
    _prepare(root, faces, num_shards=2)
    extract_features_lib.extract_features(str(faces), str(feats), progress=False)
    name = "train-00001-of-00002.tfrecord"  # train002: every frame has a face.
    before = _features(feats / name)
    assert len(before) >= 8 and np.ptp(before, axis=0).max() > 1e-3
    _blacken_faces(faces / name)
    again = extract_features_lib.extract_features(str(faces), str(feats), progress=False)
    assert (again.shards_written, again.shards_skipped) == (1, 1)
    after = _features(feats / name)
    assert after.shape == before.shape
    # One black image in every frame: the same feature row for all, unlike before.
    assert np.ptp(after, axis=0).max() < 1e-5 and not np.allclose(after[0], before[0])
    # Re-preparing rewrites every shard (new mtime and inode) with the same bytes: the hash
    # shows nothing changed for the untouched shard, a new label value redoes the other.
    _write_labels(root, "train001", 0.9, -0.9)
    _prepare(root, faces, num_shards=2)
    third = extract_features_lib.extract_features(str(faces), str(feats), progress=False)
    assert (third.shards_written, third.shards_skipped) == (2, 0)  # 00001 was blackened.
    videos = {v.video_id: v for v in records.iter_videos(
        records.list_files(str(feats), "train"), 128)}
    t1 = videos["avec2012/train001"]
    np.testing.assert_allclose(t1.labels[t1.mask == 1, 0], 0.9, atol=1e-6)
    fourth = extract_features_lib.extract_features(str(faces), str(feats), progress=False)
    assert (fourth.shards_written, fourth.shards_skipped) == (0, 2)


@pytest.mark.slow  # Real binaries end to end, over 20 s.
def test_truncated_shards_are_named_and_a_split_without_shards_is_an_error(root, tmp_path):
    _write_video(root / "devel/videos/devel001.avi", 8)
    _write_labels(root, "devel001", 0.0, 0.0)
    faces, feats = tmp_path / "faces", tmp_path / "features"
    _prepare(root, faces, num_shards=2)
    for name in ("train-00001-of-00002.tfrecord", "dev-00000-of-00002.tfrecord"):
        data = (faces / name).read_bytes()
        (faces / name).write_bytes(data[:len(data) // 2])
    (faces / "dev-00001-of-00002.tfrecord").unlink()  # dev's other (empty) shard: gone.
    with pytest.raises(errors.UserError) as e:
        extract_features_lib.extract_features(str(faces), str(feats), progress=False)
    message = str(e.value)
    assert "split dev has no usable input shard left" in message
    assert "split train" not in message  # train-00000 is fine
    assert f"{faces / 'dev-00000-of-00002.tfrecord'}: skipped, unreadable" in message
    assert f"{faces / 'train-00001-of-00002.tfrecord'}: skipped, unreadable" in message
    assert f"{faces / 'dev-00001-of-00002.tfrecord'}: skipped, missing" in message
    files = json.loads((feats / "manifest.json").read_text())["files"]
    assert files == {"dev": [], "train": ["train-00000-of-00002.tfrecord"]}
    assert _frames_read(feats, "train")[1] == FRAMES["train001"]
    with pytest.raises(errors.UserError, match="names no dev files"):
        records.list_files(str(feats), "dev")
    # The binary: one `error:` line, exit 2 (train's good shard is reused, not redone).
    proc = subprocess.run(
        [sys.executable, "-m", "ast_net.pipelines.extract_features", f"--in_dir={faces}",
         f"--out_dir={feats}"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    errors_out = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors_out) == 1 and errors_out[0].startswith(
        "error: split dev has no usable input shard left")
    assert "dev-00000-of-00002.tfrecord: skipped, unreadable" in errors_out[0]


def _tagged(tag):
    """Pids of the live processes whose environment holds AST_NET_TEST_TAG=tag (a killed one
    not yet reaped, state Z, does not count)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if f"AST_NET_TEST_TAG={tag}".encode() not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            if state != "Z":
                found.append(int(pid))
        except OSError:
            pass
    return found


@pytest.mark.slow  # Real binaries end to end, over 20 s.
def test_kill_9_of_the_binary_with_two_workers_then_rerun_equals_an_uninterrupted_run(
        root, tmp_path):
    (root / "devel/videos").mkdir(parents=True)
    _write_labels(root, "devel003", 0.0, 0.0)  # Labels without a video: a failed item.
    reference = tmp_path / "reference"
    _prepare(root, reference)
    out, tag = tmp_path / "out", uuid.uuid4().hex
    seed = int(time.time())
    delay = random.Random(seed).uniform(0.0, 1.0)
    log = tmp_path / "killed.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ast_net.pipelines.prepare_videos", "--progress=false",
             "--dataset=avec2012", f"--root={root}", f"--out_dir={out}", f"--face_size={SIZE}",
             "--detect_every=5", "--min_face_size=20", "--num_shards=1",
             "--direct_num_workers=2"], cwd=REPO, stdout=f, stderr=subprocess.STDOUT,
            env=dict(os.environ, AST_NET_TEST_TAG=tag))
    deadline = time.time() + 150
    while len(set(_tagged(tag)) - {proc.pid}) < 2 and time.time() < deadline:
        assert proc.poll() is None, log.read_text()[-2000:]
        time.sleep(0.1)
    assert len(set(_tagged(tag)) - {proc.pid}) == 2, "two worker processes never started"
    while not list(out.rglob(".*.tmp")) and time.time() < deadline:  # A video under way.
        assert proc.poll() is None, log.read_text()[-2000:]
        time.sleep(0.02)
    time.sleep(delay)  # A random point while the workers detect faces and write parts.
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    print(f"seed {seed}: killed {delay:.2f} s after the first temporary file; left "
          f"{sorted(p.name for p in out.rglob('*.tmp'))}, done "
          f"{sorted(p.name for p in out.rglob('parts/*.json'))}")
    deadline = time.time() + 10
    while _tagged(tag) and time.time() < deadline:
        time.sleep(0.1)
    assert _tagged(tag) == [], f"workers outlived the killed driver (seed {seed})"
    noise = [line for line in log.read_text().splitlines() if any(
        w in line for w in ("apitools", "sdk harness", "semi_persistent", "Worker:",
                            "Discarding unparseable", "INFO:"))]
    assert noise == []
    summary = _prepare(root, out)
    assert _records(out) == _records(reference), f"seed {seed}, delay {delay:.1f} s"
    assert [p for p in out.rglob("*.tmp")] == []
    assert summary.problems[0][:2] == ("avec2012/devel003", "failed")
