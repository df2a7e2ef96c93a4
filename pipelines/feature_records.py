"""One face record of prepare-videos -> the pieces of its feature record, and back.

The Beam job of `extract_features_lib` works record by record in three steps, each a function
here: `split_record` parses a face `SequenceExample`, decodes its JPEG faces and cuts them into
batches of `batch_size` faces (the CNN's inputs, in frame order; a record whose JPEGs do not
all decode is decoded face by face and the bad ones are masked), keeping the record without
its JPEGs; the backbone turns each batch into features (`feature_inference`); `join_record`
puts the features back on their frames (zeros where there is no face) and gives the feature
record (`to_feature_record`: context, timestamps, labels and masks copied field for field).
The batches are the ones the in-process extraction made (every `batch_size` good faces of a
record, in order), so the features are the same numbers.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional

import numpy as np
import tensorflow as tf

from ast_net import errors
from ast_net.data import schema


@dataclasses.dataclass
class Split:
    """A face record taken apart: `stripped` (serialized, without JPEGs), `present` [T] after
    decoding, `frames` [k] the frame of each decoded face, `batches` of uint8 faces
    [<= batch_size, S, S, 3] (frames in order), `bad` undecodable JPEGs."""

    video_id: str
    stripped: bytes
    present: np.ndarray
    frames: np.ndarray
    batches: List[np.ndarray]
    bad: int


def feature_list(ex: tf.train.SequenceExample, key: str):
    return ex.feature_lists.feature_list[key].feature if key in ex.feature_lists.feature_list \
        else None


def _decode_all(jpegs: list) -> np.ndarray:
    """The JPEG faces (all decodable, one size) as uint8 [k, S, S, 3], decoded by tf.data."""
    ds = tf.data.Dataset.from_tensor_slices(jpegs)
    ds = ds.map(schema.decode_face_jpeg, num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    return np.stack(list(ds.as_numpy_iterator()))


def _decode_one_by_one(jpegs: list, size: Optional[int]):
    """Slow path: decodes each JPEG alone; returns (the good faces [k, S, S, 3] or None, good
    mask). A face of another size than the first (or the record's `face_size`) is resized."""
    faces, good = [], np.zeros(len(jpegs), bool)
    for i, jpeg in enumerate(jpegs):
        try:
            face = schema.decode_face_jpeg(jpeg)
        except (tf.errors.InvalidArgumentError, tf.errors.UnknownError):
            continue
        size = size or int(face.shape[0])
        if face.shape[0] != size or face.shape[1] != size:
            face = tf.cast(tf.round(tf.image.resize(face, [size, size])), tf.uint8)
        faces.append(face.numpy())
        good[i] = True
    return (np.stack(faces) if faces else None), good


def split_record(raw: bytes, shard: str, batch_size: int) -> Split:
    """Takes a serialized face record apart (see the module docstring).

    Raises:
      errors.UserError: the record holds features already (the input is a feature folder).
      ValueError: a record that cannot be converted (no JPEG list, flags of another length);
        the message is the reason listed for it.
    """
    ex = tf.train.SequenceExample.FromString(raw)
    video_id = ex.context.feature[schema.VIDEO_ID].bytes_list.value
    video_id = video_id[0].decode() if video_id else "?"
    jpeg_list = feature_list(ex, schema.FACE_JPEG)
    if jpeg_list is None:
        if feature_list(ex, schema.FEATURES) is not None:
            raise errors.UserError(
                f"{shard}: holds feature records already ({video_id}); expected aligned-face "
                "records from ast-net-prepare-videos")
        raise ValueError(f"no {schema.FACE_JPEG}")
    present_list = feature_list(ex, schema.FACE_PRESENT)
    jpegs = [f.bytes_list.value[0] if f.bytes_list.value else b"" for f in jpeg_list]
    n = len(jpegs)
    present = np.array([f.int64_list.value[0] if f.int64_list.value else 0
                        for f in present_list], np.int64) if present_list is not None \
        else np.ones(n, np.int64)
    if len(present) != n:
        raise ValueError(f"{len(present)} face_present flags for {n} frames")
    idx = np.flatnonzero((present > 0) & np.array([len(j) > 0 for j in jpegs], bool))
    faces, bad = None, 0
    if len(idx):
        chosen = [jpegs[i] for i in idx]
        try:
            faces = _decode_all(chosen)
        except (tf.errors.InvalidArgumentError, tf.errors.UnknownError):
            size = ex.context.feature[schema.FACE_SIZE].int64_list.value
            faces, good = _decode_one_by_one(chosen, int(size[0]) if size else None)
            bad = int((~good).sum())
            present = present.copy()
            present[idx[~good]] = 0
            idx = idx[good]
    present[present > 0] = 1
    present[[i for i in range(n) if not len(jpegs[i])]] = 0
    batches = [] if faces is None else [faces[k:k + batch_size]
                                        for k in range(0, len(faces), batch_size)]
    del ex.feature_lists.feature_list[schema.FACE_JPEG]
    return Split(video_id, ex.SerializeToString(), present, idx, batches, bad)


def join_record(split: Split, batch_features: List[np.ndarray], feature_dim: int,
                backbone_name: str) -> bytes:
    """The serialized feature record of `split` given the features of its batches, in order."""
    feats = np.zeros((len(split.present), feature_dim), np.float32)
    if len(split.frames):
        feats[split.frames] = np.concatenate(batch_features, axis=0)
    ex = tf.train.SequenceExample.FromString(split.stripped)
    return to_feature_record(ex, feats, split.present, backbone_name).SerializeToString(
        deterministic=True)  # Map keys sorted: the same bytes on every worker.


def to_feature_record(ex: tf.train.SequenceExample, feats: np.ndarray, present: np.ndarray,
                      backbone_name: str) -> tf.train.SequenceExample:
    """A copy of the face record with JPEGs replaced by features (schema of ast_net.data)."""
    out = tf.train.SequenceExample()
    out.CopyFrom(ex)
    lists = out.feature_lists.feature_list
    for key in (schema.FACE_JPEG, schema.FACE_PRESENT):
        if key in lists:
            del lists[key]
    lists[schema.FEATURES].feature.extend(
        tf.train.Feature(float_list=tf.train.FloatList(value=row)) for row in feats)
    lists[schema.FACE_PRESENT].feature.extend(
        tf.train.Feature(int64_list=tf.train.Int64List(value=[int(p)])) for p in present)
    ctx = out.context.feature
    ctx[schema.FEATURE_DIM].CopyFrom(
        tf.train.Feature(int64_list=tf.train.Int64List(value=[feats.shape[1]])))
    ctx[schema.FACE_SIZE].CopyFrom(tf.train.Feature(int64_list=tf.train.Int64List(value=[0])))
    ctx[schema.BACKBONE].CopyFrom(
        tf.train.Feature(bytes_list=tf.train.BytesList(value=[backbone_name.encode()])))
    return out
