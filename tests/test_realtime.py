"""ast-net-realtime: the newest-frame capture, Ctrl-C on a live run, and bad sources.

The SIGINT test runs the real binary in a subprocess on a sample video with --nopace, waits for
its first once-a-second status line, sends SIGINT and expects exit status 0 (a clean stop is
the normal end of a live session) and a well-formed CSV of the frames done so far.
"""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from ast_net import errors, predict_lib, realtime_lib, sample_media

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
                           f"--out={tmp_path}"], capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: camera 7: cannot be opened (no such device, in use, unreachable or not a video)"]


def test_sigint_midway_exits_0_with_a_well_formed_csv(tmp_path):
    video = sample_media.path("WolfgangLanger_Pexels.mp4")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ast_net.realtime", f"--source={video}", f"--out={tmp_path}",
         "--no-pace", "--max_seconds=120"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=REPO)
    status = None
    try:
        for line in proc.stderr:
            if "frames/s |" in line:
                status = line
                proc.send_signal(signal.SIGINT)
                break
        rest = proc.stderr.read()
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert status is not None, rest
    assert code == 0, rest
    assert "stopped: interrupted (Ctrl-C)" in rest and "Traceback" not in rest
    csv_path = tmp_path / "WolfgangLanger_Pexels.csv"
    data = pd.read_csv(csv_path)
    assert tuple(data.columns) == predict_lib.CSV_COLUMNS
    n = len(data)
    assert 0 < n < 472  # Stopped midway.
    assert list(data["frame"]) == list(range(n))  # --nopace: every frame, none dropped.
    assert (data["timestamp_s"] - data["frame"] / 23.976).abs().max() < 1e-3
    assert not (tmp_path / "WolfgangLanger_Pexels.csv.part").exists()
