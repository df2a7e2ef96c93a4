"""End-to-end tests of the prepare-videos Beam pipeline on tiny videos of a real face photo.

An AVEC 2012 tree is built in a temp folder: two face videos (skimage's astronaut, which real
MTCNN detects) whose label files are shorter / longer than the video, a video with no face, an
unreadable file, a truncated file and labels without a video. Expected label values come from
numpy.interp; expected counts are worked out in the comments.
"""

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import tensorflow as tf
from ast_net.pipelines import manifest, prepare_videos_lib, video_records
from skimage import data as skdata

from ast_net.data import schema

REPO = pathlib.Path(__file__).resolve().parents[2]
FPS = 25.0
AVEC_FPS = 49.979
SIZE = 64  # face_size used by the tests


def face_frames(n, w=320, h=240):
    img = skdata.astronaut()
    for i in range(n):
        x0, y0 = 60 + i % 20, 10 + (i // 2) % 10
        yield cv2.resize(img[y0:y0 + 300, x0:x0 + 400], (w, h), interpolation=cv2.INTER_AREA)


def two_face_frames(n):
    """320 x 160: a gray astronaut on the left, a colour one on the right."""
    img = skdata.astronaut()
    for i in range(n):
        face = cv2.resize(img[20 + i % 5:270 + i % 5, 110:360], (160, 160),
                          interpolation=cv2.INTER_AREA)
        gray = cv2.cvtColor(cv2.cvtColor(face, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
        yield np.concatenate([gray, face], axis=1)


def no_face_frames(n, w=320, h=240):
    ramp = np.linspace(0, 255, w, dtype=np.uint8)[None, :, None]
    for i in range(n):
        frame = np.broadcast_to(ramp, (h, w, 3)).copy()
        frame[40:80, 20 + 3 * i:60 + 3 * i] = (200, 40, 40)
        yield frame


def write_video(path, frames, w=320, h=240):
    path.parent.mkdir(parents=True, exist_ok=True)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (w, h))
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()


def write_dat(root, split, num, values_by_dim):
    for dim, values in values_by_dim.items():
        path = root / split / f"FC_{split}_labels" / f"labels_continuous_{split}{num}_{dim}.dat"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{v:.6f}\n" for v in values))


def label_values(n, phase):
    i = np.arange(n)
    return {"valence": np.round(0.5 * np.sin(i / 7 + phase), 6),
            "arousal": np.round(0.4 * np.cos(i / 5 + phase), 6)}


@pytest.fixture(scope="module")
def avec_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("avec2012")
    write_video(root / "train/videos/train001.avi", face_frames(40))
    write_dat(root, "train", "001", label_values(60, 0.0))  # 1.18 s of labels, 1.6 s video
    write_video(root / "train/videos/train002.avi", face_frames(30))
    write_dat(root, "train", "002", label_values(100, 1.0))  # 1.98 s of labels, 1.2 s video
    write_video(root / "devel/videos/devel001.avi", no_face_frames(12))
    write_dat(root, "devel", "001", label_values(30, 0.0))
    (root / "devel/videos/devel002.avi").write_bytes(b"not a video" * 100)
    write_dat(root, "devel", "002", label_values(30, 0.0))
    write_dat(root, "devel", "003", label_values(30, 0.0))  # labels without a video
    write_video(root / "test/videos/test001.avi", face_frames(40))
    full = (root / "test/videos/test001.avi").read_bytes()
    (root / "test/videos/test001.avi").write_bytes(full[:len(full) // 2])  # truncated
    return root


def config(root, out_dir, **kw):
    opts = video_records.Options(face_size=SIZE, detect_every=5, min_face_size=20,
                                 chunk_frames=16)
    return prepare_videos_lib.Config(dataset="avec2012", root=str(root), out_dir=str(out_dir),
                                     options=opts, num_shards=2, progress=False, **kw)


def read_records(out_dir):
    """{shard file name: [serialized records]} of every shard in out_dir."""
    return {p.name: [bytes(r) for r in tf.data.TFRecordDataset(str(p)).as_numpy_iterator()]
            for p in sorted(out_dir.glob("*.tfrecord"))}


def parse(record):
    ctx, seq = tf.io.parse_single_sequence_example(
        record, context_features=schema.CONTEXT_SPEC,
        sequence_features=schema.face_sequence_spec())
    return ({k: v.numpy() for k, v in ctx.items()}, {k: v.numpy() for k, v in seq.items()})


def _manifest_entries(out):
    """manifest.json's per-video entries by video id."""
    return {e["video_id"]: e for e in json.loads((out / "manifest.json").read_text())["videos"]}


@pytest.fixture(scope="module")
def uninterrupted(avec_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("out_a")
    summary = prepare_videos_lib.prepare_videos(config(avec_root, out))
    return out, summary


def test_manifest_statuses_and_counts(uninterrupted):
    out, summary = uninterrupted
    assert (summary.ok, summary.no_face, summary.failed) == (2, 1, 3)
    entries = _manifest_entries(out)
    t1, t2 = entries["avec2012/train001"], entries["avec2012/train002"]
    assert t1["status"] == "ok" and t1["frames"] == 40 and t1["chunks"] == 3  # 16 + 16 + 8
    assert t1["fps"] == pytest.approx(FPS)
    assert t1["frames_with_face"] >= 38
    # 60 labels end at 59 / 49.979 = 1.1805 s: frames 0..29 (t <= 1.16 s) are labelled.
    assert t1["labelled_frames"] == 30 and t1["video_frames_past_labels"] == 10
    assert t1["label_samples_past_video"] == 0 and t1["length_mismatch"] == 10
    # 30 frames end at 1.2 s: label samples i >= 1.2 * 49.979 = 59.97 (40 of 100) are extra.
    assert t2["labelled_frames"] == 30 and t2["label_samples_past_video"] == 40
    assert t2["video_frames_past_labels"] == 0
    assert entries["avec2012/devel001"]["status"] == "no_face"
    assert entries["avec2012/devel001"]["frames"] == 12
    assert entries["avec2012/devel002"]["status"] == "failed"
    assert "devel002.avi" in entries["avec2012/devel002"]["reason"]
    assert "truncated" in entries["avec2012/test001"]["reason"]
    assert "no video file" in entries["avec2012/devel003"]["reason"]
    assert summary.records == {"dev": 0, "test": 0, "train": 5}  # 3 + 2 chunks
    assert summary.shards["dev"] == ["dev-00000-of-00002.tfrecord", "dev-00001-of-00002.tfrecord"]


def test_records_content(uninterrupted, avec_root):
    out, _ = uninterrupted
    shards = read_records(out)
    assert sorted(shards) == [f"{s}-0000{i}-of-00002.tfrecord" for s in ("dev", "test", "train")
                              for i in range(2)]
    assert all(not v for k, v in shards.items() if not k.startswith("train"))
    # train001 is video 0 of its split -> shard 0; train002 -> shard 1.
    recs = [parse(r) for r in shards["train-00000-of-00002.tfrecord"]]
    assert [c[schema.FIRST_FRAME] for c, _ in recs] == [0, 16, 32]
    assert [c[schema.NUM_FRAMES] for c, _ in recs] == [16, 16, 8]
    ctx = recs[0][0]
    assert ctx[schema.VIDEO_ID] == b"avec2012/train001" and ctx[schema.SPLIT] == b"train"
    assert ctx[schema.FACE_SIZE] == SIZE and ctx[schema.DATASET] == b"avec2012"
    seq = {k: np.concatenate([s[k] for _, s in recs]) for k in recs[0][1]}
    times = np.arange(40) / FPS
    np.testing.assert_allclose(seq[schema.TIMESTAMP], times, atol=1e-3)
    labels = label_values(60, 0.0)
    label_t = np.arange(60) / AVEC_FPS
    present = seq[schema.FACE_PRESENT].astype(bool)
    want_mask = (times <= label_t[-1]) & present
    np.testing.assert_array_equal(seq[schema.LABEL_MASK], want_mask.astype(np.int64))
    for key, dim in ((schema.VALENCE, "valence"), (schema.AROUSAL, "arousal")):
        want = np.interp(times, label_t, labels[dim])
        np.testing.assert_allclose(seq[key][want_mask], want[want_mask], atol=1e-5)
        assert np.all(seq[key][~want_mask] == 0)
    faces = [tf.io.decode_jpeg(j).numpy() for j in seq[schema.FACE_JPEG]]
    assert all(f.shape == (SIZE, SIZE, 3) for f in faces)
    assert all(f.mean() > 40 for f, p in zip(faces, present) if p)  # a real crop, not black


def test_changed_options_reprocess_and_stale_shards_go(uninterrupted, avec_root, tmp_path):
    cfg = config(avec_root, tmp_path, splits=("train",))
    prepare_videos_lib.prepare_videos(cfg)
    cfg.num_shards = 1
    cfg.options = video_records.Options(face_size=SIZE, detect_every=5, min_face_size=20,
                                        chunk_frames=100)
    summary = prepare_videos_lib.prepare_videos(cfg)
    assert sorted(p.name for p in tmp_path.glob("*.tfrecord")) == [
        "train-00000-of-00001.tfrecord"]
    assert summary.records == {"train": 2}  # one chunk per video now
    assert [manifest.shard_name("train", 0, 1)] == summary.shards["train"]


def _binary(*args, log=None):
    out = subprocess.PIPE if log is None else open(log, "w")
    return subprocess.Popen(
        [sys.executable, "-m", "ast_net.pipelines.prepare_videos", "--progress=false", *args],
        cwd=REPO, stdout=out, stderr=subprocess.STDOUT if log else subprocess.PIPE, text=True)


def _avec_flags(root, out):
    return ["--dataset=avec2012", f"--root={root}", f"--out_dir={out}", f"--face_size={SIZE}",
            "--detect_every=5", "--min_face_size=20", "--chunk_frames=16", "--num_shards=2"]


@pytest.mark.slow  # Real binaries end to end, over 20 s.
def test_binary_killed_midway_then_rerun_gives_identical_shards(uninterrupted, avec_root,
                                                                   tmp_path):
    out_a, _ = uninterrupted
    out = tmp_path / "out"
    proc = _binary(*_avec_flags(avec_root, out), log=tmp_path / "killed.log")
    parts = out / ".work" / "parts"
    deadline = time.time() + 180
    while not list(parts.glob("*.json")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 1 <= len(list(parts.glob("*.json"))) < 6  # killed with videos left to do
    assert not list(out.glob("*.tfrecord"))  # no shard, partial or not, under its name
    rerun = _binary(*_avec_flags(avec_root, out))
    stdout, stderr = rerun.communicate(timeout=240)
    assert rerun.returncode == 0, stderr[-2000:]
    assert "6 videos: 2 ok, 1 with no face, 3 failed" in stdout
    # Each video that is not ok, with its reason (finished by the killed run or not).
    listed = [line for line in stdout.splitlines() if line.startswith(("failed:", "no_face:"))]
    assert [line.split(": ")[:2] for line in listed] == [
        ["no_face", "avec2012/devel001"], ["failed", "avec2012/devel002"],
        ["failed", "avec2012/devel003"], ["failed", "avec2012/test001"]]
    assert "no video file" in listed[2] and "truncated" in listed[3]
    assert read_records(out) == read_records(out_a)
    # What a kill in the middle of writing leaves: a temporary part, never a final one. A
    # third run removes it, finds every video done (entries untouched), rewrites equal shards.
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()  # A dead pid.
    (parts / f".avec2012__train002-0.tfrecord.{gone}.tmp").write_bytes(b"partial")
    before = {p.name: p.stat().st_mtime_ns for p in parts.glob("*.json")}
    prepare_videos_lib.prepare_videos(config(avec_root, out))
    assert before == {p.name: p.stat().st_mtime_ns for p in parts.glob("*.json")}
    assert read_records(out) == read_records(out_a)
    assert not list(out.rglob(".*.tmp"))


def test_binary_user_errors_are_one_line(tmp_path):
    proc = _binary("--dataset=avec2012", f"--root={tmp_path / 'missing'}",
                   f"--out_dir={tmp_path / 'out'}")
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "missing: expected the avec2012 data set folder" in last
    assert "Traceback" not in stderr


def test_affwild2_left_right_items_pick_their_face(tmp_path):
    root = tmp_path / "affwild2"
    write_video(root / "videos/batch1/10-60-320x160.avi", two_face_frames(20), w=320, h=160)
    ann = root / "annotations/VA_Estimation_Challenge/Train_Set"
    ann.mkdir(parents=True)
    values = np.round(np.linspace(-0.9, 0.9, 25), 4)  # 25 lines for a 20-frame video
    lines = ["valence,arousal"] + [f"{v},{-v}" for v in values]
    lines[3] = "-5,-5"  # frame 2 unlabelled
    for side in ("left", "right"):
        (ann / f"10-60-320x160_{side}.txt").write_text("\r\n".join(lines) + "\r\n")
    opts = video_records.Options(face_size=SIZE, detect_every=5, min_face_size=20)
    summary = prepare_videos_lib.prepare_videos(prepare_videos_lib.Config(
        dataset="affwild2", root=str(root), out_dir=str(tmp_path / "out"), options=opts,
        progress=False))
    assert (summary.ok, summary.records) == (2, {"train": 2})
    entries = json.loads((tmp_path / "out/manifest.json").read_text())["videos"]
    assert [e["label_samples_past_video"] for e in entries] == [5, 5]
    recs = [parse(r) for r in read_records(tmp_path / "out")["train-00000-of-00001.tfrecord"]]
    assert [c[schema.VIDEO_ID] for c, _ in recs] == [b"affwild2/10-60-320x160_left",
                                                      b"affwild2/10-60-320x160_right"]
    for (_, seq), gray in zip(recs, (True, False)):
        assert seq[schema.FACE_PRESENT].sum() == 20
        want_mask = np.ones(20, np.int64)
        want_mask[2] = 0
        np.testing.assert_array_equal(seq[schema.LABEL_MASK], want_mask)
        np.testing.assert_allclose(seq[schema.VALENCE][want_mask == 1],
                                   values[:20][want_mask == 1], atol=1e-6)
        np.testing.assert_allclose(seq[schema.AROUSAL][want_mask == 1],
                                   -values[:20][want_mask == 1], atol=1e-6)
        crops = np.stack([tf.io.decode_jpeg(j).numpy() for j in seq[schema.FACE_JPEG]])
        colour = np.abs(crops[..., 0].astype(float) - crops[..., 2]).mean()
        assert (colour < 3) if gray else (colour > 10)  # left item: the gray face


# A real face video with face-less frames known in advance: frames 0-14 and 25-34 are the first
# 25 frames of the sample WolfgangLanger_Pexels.mp4 (a face on every frame), 15-24 are black.
GAP_FACE = np.r_[np.ones(15, np.int64), np.zeros(10, np.int64), np.ones(10, np.int64)]


def gap_labels(i):
    return np.round(0.02 * i - 0.3, 4), np.round(0.5 - 0.01 * i, 4)


@pytest.fixture(scope="module")
def gap_root(tmp_path_factory):
    """csv layout: train/wolfgang_gap.avi + .csv (labels on all 35 frames), dev/astronaut.avi."""
    from ast_net import sample_media

    cap = cv2.VideoCapture(sample_media.path("WolfgangLanger_Pexels.mp4"))
    real = []
    while len(real) < 25:
        ok, frame = cap.read()
        assert ok
        real.append(frame)
    cap.release()
    h, w = real[0].shape[:2]
    frames = real[:15] + [np.zeros_like(real[0])] * 10 + real[15:]
    root = tmp_path_factory.mktemp("gap") / "root"
    (root / "train").mkdir(parents=True)
    vw = cv2.VideoWriter(str(root / "train/wolfgang_gap.avi"), cv2.VideoWriter_fourcc(*"MJPG"),
                         FPS, (w, h))
    for frame in frames:  # BGR, as decoded
        vw.write(frame)
    vw.release()
    val, aro = gap_labels(np.arange(35))
    (root / "train/wolfgang_gap.csv").write_text(
        "frame,valence,arousal\n" + "".join(f"{i},{v},{a}\n" for i, (v, a) in
                                            enumerate(zip(val, aro))))
    write_video(root / "dev/astronaut.avi", face_frames(12))  # unlabelled
    return root


@pytest.fixture(scope="module")
def gap_run(gap_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("gap_out1")
    summary = prepare_videos_lib.prepare_videos(prepare_videos_lib.Config(
        dataset="csv", root=str(gap_root), out_dir=str(out),
        options=video_records.Options(face_size=SIZE), progress=False))
    return out, summary


def test_black_frames_of_a_real_face_video_get_no_face_and_no_label(gap_run):
    out, summary = gap_run
    assert (summary.ok, summary.failed, summary.no_face) == (2, 0, 0)
    entries = _manifest_entries(out)
    e = entries["csv/train/wolfgang_gap"]
    assert (e["status"], e["frames"], e["frames_with_face"]) == ("ok", 35, 25)
    assert (e["labelled_frames"], e["usable_frames"], e["length_mismatch"]) == (35, 25, 0)
    recs = [parse(r) for r in read_records(out)["train-00000-of-00001.tfrecord"]]
    assert len(recs) == 1
    ctx, seq = recs[0]
    assert ctx[schema.VIDEO_ID] == b"csv/train/wolfgang_gap" and ctx[schema.NUM_FRAMES] == 35
    np.testing.assert_allclose(seq[schema.TIMESTAMP], np.arange(35) / FPS, atol=1e-3)
    # The tracker loses the face on the first black frame (O-Net sees none in the old box,
    # full detection finds none) and re-detects it on the first face frame: exact, no slack.
    np.testing.assert_array_equal(seq[schema.FACE_PRESENT], GAP_FACE)
    np.testing.assert_array_equal(seq[schema.LABEL_MASK], GAP_FACE)
    val, aro = gap_labels(np.arange(35))  # frame-indexed CSV: line i is frame i
    np.testing.assert_allclose(seq[schema.VALENCE], np.where(GAP_FACE == 1, val, 0), atol=1e-6)
    np.testing.assert_allclose(seq[schema.AROUSAL], np.where(GAP_FACE == 1, aro, 0), atol=1e-6)
    crops = np.stack([tf.io.decode_jpeg(j).numpy() for j in seq[schema.FACE_JPEG]])
    assert crops.shape == (35, SIZE, SIZE, 3)
    assert crops[GAP_FACE == 0].max() <= 2  # the black JPEG
    assert crops[GAP_FACE == 1].mean(axis=(1, 2, 3)).min() > 40  # real face crops


def _children(tag, command_part=None):
    """{pid: parent pid} of the live processes whose environment holds TEST_TAG=tag (and, if
    given, whose command line contains `command_part`)."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if f"TEST_TAG={tag}".encode() not in f.read().split(b"\0"):
                    continue
            if command_part is not None:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if command_part.encode() not in f.read():
                        continue
            with open(f"/proc/{pid}/stat") as f:
                state, ppid = f.read().rsplit(")", 1)[1].split()[:2]
            if state != "Z":
                found[int(pid)] = int(ppid)
        except OSError:
            pass
    return found


@pytest.mark.slow  # Real binaries end to end, over 20 s.
def test_two_beam_workers_and_tilde_paths_give_identical_shards(gap_root, gap_run, tmp_path):
    """--direct_num_workers=2 (two worker processes, children of the driver, gone when it
    ends) writes the same bytes as one worker, and Beam's noise stays off the output; the
    paths are given as `--root=~/...` (a shell does not expand `~` after `--flag=`)."""
    out1, _ = gap_run
    home = gap_root.parent
    tag = f"two-workers-{os.getpid()}-{time.time()}"
    env = dict(os.environ, HOME=str(home), TEST_TAG=tag)
    with open(tmp_path / "stdout", "w") as out, open(tmp_path / "stderr", "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ast_net.pipelines.prepare_videos", "--progress=false",
             "--dataset=csv", "--root=~/root", "--out_dir=~/out_two_workers",
             f"--face_size={SIZE}", "--direct_num_workers=2"], cwd=REPO, env=env, stdout=out,
            stderr=err, text=True)
        workers = set()
        deadline = time.time() + 300
        while proc.poll() is None and time.time() < deadline:
            # Only Beam's SDK workers count: the driver may also run short helpers of its own
            # (ctypes' `ldconfig -p`, ...) that carry the same environment.
            workers |= {pid for pid, ppid in _children(tag, "sdk_worker_main").items()
                        if ppid == proc.pid}
            time.sleep(0.2)
        proc.wait(timeout=5)
    stdout, stderr = (tmp_path / "stdout").read_text(), (tmp_path / "stderr").read_text()
    assert proc.returncode == 0, stderr[-3000:]
    assert len(workers) == 2  # Two SDK worker processes, each the driver's own child ...
    assert _children(tag) == {}  # ... and none outlives it.
    for noise in ("apitools", "sdk harness", "semi_persistent", "Worker:", "INFO"):
        assert noise not in stderr + stdout
    out2 = home / "out_two_workers"
    assert f"2 videos: 2 ok, 0 with no face, 0 failed; records dev: 1, train: 1; " \
           f"manifest {out2 / 'manifest.json'}" in stdout
    assert json.loads((out2 / "manifest.json").read_text())["root"] == str(gap_root)
    shards = read_records(out2)
    assert sorted(shards) == ["dev-00000-of-00001.tfrecord", "train-00000-of-00001.tfrecord"]
    assert shards == read_records(out1)
    for name in shards:
        assert (out2 / name).read_bytes() == (out1 / name).read_bytes()
