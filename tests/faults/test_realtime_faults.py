"""ast-net-realtime under real faults: two sessions on one source, SIGTERM to the real binary, a
read-only --out, a CSV write that fails in the middle of a session.

Before these fixes the CSV name depended only on the source (every session on camera 0 rewrote
`camera0.csv`; another `clip.mp4` replaced the first one's CSV), SIGTERM killed the process
with its rows in a `.part` file the next run truncated, and a read-only --out_dir was a traceback.
Read-only is real: chmod 0o555, or for root (whom permission bits do not stop) the sysfs
folder /sys/kernel, where even root cannot create a file.
"""

import calendar
import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import threading

import pandas as pd
import pytest

from ast_net import errors, inference, outputs, realtime_lib, sample_media

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SESSION = r"-\d{8}T\d{6}Z(-\d+)?\.csv"


@pytest.fixture(scope="module")
def engine():
    return inference.load_engine(None, batch_frames=4)


def test_session_names_carry_the_utc_start_and_never_reuse_a_name(tmp_path):
    start = calendar.timegm((2026, 12, 4, 18, 15, 0))  # 2026-12-04 18:15:00 UTC.
    first = realtime_lib.session_csv(str(tmp_path), "camera0", start)
    assert first == str(tmp_path / "camera0-20261204T181500Z.csv")
    open(first, "w").close()
    second = realtime_lib.session_csv(str(tmp_path), "camera0", start)
    assert second == str(tmp_path / "camera0-20261204T181500Z-2.csv")


def test_two_sessions_on_sources_of_the_same_name_both_keep_their_csv(tmp_path, engine):
    # The reproduction: clip.mp4 from two folders, two different videos.
    a, b, out = tmp_path / "a", tmp_path / "b", tmp_path / "live"
    a.mkdir()
    b.mkdir()
    shutil.copy(sample_media.path("single_face.mp4"), a / "clip.mp4")  # 72 frames, a face.
    shutil.copy(sample_media.path("no_face.mp4"), b / "clip.mp4")  # 95 frames, no face.
    first = realtime_lib.run_realtime(str(a / "clip.mp4"), str(out), pace=False, engine=engine)
    second = realtime_lib.run_realtime(str(b / "clip.mp4"), str(out), pace=False,
                                       engine=engine)
    assert first["csv"] != second["csv"]
    assert sorted(os.listdir(out)) == sorted(os.path.basename(s["csv"])
                                             for s in (first, second))
    for summary in (first, second):
        assert re.fullmatch("clip" + SESSION, os.path.basename(summary["csv"]))
    one, two = pd.read_csv(first["csv"]), pd.read_csv(second["csv"])
    assert list(one["frame"]) == list(range(72)) and (one["face_present"] == 1).all()
    assert list(two["frame"]) == list(range(95)) and (two["face_present"] == 0).all()


def test_sigterm_ends_a_session_like_ctrl_c_with_a_complete_csv(tmp_path, stop_realtime_midway):
    status, rest, code = stop_realtime_midway(tmp_path, signal.SIGTERM)
    assert status is not None, rest
    assert code == 0, rest
    assert "stopped: terminated (SIGTERM)" in rest and "Traceback" not in rest
    names = os.listdir(tmp_path)  # The CSV under its final name, no temporary file.
    assert len(names) == 1 and re.fullmatch("WolfgangLanger_Pexels" + SESSION, names[0]), names
    text = (tmp_path / names[0]).read_text()
    assert text.endswith("\n")  # Flushed to its last row.
    data = pd.read_csv(tmp_path / names[0])
    assert tuple(data.columns) == outputs.CSV_COLUMNS
    n = len(data)
    assert 0 < n < 472 and list(data["frame"]) == list(range(n))  # Every frame up to the stop.
    assert data[["valence", "arousal"]].notna().all().all()
    assert f"{n} frames processed" in rest


def test_read_only_out_is_one_line_exit_2(unwritable_dir):
    proc = subprocess.run(
        [sys.executable, "-m", "ast_net.realtime",
         f"--source={sample_media.path('single_face.mp4')}", f"--out_dir={unwritable_dir}"],
        capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: {unwritable_dir}: cannot write in the output directory (Permission denied)"]


def test_csv_write_failing_mid_session_is_one_error_no_file_no_thread(tmp_path, monkeypatch,
                                                                     engine):
    # ENOSPC from the CSV's write after 20 frames (the session's file name carries its start
    # time, so /dev/full cannot be put in its place beforehand as in the predict tests).
    real_write = outputs.CsvWriter.write

    def write(self, pred):
        if self.rows >= 20:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(self, pred)

    monkeypatch.setattr(outputs.CsvWriter, "write", write)
    out = tmp_path / "live"
    with pytest.raises(errors.UserError) as info:
        realtime_lib.run_realtime(sample_media.path("single_face.mp4"), str(out), pace=False,
                                  engine=engine)
    message = str(info.value)
    assert re.fullmatch(rf"{out}/single_face{SESSION}: cannot be written \(No space left on "
                        r"device\); the session stopped after 20 frames and its partial CSV "
                        "was removed", message), message
    assert os.listdir(out) == []
    assert [t.name for t in threading.enumerate() if t.name.startswith("ast_net-")] == []
