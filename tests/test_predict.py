"""ast-net-predict on real sample media: CSV, plot, annotated video, batches, checkpoints, errors.

Ground truth comes from outside the code under test: frame counts and fps from OpenCV reading
the file directly; what single_face.mp4 shows was checked by eye (neutral for its first ~0.5 s,
then a broad smile that lasts to the end); the checkpoint oracle is the restored Keras model run
on windows cut by hand from the engine's features.
"""

import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from ast_net import errors, inference, outputs, predict_lib, sample_media, train_lib, training_run
from ast_net.configs import debug
from ast_net.data import schema

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def count_frames(path):
    cap = cv2.VideoCapture(path)
    fps, n = cap.get(cv2.CAP_PROP_FPS), 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n, fps


@pytest.fixture(scope="module")
def engine():
    """The zero-shot engine, loaded once (each predict() call would otherwise load its own)."""
    return inference.load_engine(None, batch_frames=16)


@pytest.fixture(scope="module")
def single_face(tmp_path_factory, engine):
    out = str(tmp_path_factory.mktemp("predict"))
    path = sample_media.path("single_face.mp4")
    results = predict_lib.predict([path], out, annotate=True, progress=False, engine=engine)
    return path, out, results[0]


def test_single_face_csv_has_one_row_per_frame_one_face_and_timestamps(single_face):
    path, out, result = single_face
    frames, fps = count_frames(path)
    assert frames == 72
    data = pd.read_csv(os.path.join(out, "single_face.csv"))
    assert tuple(data.columns) == outputs.CSV_COLUMNS
    assert len(data) == frames and list(data["frame"]) == list(range(frames))
    np.testing.assert_allclose(data["timestamp_s"], np.arange(frames) / fps, atol=1e-6)
    assert set(data["face_id"]) == {0} and (data["face_present"] == 1).all()
    for col in ("valence", "arousal", "box_x", "box_y", "box_w", "box_h"):
        assert np.isfinite(data[col]).all(), col
    assert data[["valence", "arousal"]].abs().max().max() <= 1.0
    assert result.face_ids == (0,) and result.error is None


def test_single_face_zero_shot_valence_rises_with_the_smile(single_face):
    _, out, _ = single_face
    v = pd.read_csv(os.path.join(out, "single_face.csv"))["valence"].to_numpy()
    neutral, smile = v[:12].mean(), v[36:66].mean()  # 0-0.4 s vs 1.2-2.2 s.
    assert smile > neutral + 0.3, (neutral, smile)


def test_single_face_plot_and_annotated_video(single_face):
    path, out, result = single_face
    png = cv2.imread(result.plot_path)
    assert png is not None and png.shape[0] > 300 and png.std() > 5
    frames, _ = count_frames(result.video_path)
    assert frames == 72
    assert not [n for n in os.listdir(out) if ".part" in n]  # Every output renamed.


def test_no_face_video_keeps_every_frame_and_still_plots(tmp_path, engine):
    path = sample_media.path("no_face.mp4")
    results = predict_lib.predict([path], str(tmp_path), progress=False, engine=engine)
    data = pd.read_csv(results[0].csv_path)
    assert len(data) == count_frames(path)[0] > 0
    assert (data["face_present"] == 0).all() and data["face_id"].isna().all()
    assert data["valence"].isna().all() and data["timestamp_s"].is_monotonic_increasing
    assert os.path.getsize(results[0].plot_path) > 0


def test_missing_video_is_one_line_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ast_net.predict", "--video=/no/such.mp4",
                           f"--out_dir={tmp_path}"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: /no/such.mp4: cannot be opened as a video (no such file)"
    assert "Traceback" not in proc.stderr


def test_out_that_is_an_existing_file_is_one_line_exit_2(tmp_path):
    taken = tmp_path / "results.txt"
    taken.write_text("not a directory\n")
    proc = subprocess.run([sys.executable, "-m", "ast_net.predict",
                           f"--video={sample_media.path('single_face.mp4')}", f"--out_dir={taken}",
                           "--noprogress"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: {taken}: --out_dir exists and is not a directory"]
    assert taken.read_text() == "not a directory\n"  # Left alone.


def test_out_under_a_file_or_unwritable_is_a_user_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(errors.UserError, match=r"/file/sub: cannot create the output directory"):
        outputs.ensure_out_dir(str(tmp_path / "file" / "sub"))
    assert outputs.ensure_out_dir(str(tmp_path / "a" / "b")) == str(tmp_path / "a" / "b")
    assert (tmp_path / "a" / "b").is_dir()


def test_directory_with_a_corrupt_file_does_the_rest_and_fails_at_the_end(tmp_path, engine,
                                                                            capsys):
    # predict() raising UserError is what makes the binary print one line and exit 2
    # (errors.report_user_errors; see test_missing_video_is_one_line_exit_2).
    videos = tmp_path / "videos"
    videos.mkdir()
    cap = cv2.VideoCapture(sample_media.path("single_face.mp4"))
    writer = cv2.VideoWriter(str(videos / "good.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30.0,
                             (640, 360))
    for _ in range(12):
        writer.write(cap.read()[1])
    writer.release()
    (videos / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    out = tmp_path / "out"
    with pytest.raises(errors.UserError, match="1 of 2 videos failed: .*bad.mp4"):
        predict_lib.predict([str(videos)], str(out), progress=False, engine=engine)
    captured = capsys.readouterr()
    failed = [line for line in captured.err.splitlines() if line.startswith("failed: ")]
    assert len(failed) == 1 and "bad.mp4: cannot be opened as a video" in failed[0]
    assert "1 of 2 videos predicted, 1 failed" in captured.out
    data = pd.read_csv(out / "good.csv")
    assert len(data) == 12 and (data["face_present"] == 1).all()
    assert not (out / "bad.csv").exists() and (out / "good.png").exists()


def test_expand_inputs_glob_and_empty_directory(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "b.mov").write_bytes(b"x")
    (tmp_path / "notes.txt").write_bytes(b"x")
    assert predict_lib.expand_inputs(str(tmp_path)) == [str(tmp_path / "a.mp4"),
                                                        str(tmp_path / "b.mov")]
    assert predict_lib.expand_inputs(str(tmp_path / "*.mov")) == [str(tmp_path / "b.mov")]
    assert predict_lib.output_names(["x/a.mp4", "y/a.mov", "c.mp4"]) == ["a.mp4", "a.mov", "c"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(errors.UserError, match="holds no video"):
        predict_lib.expand_inputs(str(tmp_path / "empty"))


# ----- with an AST-Net checkpoint -------------------------------------------------------------

def write_features(path, backbone, dim, videos=3, frames=60):
    rng = np.random.default_rng(1)
    with tf.io.TFRecordWriter(str(path)) as w:
        for v in range(videos):
            t = np.arange(frames)
            feats = rng.normal(size=(frames, dim)).astype(np.float32)
            va = np.stack([np.tanh(feats[:, 0]), np.tanh(feats[:, 1])], -1)
            ex = schema.make_sequence_example(
                video_id=f"v{v}", fps=30.0, timestamps=t / 30.0, face_present=np.ones(frames),
                valence=va[:, 0], arousal=va[:, 1], label_mask=np.ones(frames), features=feats,
                split="train", backbone=backbone)
            w.write(ex.SerializeToString())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    data = tmp_path_factory.mktemp("features")
    write_features(data / "train-00000-of-00001.tfrecord", "mini_xception", 128)
    config = debug.get_config()
    config.data.data_dir = str(data)
    config.data.eval_split = ""
    config.train.num_steps = 3
    config.train.steps_per_loop = 3
    config.train.checkpoint_every = 3
    work = str(tmp_path_factory.mktemp("work"))
    train_lib.train_and_evaluate(config, work)
    return work


@pytest.fixture(scope="module")
def ast_engine(workdir):
    return inference.load_engine(workdir, keep_features=True, batch_frames=7, detect_every=10)


def test_engine_with_checkpoint_equals_the_lstm_on_the_same_window_offline(workdir, ast_engine):
    model, config, _, _ = training_run.load_temporal(workdir)
    n, step = config.data.clip_length, config.data.frame_step  # 10, 3
    engine = ast_engine
    engine.reset()
    reader = predict_lib.video_lib.iter_frames(sample_media.path("single_face.mp4"))
    preds = list(engine.run([f for _, f in zip(range(36), reader)]))
    assert all([f.track_id for f in p.faces] == [0] for p in preds)
    feats = np.stack([p.faces[0].feature for p in preds])
    raw = []
    for t in range(36):
        idx = [i for i in range(t - (n - 1) * step, t + 1, step) if i >= 0]
        raw.append(model(feats[idx][None], training=False).numpy()[0, -1])
    for t in (0, 1, 5, 20, 27, 35):
        # The phases merged (config.output, ast_net/windows.py): mean of the raw values of
        # frames t - Δt + 1 .. t (those >= 0), clipped to [-1, 1].
        expected = np.clip(np.mean(raw[max(0, t - step + 1):t + 1], axis=0), -1.0, 1.0)
        got = [preds[t].faces[0].valence, preds[t].faces[0].arousal]
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=f"frame {t}")


def test_predict_runs_with_a_checkpoint(workdir, ast_engine, tmp_path, single_face):
    results = predict_lib.predict([sample_media.path("single_face.mp4")], str(tmp_path),
                                  checkpoint=workdir, progress=False, engine=ast_engine)
    data = pd.read_csv(results[0].csv_path)
    assert len(data) == 72 and np.isfinite(data[["valence", "arousal"]]).all().all()
    # The sidecar names the checkpoint and the step restored (train ran 3 steps).
    record = json.loads(open(results[0].sidecar_path).read())
    assert record["model"]["kind"] == "checkpoint" and record["model"]["step"] == 3
    assert record["model"]["checkpoint"] == os.path.abspath(workdir)
    assert (record["model"]["clip_length"], record["model"]["frame_step"]) == (10, 3)
    # The LSTM head's CSV still has the mini-Xception's 7 probabilities (features and
    # probabilities from one pass): those of the zero-shot run on the same crops.
    _, out, _ = single_face
    zero_shot = pd.read_csv(os.path.join(out, "single_face.csv"))
    np.testing.assert_allclose(data[list(outputs.EMOTION_COLUMNS)],
                               zero_shot[list(outputs.EMOTION_COLUMNS)], atol=2e-6)


def test_checkpoint_from_another_config_is_one_clear_error(workdir, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(workdir, other)
    info_path = other / "model_info.json"
    info = json.loads(info_path.read_text())
    info["backbone"] = "synthetic"
    info_path.write_text(json.dumps(info))
    with pytest.raises(errors.UserError, match="checkpoint from another config"):
        inference.load_engine(str(other))
    with pytest.raises(errors.UserError, match="checkpoint from another config"):
        inference.load_engine(workdir, backbone="vgg16")
    with pytest.raises(errors.UserError, match="not an ast-net-train work directory"):
        inference.load_engine(str(tmp_path))


# ----- several faces: stable ids, the plot, the annotated video -------------------------------

SHIFT_PX = 2  # The multi-face video pans the still photo 2 px to the right per frame.


@pytest.fixture(scope="module")
def multi_face(tmp_path_factory, engine):
    """A real 16-frame mp4v video of the sample multi_face.jpg (5 people), panned SHIFT_PX px
    per frame, run through predict with --annotate."""
    root = tmp_path_factory.mktemp("multi")
    bgr = cv2.imread(sample_media.path("multi_face.jpg"))[:666]  # mp4v wants even sides.
    h, w = bgr.shape[:2]
    path = str(root / "multi.mp4")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (w, h))
    frames = []
    for t in range(16):
        shift = np.float32([[1, 0, SHIFT_PX * t], [0, 1, 0]])
        frames.append(cv2.warpAffine(bgr, shift, (w, h), borderMode=cv2.BORDER_REPLICATE))
        writer.write(frames[-1])
    writer.release()
    out = str(root / "out")
    result = predict_lib.predict([path], out, annotate=True, progress=False, engine=engine)[0]
    return path, bgr, result


def test_several_faces_keep_their_ids_and_boxes(multi_face, engine):
    path, still, result = multi_face
    data = pd.read_csv(result.csv_path)
    assert (data["face_present"] == 1).all() and len(data) == 16 * 5
    ids = sorted(data["face_id"].astype(int).unique())
    assert len(ids) >= 4 and result.face_ids == tuple(ids)
    # Oracle: the faces of the still photo, found by a full detection of the photo itself (not
    # of the video), moved by the known pan.
    truth = np.array([(x + bw / 2, y + bh / 2) for x, y, bw, bh in
                      (f.box for f in engine.detector.detect(still[:, :, ::-1].copy()))])
    assert len(truth) == 5
    assert min(np.hypot(*(a - b)) for i, a in enumerate(truth) for b in truth[i + 1:]) > 100
    matched = []
    for face_id in ids:
        rows = data[data["face_id"] == face_id].sort_values("frame")
        assert list(rows["frame"]) == list(range(16)), face_id  # Tracked on every frame.
        centres = np.stack([rows["box_x"] + rows["box_w"] / 2 - SHIFT_PX * rows["frame"],
                            rows["box_y"] + rows["box_h"] / 2], -1)
        k = int(np.argmin(np.hypot(*(truth - centres[0]).T)))
        matched.append(k)
        # Every frame: the box is on the same person (undoing the pan), within a few px; two
        # people are > 100 px apart, so a swap of ids would be far off.
        err = np.hypot(*(centres - truth[k]).T)
        assert err.max() < 8.0, (face_id, err.round(1))
    assert len(set(matched)) == len(ids)  # One person per id.


def test_several_faces_plot_has_one_line_per_face(multi_face):
    _, _, result = multi_face
    data = pd.read_csv(result.csv_path)
    png = cv2.imread(result.plot_path)
    assert png is not None and png.shape[0] > 300
    fig = outputs.plot_figure(result.csv_path, "multi")  # What plot_csv saved as the PNG.
    try:
        for ax, dim in zip(fig.axes, ("valence", "arousal")):
            lines = {ln.get_label(): ln for ln in ax.get_lines()
                     if ln.get_label().startswith("face ")}
            assert sorted(lines) == [f"face {k}" for k in result.face_ids]
            for k in result.face_ids:
                rows = data[data["face_id"] == k].sort_values("frame")
                np.testing.assert_allclose(lines[f"face {k}"].get_xdata(), rows["timestamp_s"])
                np.testing.assert_allclose(lines[f"face {k}"].get_ydata(), rows[dim])
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_annotated_video_has_boxes_drawn_and_the_rest_unchanged(multi_face):
    path, _, result = multi_face
    data = pd.read_csv(result.csv_path)
    source, annotated = cv2.VideoCapture(path), cv2.VideoCapture(result.video_path)
    frames = 0
    while True:
        ok_a, a = source.read()
        ok_b, b = annotated.read()
        if not (ok_a and ok_b):
            break
        assert ok_a == ok_b
        a, b = a.astype(int), b.astype(int)
        h, w = a.shape[:2]
        diff = np.abs(a - b).max(-1)
        far = np.ones((h, w), bool)
        far[-50:] = False  # The time / frame line at the bottom.
        for r in data[data["frame"] == frames].itertuples():
            x, y, bw, bh = (int(round(v)) for v in (r.box_x, r.box_y, r.box_w, r.box_h))
            # The top edge of the box: green (BGR 0, 220, 0) drawn over the photo.
            edge_a, edge_b = a[y, x + 5:x + bw - 5], b[y, x + 5:x + bw - 5]
            assert np.abs(edge_b - edge_a).max(-1).mean() > 60, r.face_id
            green = edge_b.mean(0)
            assert green[1] > 170 and green[0] < 60 and green[2] < 60, green
            # Box, id / values label above it (about 230 px wide) and a margin are not "far".
            far[max(y - 50, 0):y + bh + 30, max(x - 30, 0):x + bw + 260] = False
        assert far.mean() > 0.25
        # Far from any drawing, only the mp4v re-encoding differs.
        assert diff[far].mean() < 5 and np.percentile(diff[far], 99) < 25, frames
        frames += 1
    assert frames == 16
