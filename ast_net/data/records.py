"""Decoding of feature TFRecords: file discovery, validation with clear errors, parsing.

The decoder turns a serialized SequenceExample into tensors (`parse_feature_record`); the clip
sampler (`ast_net.data.clips`) and evaluation build on it. Files are `{split}-*.tfrecord` in a
data directory. Before any tf.data graph runs, `validate_files` reads the first record of every
file in plain Python so a missing key or a wrong file type is reported as one line naming the
file and the key, not as a TensorFlow stack trace.
"""

from __future__ import annotations

import dataclasses
import glob
import os
from typing import Iterator, List

import numpy as np
import tensorflow as tf

from ast_net import errors
from ast_net.data import schema


def list_files(data_dir: str, split: str) -> List[str]:
    """Sorted `{split}-*.tfrecord` files of `data_dir`; UserError if there are none."""
    if not data_dir:
        raise errors.UserError("config.data.data_dir is empty: expected a directory of "
                               "{split}-*.tfrecord feature records")
    if not os.path.isdir(data_dir):
        raise errors.UserError(f"{data_dir}: directory not found (expected feature TFRecords "
                               f"named {split}-00000-of-000NN.tfrecord)")
    files = sorted(glob.glob(os.path.join(data_dir, f"{split}-*.tfrecord")))
    if not files:
        raise errors.UserError(f"{data_dir}: no {split}-*.tfrecord files (expected feature "
                               f"TFRecords written by ast-net-synthetic or extract_features)")
    return files


def _first_record(path: str) -> bytes | None:
    try:
        for raw in tf.data.TFRecordDataset(path).take(1):
            return raw.numpy()
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
        first = e.message.splitlines()[0]
        raise errors.UserError(f"{path}: not a readable TFRecord file ({first})")
    return None


def validate_files(files: List[str]) -> int:
    """Checks the first record of each file; returns the feature dimension D shared by all.

    Raises:
      errors.UserError: empty file, not a SequenceExample, a missing key, face records where
        feature records are expected, or files with different D.
    """
    dims = {}
    for path in files:
        raw = _first_record(path)
        if raw is None:
            raise errors.UserError(f"{path}: empty TFRecord file (expected at least one record)")
        try:
            info = schema.describe(raw)
        except Exception:  # noqa: BLE001 - any protobuf decode failure is the same user error
            raise errors.UserError(f"{path}: records are not tf.train.SequenceExample")
        for key in schema.REQUIRED_CONTEXT:
            if key not in info:
                raise errors.UserError(f"{path}: record is missing the context key '{key}'")
        for key in schema.REQUIRED_SEQUENCE + (schema.FEATURES,):
            if key not in info["_lists"]:
                if key == schema.FEATURES and schema.FACE_JPEG in info["_lists"]:
                    raise errors.UserError(
                        f"{path}: holds face JPEGs, not features; run "
                        f"ast-net-extract-features on it first")
                raise errors.UserError(f"{path}: record is missing the per-frame key '{key}'")
        dim = int(info.get(schema.FEATURE_DIM, 0) or 0)
        if dim <= 0:
            raise errors.UserError(f"{path}: '{schema.FEATURE_DIM}' must be > 0, got {dim}")
        dims[path] = dim
    if len(set(dims.values())) > 1:
        raise errors.UserError(f"feature files disagree on the feature dimension: {dims}")
    return next(iter(dims.values()))


def parse_feature_record(serialized, feature_dim: int):
    """Decodes one feature record into a dict of tensors.

    Returns:
      dict with video_id [], fps [], first_frame [], features [T, D], labels [T, 2]
      (valence, arousal), mask [T] (float: face present AND label valid), timestamp [T].
    """
    context, seq = tf.io.parse_single_sequence_example(
        serialized, context_features=schema.CONTEXT_SPEC,
        sequence_features=schema.feature_sequence_spec(feature_dim))
    mask = tf.cast(seq[schema.LABEL_MASK] > 0, tf.float32) * tf.cast(
        seq[schema.FACE_PRESENT] > 0, tf.float32)
    return {
        "video_id": context[schema.VIDEO_ID],
        "fps": context[schema.FPS],
        "first_frame": context[schema.FIRST_FRAME],
        "features": seq[schema.FEATURES],
        "labels": tf.stack([seq[k] for k in schema.LABEL_KEYS], axis=-1),
        "mask": mask,
        "timestamp": seq[schema.TIMESTAMP],
    }


@dataclasses.dataclass
class Video:
    """One whole video in memory (chunks joined), for evaluation and plots."""
    video_id: str
    fps: float
    features: np.ndarray   # [T, D]
    labels: np.ndarray     # [T, 2]
    mask: np.ndarray       # [T] float
    timestamp: np.ndarray  # [T]


def iter_videos(files: List[str], feature_dim: int) -> Iterator[Video]:
    """Yields whole videos, joining the chunks of a long video in frame order."""
    ds = tf.data.TFRecordDataset(files).map(lambda r: parse_feature_record(r, feature_dim))
    chunks: dict = {}
    for ex in ds.as_numpy_iterator():
        vid = ex["video_id"].decode("utf-8")
        chunks.setdefault(vid, []).append(ex)
    for vid in sorted(chunks):
        parts = sorted(chunks[vid], key=lambda e: int(e["first_frame"]))
        yield Video(
            video_id=vid,
            fps=float(parts[0]["fps"]),
            features=np.concatenate([p["features"] for p in parts]),
            labels=np.concatenate([p["labels"] for p in parts]),
            mask=np.concatenate([p["mask"] for p in parts]),
            timestamp=np.concatenate([p["timestamp"] for p in parts]),
        )
