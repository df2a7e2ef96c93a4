"""Aligned-face TFRecords -> per-frame attribute-CNN feature TFRecords (the paper's stage 2 input).

Input: a directory of face records as `ast-net-prepare-videos` writes them
(`{split}-00000-of-000NN.tfrecord`, one `SequenceExample` per video or chunk, JPEG faces in
`frame/face_jpeg`) and its `manifest.json`. Output: the same file names in `out_dir`, each
record copied field for field (context, timestamps, labels, masks, face flags) with the JPEG
list replaced by `frame/features` [T, D] and the context saying `feature_dim`, `face_size` 0
and `backbone`. Frames without a face (`face_present` 0) get zero features and no CNN time; a
JPEG that does not decode is treated as a frame without a face and counted.

Frames are decoded by tf.data in parallel and go through the backbone in batches
(`Backbone.features_function`, optionally XLA-compiled). Each output shard is written to a
hidden temporary name and renamed when complete, so a re-run skips finished shards and never
sees a partial one. `out_dir/manifest.json` is the input manifest plus a `features` section
(backbone, weights, D, per-shard counts), rewritten atomically after every shard.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Optional

import numpy as np
import tensorflow as tf
import tqdm

from ast_net import errors
from ast_net.data import schema
from ast_net.models import backbones

MANIFEST = "manifest.json"


@dataclasses.dataclass
class Summary:
    """What a run did."""
    shards_written: int
    shards_skipped: int
    videos: int
    frames: int
    faces: int
    bad_frames: int
    failed_videos: int
    failed_shards: int
    seconds: float
    manifest_path: str

    def __str__(self):
        rate = self.faces / self.seconds if self.seconds > 0 else 0.0
        return (f"{self.shards_written} shards written, {self.shards_skipped} already done; "
                f"{self.videos} videos, {self.frames} frames, {self.faces} faces "
                f"({rate:.1f} faces/s), {self.bad_frames} undecodable frames, "
                f"{self.failed_videos} bad records and {self.failed_shards} unreadable shards "
                "skipped; "
                f"manifest {self.manifest_path}")


def list_shards(in_dir: str) -> list:
    """Sorted names of the face-record shards (`*.tfrecord`, hidden files excluded)."""
    if not os.path.isdir(in_dir):
        raise errors.UserError(f"{in_dir}: no such directory of face TFRecords")
    names = sorted(n for n in os.listdir(in_dir)
                   if n.endswith(".tfrecord") and not n.startswith("."))
    if not names:
        raise errors.UserError(
            f"{in_dir}: no *.tfrecord shards; expected the output of ast-net-prepare-videos")
    return names


def _feature_list(ex: tf.train.SequenceExample, key: str):
    return ex.feature_lists.feature_list[key].feature if key in ex.feature_lists.feature_list \
        else None


def _decode_all(jpegs: list, batch_size: int, features_fn) -> np.ndarray:
    """Features of JPEG faces (all decodable, one size) through a tf.data pipeline."""
    ds = tf.data.Dataset.from_tensor_slices(jpegs)
    ds = ds.map(lambda j: tf.io.decode_jpeg(j, channels=3), num_parallel_calls=tf.data.AUTOTUNE,
                deterministic=True)
    ds = ds.batch(batch_size).prefetch(2)
    return np.concatenate([features_fn(batch).numpy() for batch in ds], axis=0)


def _decode_one_by_one(jpegs: list, batch_size: int, features_fn, size: Optional[int]):
    """Slow path: decodes each JPEG alone; returns (features of the good ones, good mask)."""
    faces, good = [], np.zeros(len(jpegs), bool)
    for i, jpeg in enumerate(jpegs):
        try:
            face = tf.io.decode_jpeg(jpeg, channels=3)
        except (tf.errors.InvalidArgumentError, tf.errors.UnknownError):
            continue
        size = size or int(face.shape[0])
        if face.shape[0] != size or face.shape[1] != size:
            face = tf.cast(tf.round(tf.image.resize(face, [size, size])),
                           tf.uint8)
        faces.append(face)
        good[i] = True
    feats = [features_fn(tf.stack(faces[k:k + batch_size])).numpy()
             for k in range(0, len(faces), batch_size)]
    return (np.concatenate(feats, 0) if feats else None), good


def video_features(ex: tf.train.SequenceExample, features_fn, feature_dim: int,
                   batch_size: int) -> tuple:
    """Per-frame features [T, D] of one face record and the face flags after decoding.

    Returns (features float32 [T, D], face_present int [T], bad frame count).
    """
    jpeg_list = _feature_list(ex, schema.FACE_JPEG)
    present_list = _feature_list(ex, schema.FACE_PRESENT)
    jpegs = [f.bytes_list.value[0] if f.bytes_list.value else b"" for f in jpeg_list]
    n = len(jpegs)
    present = np.array([f.int64_list.value[0] if f.int64_list.value else 0
                        for f in present_list], np.int64) if present_list is not None \
        else np.ones(n, np.int64)
    if len(present) != n:
        raise ValueError(f"{len(present)} face_present flags for {n} frames")
    idx = np.flatnonzero((present > 0) & np.array([len(j) > 0 for j in jpegs], bool))
    feats = np.zeros((n, feature_dim), np.float32)
    bad = 0
    if len(idx):
        chosen = [jpegs[i] for i in idx]
        try:
            feats[idx] = _decode_all(chosen, batch_size, features_fn)
        except (tf.errors.InvalidArgumentError, tf.errors.UnknownError):
            size = ex.context.feature[schema.FACE_SIZE].int64_list.value
            good_feats, good = _decode_one_by_one(chosen, batch_size, features_fn,
                                                  int(size[0]) if size else None)
            if good_feats is not None:
                feats[idx[good]] = good_feats
            bad = int((~good).sum())
            present = present.copy()
            present[idx[~good]] = 0
    present[present > 0] = 1
    present[[i for i in range(n) if not len(jpegs[i])]] = 0
    return feats, present, bad


def to_feature_record(ex: tf.train.SequenceExample, feats: np.ndarray, present: np.ndarray,
                      backbone_name: str) -> tf.train.SequenceExample:
    """A copy of the face record with JPEGs replaced by features (schema of ast_net.data)."""
    out = tf.train.SequenceExample()
    out.CopyFrom(ex)
    lists = out.feature_lists.feature_list
    del lists[schema.FACE_JPEG]
    lists[schema.FEATURES].feature.extend(
        tf.train.Feature(float_list=tf.train.FloatList(value=row)) for row in feats)
    del lists[schema.FACE_PRESENT]
    lists[schema.FACE_PRESENT].feature.extend(
        tf.train.Feature(int64_list=tf.train.Int64List(value=[int(p)])) for p in present)
    ctx = out.context.feature
    ctx[schema.FEATURE_DIM].CopyFrom(
        tf.train.Feature(int64_list=tf.train.Int64List(value=[feats.shape[1]])))
    ctx[schema.FACE_SIZE].CopyFrom(tf.train.Feature(int64_list=tf.train.Int64List(value=[0])))
    ctx[schema.BACKBONE].CopyFrom(
        tf.train.Feature(bytes_list=tf.train.BytesList(value=[backbone_name.encode()])))
    return out


def _convert(raw: bytes, shard: str, net, features_fn, batch_size: int, stats: dict):
    """One face record -> serialized feature record (None for a bad record, listed in stats)."""
    ex = tf.train.SequenceExample.FromString(raw)
    video_id = ex.context.feature[schema.VIDEO_ID].bytes_list.value
    video_id = video_id[0].decode() if video_id else "?"
    if _feature_list(ex, schema.FACE_JPEG) is None:
        if _feature_list(ex, schema.FEATURES) is not None:
            raise errors.UserError(
                f"{shard}: holds feature records already ({video_id}); expected aligned-face "
                "records from ast-net-prepare-videos")
        stats["failed"].append({"video_id": video_id, "reason": f"no {schema.FACE_JPEG}"})
        return None
    try:
        feats, present, bad = video_features(ex, features_fn, net.feature_dim, batch_size)
    except ValueError as e:
        stats["failed"].append({"video_id": video_id, "reason": str(e)})
        return None
    stats["videos"] += 1
    stats["frames"] += len(present)
    stats["faces"] += int(present.sum())
    stats["bad_frames"] += bad
    stats["_last_frames"] = len(present)
    return to_feature_record(ex, feats, present, net.name).SerializeToString()


def _write_json_atomic(path: str, obj) -> None:
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def _load_manifest(in_dir: str, out_dir: str, fingerprint: dict) -> dict:
    """Output manifest: the existing one (same backbone only) or the input one + features."""
    out_path = os.path.join(out_dir, MANIFEST)
    if os.path.exists(out_path):
        with open(out_path) as f:
            manifest = json.load(f)
        previous = {k: manifest.get("features", {}).get(k) for k in fingerprint}
        if previous != fingerprint:
            raise errors.UserError(
                f"{out_path}: this directory holds features made with {previous}, not "
                f"{fingerprint}; use another --out_dir")
        return manifest
    manifest = {}
    in_path = os.path.join(in_dir, MANIFEST)
    if os.path.exists(in_path):
        with open(in_path) as f:
            try:
                manifest = json.load(f)
            except json.JSONDecodeError:
                raise errors.UserError(f"{in_path}: not a JSON manifest") from None
        if not isinstance(manifest, dict):
            manifest = {"source": manifest}
    manifest["features"] = dict(fingerprint, source_dir=os.path.abspath(in_dir), shards={})
    return manifest


def extract_features(in_dir: str, out_dir: str, *, backbone: str = backbones.DEFAULT,
                     weights: Optional[str] = None, batch_size: int = 32,
                     jit_compile: bool = False, progress: bool = True) -> Summary:
    """Runs the extraction; see the module docstring. Returns a Summary.

    Raises:
      errors.UserError: missing or empty in_dir, in_dir == out_dir, records without JPEG faces,
        an out_dir made with another backbone, a missing or wrong weights file.
    """
    if batch_size < 1:
        raise errors.UserError(f"--batch_size must be >= 1, got {batch_size}")
    if os.path.abspath(in_dir) == os.path.abspath(out_dir):
        raise errors.UserError(f"{out_dir}: the output directory must differ from --in_dir")
    shards = list_shards(in_dir)
    net = backbones.load_backbone(backbone, weights)
    features_fn = net.features_function(jit_compile=jit_compile)
    os.makedirs(out_dir, exist_ok=True)
    fingerprint = {"backbone": net.name, "feature_dim": net.feature_dim,
                   "weights": os.path.abspath(weights) if weights else None}
    manifest = _load_manifest(in_dir, out_dir, fingerprint)
    manifest_path = os.path.join(out_dir, MANIFEST)
    summary = Summary(0, 0, 0, 0, 0, 0, 0, 0, 0.0, manifest_path)
    start = time.time()
    bar = tqdm.tqdm(unit="frame", desc=f"features ({net.name})", disable=not progress)
    for name in shards:
        final = os.path.join(out_dir, name)
        if os.path.exists(final):
            summary.shards_skipped += 1
            continue
        stats = {"videos": 0, "frames": 0, "faces": 0, "bad_frames": 0, "failed": []}
        tmp = os.path.join(out_dir, f".{name}.{os.getpid()}.tmp")
        shard_start = time.time()
        try:
            with tf.io.TFRecordWriter(tmp) as writer:
                for raw in tf.data.TFRecordDataset(
                        os.path.join(in_dir, name)).as_numpy_iterator():
                    record = _convert(raw, os.path.join(in_dir, name), net, features_fn,
                                      batch_size, stats)
                    if record is not None:
                        writer.write(record)
                    bar.update(stats.pop("_last_frames", 0))
        except tf.errors.DataLossError as e:  # A truncated or corrupt shard: skip, report.
            os.remove(tmp)
            manifest["features"].setdefault("failed_shards", {})[name] = e.message
            _write_json_atomic(manifest_path, manifest)
            summary.failed_shards += 1
            continue
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
        os.replace(tmp, final)
        stats["seconds"] = round(time.time() - shard_start, 3)
        manifest["features"]["shards"][name] = stats
        _write_json_atomic(manifest_path, manifest)
        summary.shards_written += 1
        for key in ("videos", "frames", "faces", "bad_frames"):
            setattr(summary, key, getattr(summary, key) + stats[key])
        summary.failed_videos += len(stats["failed"])
    bar.close()
    if not os.path.exists(manifest_path):
        _write_json_atomic(manifest_path, manifest)
    summary.seconds = time.time() - start
    return summary
