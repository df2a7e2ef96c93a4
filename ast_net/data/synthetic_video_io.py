"""Writes a synthetic-video data set in the AVEC 2012 layout (`ast-net-synthetic-videos`).

Layout under `out_dir` (exactly what `layouts.find_items("avec2012", out_dir)` reads):

    {split}/videos/{split}{NNN}.avi                                    split: train|devel|test
    {split}/FC_{split}_labels/labels_continuous_{split}{NNN}_{dim}.dat  dim: arousal|expectancy|
                                                                              power|valence
    labels_truth.csv          session,frame,time_s,valence,arousal: the undelayed latent per frame
    synthetic_manifest.json   every parameter of every video (delay, subject, curves ...)

A `.dat` file has no header and one float per line; line i is time i / 49.979 s, so at the
default --fps 49.979 there is exactly one line per video frame. Every file is written
atomically (`ast_net.atomic`: a hidden temporary file beside it, which the layout scanner
skips, then `os.replace`), so a killed run never leaves a partial file under a final name.
Generation is deterministic: the same seed gives the same frames and the same label files.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Dict, List

import cv2
import numpy as np

from ast_net import atomic, errors
from ast_net import progress as progress_lib
from ast_net.data import face_animation, synthetic_video

CODECS = {"mjpg": ("MJPG", ".avi"), "mp4v": ("mp4v", ".mp4")}
MANIFEST = "synthetic_manifest.json"
TRUTH = "labels_truth.csv"


def video_path(out_dir, split: str, index: int, codec: str = "mjpg") -> pathlib.Path:
    name = synthetic_video.session_name(split, index) + CODECS[codec][1]
    return pathlib.Path(out_dir) / split / "videos" / name


def label_path(out_dir, split: str, index: int, dim: str) -> pathlib.Path:
    session = synthetic_video.session_name(split, index)
    return (pathlib.Path(out_dir) / split / f"FC_{split}_labels"
            / f"labels_continuous_{session}_{dim}.dat")


def _check_args(num_per_split, num_frames, fps, width, height, codec):
    for split, n in num_per_split.items():
        if not 0 <= n <= 999:
            raise errors.UserError(f"--num_{split}: expected 0..999 videos (three-digit "
                                   f"session numbers), got {n}")
    if sum(num_per_split.values()) == 0:
        raise errors.UserError("--num_train/--num_dev/--num_test: expected at least one video")
    if num_frames < 1:
        raise errors.UserError(f"--frames: expected at least 1 frame per video, got {num_frames}")
    if not fps > 0:
        raise errors.UserError(f"--fps: expected a positive frame rate, got {fps}")
    if width < 64 or height < 48 or width % 2 or height % 2:
        raise errors.UserError(f"--width/--height: expected even sizes of at least 64x48, got "
                               f"{width}x{height}")
    if codec not in CODECS:
        raise errors.UserError(f"--codec: expected one of {', '.join(CODECS)}, got {codec!r}")


def _write_video(path: pathlib.Path, frames, spec, codec: str, progress) -> int:
    fourcc, ext = CODECS[codec]
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic.path(path, suffix=ext) as tmp:  # OpenCV picks the container by the extension.
        writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*fourcc), spec.fps,
                                 (spec.width, spec.height))
        if not writer.isOpened():
            raise errors.UserError(f"{path}: OpenCV could not open a {fourcc} video writer for "
                                   f"it")
        count = 0
        try:
            for frame in frames:
                writer.write(frame)
                count += 1
                progress.update(1)
        finally:
            writer.release()
    return count


def _write_text(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, text)


def format_dat(values: np.ndarray) -> str:
    """AVEC 2012 `.dat` text: one float per line, no header."""
    return "".join(f"{v:.6f}\n" for v in values)


def generate(out_dir, seed: int = 0, num_train: int = 6, num_dev: int = 2, num_test: int = 2,
             num_frames: int = 600, fps: float = synthetic_video.LABEL_FPS, width: int = 320,
             height: int = 240, codec: str = "mjpg", progress: bool = True) -> Dict:
    """Renders and writes the data set; returns the manifest (also written as JSON).

    Args:
      out_dir: data set root (created; existing files of the same names are replaced).
      seed: everything is a function of (seed, split, session number).
      num_train / num_dev / num_test: videos per split (sessions train001..., devel001...,
        test001...); every video is a distinct subject.
      num_frames: frames per video.
      fps: video frame rate; labels are always at 49.979 per second over the video's duration.
      width / height: frame size; the face scales with min(width / 320, height / 240).
      codec: "mjpg" (.avi, default) or "mp4v" (.mp4).
      progress: show a tqdm bar of frames written.
    Raises:
      UserError: bad counts, sizes, fps or codec, or a video writer that cannot be opened.
    """
    num_per_split = {"train": num_train, "dev": num_dev, "test": num_test}
    _check_args(num_per_split, num_frames, fps, width, height, codec)
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic.remove_leftovers(out_dir, recursive=True)  # Temporary files of a killed run.
    jobs = [(split, index) for split, n in zip(synthetic_video.SPLITS, num_per_split.values())
            for index in range(1, n + 1)]
    rig = face_animation.FaceRig()
    videos: List[Dict] = []
    truth_rows: List[str] = ["session,frame,time_s,valence,arousal\n"]
    bar = progress_lib.bar(total=len(jobs) * num_frames, unit="frame",
                           desc="synthetic videos", enabled=progress)
    with bar:
        for split, index in jobs:
            spec = synthetic_video.video_spec(seed, split, index, num_frames, fps, width, height)
            bar.set_postfix_str(spec.session)
            path = video_path(out_dir, split, index, codec)
            written = _write_video(path, synthetic_video.frames(spec, rig), spec, codec, bar)
            tracks = synthetic_video.label_tracks(spec)
            labels = {}
            for dim in synthetic_video.DIMENSIONS:
                lp = label_path(out_dir, split, index, dim)
                _write_text(lp, format_dat(tracks[dim]))
                labels[dim] = str(lp.relative_to(out_dir))
            times = synthetic_video.frame_times(spec)
            valence, arousal = synthetic_video.emotion(spec, times)
            truth_rows.extend(f"{spec.session},{k},{times[k]:.6f},{valence[k]:.6f},"
                              f"{arousal[k]:.6f}\n" for k in range(num_frames))
            videos.append({
                "session": spec.session, "split": split, "subject": spec.session,
                "video": str(path.relative_to(out_dir)), "labels": labels,
                "num_frames": written, "num_label_lines": len(tracks["valence"]),
                "annotator_delay_s": spec.annotator_delay_s,
                "annotator_delay_frames": spec.annotator_delay_s * fps,
                "spec": dataclasses.asdict(spec),
            })
    manifest = {
        "generator": "ast_net.data.synthetic_video", "layout": "avec2012", "seed": seed,
        "fps": fps, "label_fps": synthetic_video.LABEL_FPS, "num_frames": num_frames,
        "width": width, "height": height, "codec": codec,
        "emotion_code": ("valence -> mouth corners (up = positive) and mouth opening; arousal ->"
                         " eye opening, brow height, head-motion energy; labels = latent delayed "
                         "by annotator_delay_s + drift + noise; expectancy/power: labels only"),
        "videos": videos,
    }
    _write_text(out_dir / TRUTH, "".join(truth_rows))
    _write_text(out_dir / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return manifest
