"""ast-net-realtime: the newest-frame capture, Ctrl-C on a live run, and bad sources.

The SIGINT test runs the real binary in a subprocess on a sample video with --nopace, waits for
its first once-a-second status line, sends SIGINT and expects exit status 0 (a clean stop is
the normal end of a live session) and a well-formed CSV of the frames done so far.
"""

import os
import re
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pandas as pd
import pytest

from ast_net import errors, outputs, realtime_lib, sample_media

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_parse_source():
    assert realtime_lib.parse_source("0") == ("camera", 0)
    assert realtime_lib.parse_source(" 12 ") == ("camera", 12)
    assert realtime_lib.parse_source("rtsp://cam.local:554/live") == (
        "stream", "rtsp://cam.local:554/live")
    path = sample_media.path("single_face.mp4")
    assert realtime_lib.parse_source(path) == ("file", path)
    assert realtime_lib.source_name("stream", "rtsp://cam.local:554/live") == "cam.local_554_live"
    with pytest.raises(errors.UserError, match="no such video file"):
        realtime_lib.parse_source("/no/such/clip.mp4")


def test_no_pace_file_hands_over_every_frame_in_order():
    live = realtime_lib.LiveSource(sample_media.path("single_face.mp4"), pace=False).start()
    try:
        indices = [index for index, _, rgb, _ in live]
    finally:
        live.close()
    assert indices == list(range(72)) and live.dropped == 0


def test_paced_file_with_a_slow_consumer_drops_frames_and_keeps_the_newest():
    live = realtime_lib.LiveSource(sample_media.path("single_face.mp4"), pace=True).start()
    got = []
    try:
        for index, t_s, _, _ in live:
            got.append((index, t_s))
            time.sleep(0.15)  # 4.5 frame periods at 30 fps.
            if len(got) == 6:
                break
    finally:
        live.close()
    indices = [i for i, _ in got]
    assert indices == sorted(indices) and indices[-1] >= 12  # Skipped ahead, not queued.
    assert live.dropped >= 6
    assert all(t == pytest.approx(i / 30.0) for i, t in got)


def test_camera_that_cannot_be_opened_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ast_net.realtime", "--source=7",
                           f"--out_dir={tmp_path}"], capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: camera 7: cannot be opened (no such device, in use, unreachable or not a video)"]


@pytest.mark.slow  # Real binaries end to end, over 20 s.
def test_sigint_midway_exits_0_with_a_well_formed_csv(tmp_path, stop_realtime_midway):
    status, rest, code = stop_realtime_midway(tmp_path, signal.SIGINT)
    assert status is not None, rest
    assert code == 0, rest
    assert "stopped: interrupted (Ctrl-C)" in rest and "Traceback" not in rest
    # The session's own CSV: <source name>-<UTC start>.csv (see tests/faults for why).
    names = os.listdir(tmp_path)
    assert len(names) == 1 and re.fullmatch(r"WolfgangLanger_Pexels-\d{8}T\d{6}Z\.csv",
                                            names[0]), names  # No temporary file left.
    data = pd.read_csv(tmp_path / names[0])
    assert tuple(data.columns) == outputs.CSV_COLUMNS
    n = len(data)
    assert 0 < n < 472  # Stopped midway.
    assert list(data["frame"]) == list(range(n))  # --nopace: every frame, none dropped.
    assert (data["timestamp_s"] - data["frame"] / 23.976).abs().max() < 1e-3


def test_out_that_is_an_existing_file_is_one_line(tmp_path):
    taken = tmp_path / "live.csv"
    taken.write_text("x\n")
    proc = subprocess.run([sys.executable, "-m", "ast_net.realtime",
                           f"--source={sample_media.path('single_face.mp4')}",
                           f"--out_dir={taken}"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: {taken}: --out_dir exists and is not a directory"]
    # The old name still works, with one deprecation line first.
    proc = subprocess.run([sys.executable, "-m", "ast_net.realtime",
                           f"--source={sample_media.path('single_face.mp4')}", f"--out={taken}"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "warning: --out is deprecated; use --out_dir",
        f"error: {taken}: --out_dir exists and is not a directory"]


def test_sigint_while_the_model_loads_leaves_no_file(tmp_path, realtime_child):
    out = tmp_path / "live"
    proc = realtime_child(f"--source={sample_media.path('single_face.mp4')}",
                          f"--out_dir={out}", "--no-pace")
    try:
        first = proc.stderr.readline()
        assert "loading the model" in first, first
        proc.send_signal(signal.SIGINT)  # TensorFlow takes seconds to import and load.
        rest = proc.stderr.read()
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "writing" not in rest, rest  # Interrupted before the model was ready.
    assert code == 130 and rest.strip().splitlines()[-1] == "interrupted", rest
    assert "Traceback" not in rest
    assert out.is_dir() and os.listdir(out) == []  # No CSV, no .csv.part.


def test_ctrl_c_during_warmup_leaves_no_partial_csv(tmp_path, monkeypatch):
    from ast_net import inference

    real_warmup = inference.Engine.warmup

    def warmup_then_ctrl_c(self, *args, **kwargs):
        real_warmup(self, *args, **kwargs)  # The real warm-up runs; Ctrl-C comes at its end.
        raise KeyboardInterrupt

    monkeypatch.setattr(inference.Engine, "warmup", warmup_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        realtime_lib.run_realtime(sample_media.path("single_face.mp4"), str(tmp_path / "live"),
                                  pace=False)
    assert os.listdir(tmp_path / "live") == []  # Neither the CSV nor its temporary file.


class _RecordingScreen(realtime_lib._Display):
    """The --display window, minus the window: opencv-python-headless has no GUI, so the frames
    that would go to cv2.imshow are kept instead."""

    shown: list = []

    def __init__(self, enabled, title):
        self.enabled, self.title, self.quit = enabled, title, False

    def show(self, bgr):
        self.shown.append(bgr)

    def close(self):
        pass


def test_display_draws_fps_and_latency(tmp_path, monkeypatch, capsys):
    drawn = []  # (frame index, overlay text) of every frame drawn for the screen.
    real_draw = outputs.draw

    models = []  # What the values come from, as drawn on each frame.

    def draw(rgb, pred, extra="", model=""):
        drawn.append((pred.index, extra))
        models.append(model)
        return real_draw(rgb, pred, extra, model=model)

    monkeypatch.setattr(realtime_lib, "_Display", _RecordingScreen)
    monkeypatch.setattr(_RecordingScreen, "shown", [])
    monkeypatch.setattr(outputs, "draw", draw)
    video = sample_media.path("single_face.mp4")
    summary = realtime_lib.run_realtime(video, str(tmp_path), pace=False, display=True,
                                        log_every_s=0.05, batch_frames=4)
    log = capsys.readouterr().err
    shown = _RecordingScreen.shown
    assert summary["processed"] == 72 and len(shown) == len(drawn) == 72
    assert set(models) == {"zero-shot"}  # No --workdir: the window says so, as predict's video.
    pattern = re.compile(r"^\s*(\d+\.\d) frames/s \| latency\s+(\d+) ms$")
    figures = [pattern.match(text) for _, text in drawn]
    assert all(figures), drawn[:3]
    assert all(float(m[1]) > 0 and 0 < int(m[2]) < 60000 for m in figures)
    # The on-screen figures are the log's: each status line's fps and latency were drawn.
    logged = [line.split(" | dropped")[0] for line in log.splitlines() if "| dropped" in line]
    assert logged and set(logged) <= {text for _, text in drawn}
    # And they are really in the pixels: the bottom line runs past the time / frame part.
    cap = cv2.VideoCapture(video)
    source = [cap.read()[1] for _ in range(72)]
    cap.release()
    index, text = drawn[-1]
    h = shown[-1].shape[0]
    scale = max(h / 720.0, 0.4)
    plain = f"t {index / 30.0:7.2f} s  frame {index}"
    (x0, _), _ = cv2.getTextSize(plain + "  ", cv2.FONT_HERSHEY_SIMPLEX, 0.55 * scale, 1)
    (x1, _), _ = cv2.getTextSize(plain + "  " + text, cv2.FONT_HERSHEY_SIMPLEX, 0.55 * scale, 1)
    strip = np.s_[h - 25:h - 5, 8 + x0:8 + x1]
    white = (shown[-1][strip].min(-1) > 200) & (source[index][strip].min(-1) < 150)
    assert white.sum() > 100, white.sum()
