"""Decoding of feature TFRecords: file discovery, validation with clear errors, parsing.

The decoder turns a serialized SequenceExample into tensors (`parse_feature_record`); the clip
sampler (`ast_net.data.clips`) and evaluation build on it. The files of a split are the ones
the data directory's `manifest.json` names under `files` ({split: [names]}, written by
ast-net-extract-features and ast-net-synthetic), so shards of an older run left beside them are
never mixed in; a directory without such a manifest is read as every `{split}-*.tfrecord`.
Before any tf.data graph runs, `validate_files` reads the first record of every
file in plain Python so a missing key or a wrong file type is reported as one line naming the
file and the key, not as a TensorFlow stack trace. A bad record further into a file shows up
when tf.data parses it; every reader of whole files (`iter_videos`, the clip checks, training)
runs under `schema_errors(files, D)`, which turns that TensorFlow error into one line naming
the file, the record (counting from 1), its video id and the key (`find_bad_record`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import json
import os
from typing import Iterator, List, Optional

import numpy as np
import tensorflow as tf

from ast_net import errors
from ast_net.data import schema

MANIFEST = "manifest.json"


def manifest_files(data_dir: str) -> Optional[dict]:
    """{split: [file names]} that `data_dir/manifest.json` names under `files`, or None when
    there is no manifest or it names no files (then readers fall back to the glob)."""
    path = os.path.join(data_dir, MANIFEST)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            files = json.load(f).get("files")
    except (OSError, ValueError) as e:
        raise errors.UserError(f"{path}: not a readable JSON manifest ({e})") from None
    except AttributeError:
        return None
    if not isinstance(files, dict):
        return None
    return {str(split): [str(n) for n in names] for split, names in files.items()
            if isinstance(names, list)}


def list_files(data_dir: str, split: str) -> List[str]:
    """The `split` files of `data_dir`: those its manifest names (`manifest_files`), else the
    sorted `{split}-*.tfrecord`; UserError if there are none or a named one is missing."""
    if not data_dir:
        raise errors.UserError("config.data.data_dir is empty: expected a directory of "
                               "{split}-*.tfrecord feature records")
    if not os.path.isdir(data_dir):
        raise errors.UserError(f"{data_dir}: directory not found (expected feature TFRecords "
                               f"named {split}-00000-of-000NN.tfrecord)")
    named = manifest_files(data_dir)
    if named is not None:
        files = [os.path.join(data_dir, n) for n in named.get(split, [])]
        if not files:
            raise errors.UserError(
                f"{os.path.join(data_dir, MANIFEST)}: names no {split} files (it lists "
                f"{', '.join(f'{s}: {len(n)}' for s, n in sorted(named.items())) or 'none'}); "
                f"a split whose every input shard failed has no features")
        missing = [f for f in files if not os.path.exists(f)]
        if missing:
            raise errors.UserError(f"{missing[0]}: named by {MANIFEST} but missing (re-run "
                                   "ast-net-extract-features or ast-net-synthetic)")
        return files
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


_KINDS = {tf.string: "bytes_list", tf.float32: "float_list", tf.int64: "int64_list"}
# Errors TensorFlow raises when a record does not parse (or a file does not read).
READ_ERRORS = (tf.errors.InvalidArgumentError, tf.errors.DataLossError)


def _values(feature: tf.train.Feature, key: str, dtype) -> tuple:
    """(values, problem) of one tf.train.Feature that should hold `dtype` values."""
    kind = feature.WhichOneof("kind")
    if kind is None:
        return [], ""
    if kind != _KINDS[dtype]:
        return None, f"'{key}' holds {kind} values, expected {_KINDS[dtype]}"
    return getattr(feature, kind).value, ""


def record_problem(raw: bytes, feature_dim: Optional[int] = None) -> str:
    """What is wrong with one serialized feature record, or '' when it matches the schema.

    Checks what `parse_feature_record` needs: a SequenceExample whose required context keys
    are present, every context value of the right type and count, every per-frame list present
    with one value of the right type per frame (D values for `frame/features`), all lists as
    long as `video/num_frames`, and `video/feature_dim` equal to `feature_dim` (when given) and
    > 0.
    """
    try:
        ex = tf.train.SequenceExample.FromString(raw)
    except Exception:  # noqa: BLE001 - any protobuf decode failure is the same user error
        return "not a tf.train.SequenceExample"
    context = ex.context.feature
    for key in schema.REQUIRED_CONTEXT:
        if key not in context:
            return f"missing the context key '{key}'"
    ctx = {}
    for key, spec in schema.CONTEXT_SPEC.items():
        if key not in context:
            continue
        vals, problem = _values(context[key], key, spec.dtype)
        if problem:
            return f"context {problem}"
        if len(vals) != 1:
            return f"context key '{key}' has {len(vals)} values, expected 1"
        ctx[key] = vals[0]
    dim = int(ctx.get(schema.FEATURE_DIM, 0))
    lists = ex.feature_lists.feature_list
    if schema.FEATURES not in lists and schema.FACE_JPEG in lists:
        return "holds face JPEGs, not features; run ast-net-extract-features on it first"
    if dim <= 0:
        return f"'{schema.FEATURE_DIM}' must be > 0, got {dim}"
    if feature_dim is not None and dim != int(feature_dim):
        return (f"'{schema.FEATURE_DIM}' is {dim}, expected {feature_dim} (the feature "
                f"dimension of the other records)")
    num_frames = int(ctx[schema.NUM_FRAMES])
    for key, spec in schema.feature_sequence_spec(dim).items():
        if key not in lists:
            return f"missing the per-frame key '{key}'"
        frames = lists[key].feature
        if len(frames) != num_frames:
            return (f"per-frame key '{key}' has {len(frames)} frames, '{schema.NUM_FRAMES}' "
                    f"says {num_frames}")
        width = int(spec.shape[0]) if spec.shape else 1
        for i, frame in enumerate(frames):
            vals, problem = _values(frame, key, spec.dtype)
            if problem:
                return f"frame {i}: {problem}"
            if len(vals) != width:
                return f"frame {i}: '{key}' has {len(vals)} values, expected {width}"
    return ""


def _video_id(raw: bytes) -> str:
    try:
        feature = tf.train.SequenceExample.FromString(raw).context.feature[schema.VIDEO_ID]
        return feature.bytes_list.value[0].decode("utf-8", "replace")
    except Exception:  # noqa: BLE001 - only used to decorate a message
        return ""


def _record_name(index: int, raw: bytes) -> str:
    vid = _video_id(raw)
    return f"record {index + 1}" + (f" (video '{vid}')" if vid else "")


def find_bad_record(files: List[str], feature_dim: Optional[int] = None) -> str:
    """Reads every record of `files` in plain Python; the first problem as one line naming the
    file, the record (counting from 1), its video id and the key, or '' when all are fine."""
    for path in files:
        index, raw = -1, b""
        try:
            for index, rec in enumerate(tf.data.TFRecordDataset(path).as_numpy_iterator()):
                raw = rec
                problem = record_problem(raw, feature_dim)
                if problem:
                    return f"{path}: {_record_name(index, raw)}: {problem}"
        except READ_ERRORS as e:
            after = f" after {_record_name(index, raw)}" if index >= 0 else ""
            return (f"{path}: unreadable TFRecord data{after} (truncated or corrupt file: "
                    f"{e.message.splitlines()[0][:200]})")
    return ""


@contextlib.contextmanager
def schema_errors(files: List[str], feature_dim: Optional[int] = None):
    """Turns a TensorFlow parse or read error of a record in `files` into a UserError naming
    the file, record and key (found by `find_bad_record`). An error that no record explains
    (a bug, not the data) propagates unchanged."""
    try:
        yield
    except READ_ERRORS as e:
        message = find_bad_record(files, feature_dim)
        if not message:
            raise
        raise errors.UserError(message) from e


def validate_files(files: List[str]) -> int:
    """Checks the first record of each file; returns the feature dimension D shared by all.

    Later records are checked when they are read (see `schema_errors`).

    Raises:
      errors.UserError: empty file, not a SequenceExample, a missing key, face records where
        feature records are expected, or files with different D.
    """
    dims = {}
    for path in files:
        raw = _first_record(path)
        if raw is None:
            raise errors.UserError(f"{path}: empty TFRecord file (expected at least one record)")
        problem = record_problem(raw)
        if problem:
            raise errors.UserError(f"{path}: {_record_name(0, raw)}: {problem}")
        dims[path] = int(schema.describe(raw).get(schema.FEATURE_DIM))
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
    with schema_errors(files, feature_dim):
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
