"""ast-net-predict under real faults: a read-only --out_dir, a full disk, an output that cannot be
written, a plot of thousands of face tracks, its own --annotate outputs in the input folder, a
sideways video, FFmpeg's log lines and progress bars in a log file.

The faults are real: a folder nothing can be written in (chmod 0o555, or for root, to whom
permission bits do not apply, the sysfs folder /sys/kernel, where even root cannot create a
file); ENOSPC from the kernel, by pointing the CSV's temporary file (`ast_net.atomic`'s
`.<name>.<pid>.tmp`, whose pid the test knows) at /dev/full, which fails every write with "No
space left on device"; an output name already taken by a folder, so the final rename fails.
"""

import math
import os
import subprocess
import sys
import textwrap
import threading
import tracemalloc

import cv2
import numpy as np
import pandas as pd
import pytest

from ast_net import atomic, errors, inference, outputs, predict_lib, sample_media

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def engine():
    return inference.load_engine(None, batch_frames=16)


def clip(path, frames, source="single_face.mp4", rotate=None):
    """The first `frames` frames of a sample video as a real mp4v file (optionally rotated)."""
    cap = cv2.VideoCapture(sample_media.path(source))
    fps = cap.get(cv2.CAP_PROP_FPS)
    images = [cap.read()[1] for _ in range(frames)]
    cap.release()
    if rotate is not None:
        images = [cv2.rotate(im, rotate) for im in images]
    h, w = images[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for im in images:
        writer.write(im)
    writer.release()
    return str(path)


def engine_threads():
    return [t.name for t in threading.enumerate() if t.name.startswith("ast_net-")]


def test_read_only_out_is_one_line_exit_2_before_any_work(unwritable_dir):
    proc = subprocess.run(
        [sys.executable, "-m", "ast_net.predict",
         f"--video={sample_media.path('single_face.mp4')}", f"--out_dir={unwritable_dir}"],
        capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: {unwritable_dir}: cannot write in the output directory (Permission denied)"]


@pytest.mark.slow  # Real binaries end to end, over 20 s.
def test_disk_full_mid_video_stops_the_batch_with_one_line_and_no_leftovers(tmp_path, log_lines):
    """The real binary; the CSV of the first video goes to /dev/full (ENOSPC after its first
    8 KiB buffer, about 100 of WolfgangLanger's 472 frames, while the decode and face threads
    run). Before the fix: an OSError traceback and `Fatal Python error: Aborted`, exit 134."""
    videos, out = tmp_path / "videos", tmp_path / "out"
    videos.mkdir()
    out.mkdir()
    os.symlink(sample_media.path("WolfgangLanger_Pexels.mp4"), videos / "a.mp4")
    clip(videos / "b.mp4", 12)
    script = textwrap.dedent(f"""
        import os, sys
        from ast_net import atomic, predict
        os.symlink("/dev/full", atomic.temporary_name({str(out / "a.csv")!r}))
        sys.argv = ["ast-net-predict", "--video={videos}", "--out_dir={out}", "--annotate"]
        predict.run()
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=REPO, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "Fatal Python error" not in proc.stderr
    assert log_lines(proc.stderr) == [
        f"failed: {videos}/a.mp4: cannot write its outputs in {out}: No space left on device",
        f"error: 1 of 2 videos failed: {videos}/a.mp4; the batch stopped ({out}: No space left "
        f"on device), not done: {videos}/b.mp4"]
    assert proc.stdout.strip().splitlines()[-1] == (
        f"done: 0 of 2 videos predicted, 1 failed, 1 not done (stopped: {out}: No space left "
        "on device)")
    # Partial files removed: the CSV's temporary name (here the link to /dev/full), the
    # annotated video's; b.mp4 was not started.
    assert os.listdir(out) == []


def test_disk_full_in_process_stops_every_thread(tmp_path, engine):
    out = tmp_path / "out"
    out.mkdir()
    video = sample_media.path("WolfgangLanger_Pexels.mp4")
    os.symlink("/dev/full", atomic.temporary_name(str(out / "WolfgangLanger_Pexels.csv")))
    before = engine_threads()
    with pytest.raises(errors.UserError, match="1 of 1 videos failed"):
        predict_lib.predict([video], str(out), progress=False, engine=engine)
    assert engine_threads() == before == []  # Decode and face threads joined, none left.
    assert os.listdir(out) == []


def test_an_output_that_cannot_be_written_fails_that_video_and_the_batch_goes_on(
        tmp_path, engine, capsys):
    videos, out = tmp_path / "videos", tmp_path / "out"
    videos.mkdir()
    clip(videos / "a.mp4", 12)
    clip(videos / "b.mp4", 12)
    (out / "a.csv").mkdir(parents=True)  # The final rename of a's CSV fails: EISDIR.
    with pytest.raises(errors.UserError) as info:
        predict_lib.predict([str(videos)], str(out), progress=False, engine=engine)
    assert str(info.value) == f"1 of 2 videos failed: {videos}/a.mp4"  # Not a full disk: on.
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"failed: {videos}/a.mp4: cannot write its outputs in {out}: Is a directory "
                   f"({out}/a.csv)"]
    # a.csv: the folder; b.json: b's sidecar.
    assert sorted(os.listdir(out)) == ["a.csv", "b.csv", "b.json", "b.png"]
    assert os.listdir(out / "a.csv") == []
    data = pd.read_csv(out / "b.csv")
    assert list(data["frame"]) == list(range(12))
    assert engine_threads() == []


def write_tracks(path, frames, ids, fps=25.0):
    """A predictions CSV: face id k on frames [0, length(k)), lengths decreasing with k,
    valence k/100 and arousal -k/100 throughout; rows in frame order as predict writes them."""
    step = frames // (2 * ids)
    lines = [",".join(outputs.CSV_COLUMNS)]
    for f in range(frames):
        t = f"{f / fps:.6f}"
        lines.extend(f"{f},{t},{k},1,{k / 100:.6f},{-k / 100:.6f},1.00,2.00,3.00,4.00"
                     for k in range(ids) if f < frames - step * k)
    path.write_text("\n".join(lines) + "\n")
    return [frames - step * k for k in range(ids)], len(lines) - 1


def plot_peak(csv_path):
    tracemalloc.start()
    try:
        fig = outputs.plot_figure(str(csv_path), "many", chunk_rows=20_000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return fig, peak


def test_plot_of_many_tracks_draws_the_10_longest_with_bounded_points_and_memory(tmp_path):
    import matplotlib.pyplot as plt

    # Memory: four times the rows need no more (chunks of 20,000 rows, 2000 bins, a figure of
    # 10 lines), measured short first (matplotlib's first figure also fills its caches).
    _, short_rows = write_tracks(tmp_path / "short.csv", frames=2000, ids=24)
    fig, peak_short = plot_peak(tmp_path / "short.csv")
    plt.close(fig)
    lengths, rows = write_tracks(tmp_path / "long.csv", frames=8000, ids=24)
    assert rows == sum(lengths) > 3.9 * short_rows and rows > 100_000
    fig, peak_long = plot_peak(tmp_path / "long.csv")
    assert peak_long < 1.25 * peak_short, (peak_long, peak_short)
    try:
        assert fig.axes[0].get_title() == "many (10 longest of 24 face tracks shown)"
        for ax, sign in zip(fig.axes[:2], (1, -1)):
            lines = {ln.get_label(): ln for ln in ax.get_lines()
                     if ln.get_label().startswith("face ")}
            assert sorted(lines) == sorted(f"face {k}" for k in range(10))  # The longest.
            for k in range(10):
                x, y = lines[f"face {k}"].get_xdata(), lines[f"face {k}"].get_ydata()
                # 8000 frames in 2000 points: point j is the mean of frames 4j .. 4j+3.
                assert len(x) == len(y) == outputs.MAX_PLOT_POINTS == 2000
                np.testing.assert_allclose(x, (4 * np.arange(2000) + 1.5) / 25.0, atol=1e-6)
                present = math.ceil(lengths[k] / 4)
                np.testing.assert_allclose(y[:present], sign * k / 100, atol=1e-9)
                assert np.isnan(y[present:]).all()  # The line ends with its track.
    finally:
        plt.close(fig)


def test_summary_line_names_many_face_ids_in_a_few_words():
    assert predict_lib.format_ids(range(400)) == "0-399 (400)"
    assert predict_lib.format_ids([0, 1, 2]) == "[0, 1, 2]"
    assert predict_lib.format_ids([0, 2, 5, 7, 9, 11, 13, 15, 17, 19, 977]) == (
        "0, 2, 5, 7, 9, ... 977 (11)")


def test_a_sideways_video_gets_one_warning_an_upright_one_none(tmp_path, engine, capsys):
    # The 72 frames of single_face.mp4 turned 90 degrees (no rotation tag in an mp4v file).
    sideways = clip(tmp_path / "sideways.mp4", 72, rotate=cv2.ROTATE_90_CLOCKWISE)
    upright = clip(tmp_path / "upright.mp4", 72)
    results = predict_lib.predict([str(tmp_path / "*.mp4")], str(tmp_path / "out"),
                                  progress=False, engine=engine)
    err = capsys.readouterr().err.strip().splitlines()
    assert [r.path for r in results] == [sideways, upright]
    assert len(err) == 1 and err[0].startswith(f"warning: {sideways}: ")
    assert "rotate it first" in err[0]
    assert results[0].warning == err[0] and results[1].warning is None


def test_second_run_over_the_same_folder_skips_annotated_outputs_quietly(tmp_path, log_lines):
    """The real binary, stderr a pipe as in a log file: --out_dir is the input folder, which
    already holds a.mp4's annotated copy and a damaged file. Only a.mp4 and bad.mp4 are
    inputs; FFmpeg's `moov atom not found` and tqdm's bar do not reach the log."""
    folder = tmp_path / "videos"
    folder.mkdir()
    clip(folder / "a.mp4", 12)
    clip(folder / "a_annotated.mp4", 12)  # What an earlier --annotate run left.
    (folder / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    proc = subprocess.run(
        [sys.executable, "-m", "ast_net.predict", f"--video={folder}", f"--out_dir={folder}",
         "--annotate"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert log_lines(proc.stderr) == [
        f"failed: {folder}/bad.mp4: cannot be opened as a video (not a format OpenCV/FFmpeg "
        "can read, or the file is damaged)",
        f"error: 1 of 2 videos failed: {folder}/bad.mp4"]
    out = proc.stdout.strip().splitlines()
    assert out[0] == (f"skipped 1 _annotated.mp4 file(s), outputs of --annotate "
                      f"({folder}/a_annotated.mp4); name one explicitly to predict it")
    assert out[-1] == "done: 1 of 2 videos predicted, 1 failed"
    assert sorted(os.listdir(folder)) == ["a.csv", "a.json", "a.mp4", "a.png",
                                          "a_annotated.mp4", "bad.mp4"]


def test_a_reader_closed_under_its_consumer_ends_its_iteration(tmp_path):
    """The face thread reads frames while the caller closes the reader on an error: before,
    its next() waited forever on the emptied prefetch queue, a thread that never ended."""
    from ast_net.faces import video as video_lib

    reader = video_lib.iter_frames(sample_media.path("WolfgangLanger_Pexels.mp4"), prefetch=1)
    next(reader)
    reader.close()  # The decode thread stops; at most one frame is left in its queue.
    consumer = threading.Thread(target=lambda: list(reader), daemon=True)
    consumer.start()
    consumer.join(timeout=10)
    assert not consumer.is_alive()
