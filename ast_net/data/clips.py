"""The clip sampler: twin clips of N frames every Δt video frames, as a tf.data pipeline.

From every video (record) of T frames, training clips start at video frames 0, s, 2s, ...
(s = `clip_stride`) while the clip still fits. Clip A takes frames start + i·Δt for i = 0..N-1 and
its twin B takes the same frames shifted by `twin_shift` (1 in the paper), so a clip spans
(N − 1)·Δt + 1 frames and a pair (N − 1)·Δt + 1 + shift. Clips are shuffled with a seed:
the same seed gives the same batches. Clips whose frames are all masked are dropped.
"""

from __future__ import annotations

from typing import List, Optional

import tensorflow as tf

from ast_net import errors
from ast_net.data import records, schema


def pair_span(clip_length: int, frame_step: int, twin_shift: int) -> int:
    """Video frames covered by a twin pair."""
    return (clip_length - 1) * frame_step + 1 + twin_shift


def record_lengths(files: List[str], feature_dim: Optional[int] = None) -> List[int]:
    """Number of frames of every record (chunk) in `files`.

    With `feature_dim`, every record is parsed in full (as training will), so a bad record
    anywhere in the files is reported before training starts. A record that does not parse is
    one UserError naming the file, record and key (`records.schema_errors`).
    """
    if feature_dim is None:
        spec = {schema.NUM_FRAMES: schema.CONTEXT_SPEC[schema.NUM_FRAMES]}
        ds = tf.data.TFRecordDataset(files).map(
            lambda r: tf.io.parse_single_sequence_example(r, context_features=spec)[0][
                schema.NUM_FRAMES])
    else:
        ds = tf.data.TFRecordDataset(files).map(
            lambda r: _checked_length(records.parse_feature_record(r, feature_dim)),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    with records.schema_errors(files, feature_dim):
        return [int(n) for n in ds.as_numpy_iterator()]


def _checked_length(video) -> tf.Tensor:
    """Frames of a parsed record; an InvalidArgumentError when its per-frame lists differ."""
    n = tf.shape(video["features"])[0]
    checks = [tf.debugging.assert_equal(tf.shape(video[k])[0], n,
                                        message=f"per-frame lists differ in length ({k})")
              for k in ("labels", "mask", "timestamp")]
    with tf.control_dependencies(checks):
        return tf.identity(n)


def check_clips_fit(files: List[str], data_config, feature_dim: Optional[int] = None) -> None:
    """UserError when N × Δt is longer than every video, so no clip can be cut, or when a record
    does not parse (every record is checked when `feature_dim` is given)."""
    span = pair_span(data_config.clip_length, data_config.frame_step, data_config.twin_shift)
    lengths = record_lengths(files, feature_dim)
    if not lengths or max(lengths) < span:
        raise errors.UserError(
            f"clip_length × frame_step = {data_config.clip_length} × {data_config.frame_step} "
            f"(+ twin shift) needs {span} frames, longer than every video in "
            f"{files[0] if len(files) == 1 else files[0] + ' ...'} (longest: "
            f"{max(lengths) if lengths else 0} frames); lower config.data.clip_length or "
            f"config.data.frame_step")


def _video_clips(video, clip_length, frame_step, clip_stride, twin_shift):
    span = pair_span(clip_length, frame_step, twin_shift)
    num_frames = tf.shape(video["features"])[0]
    starts = tf.range(0, num_frames - span + 1, clip_stride)
    offsets = tf.range(clip_length) * frame_step

    def one(start):
        idx_a = start + offsets
        idx_b = idx_a + twin_shift
        out = {}
        for suffix, idx in (("a", idx_a), ("b", idx_b)):
            out[f"features_{suffix}"] = tf.gather(video["features"], idx)
            out[f"labels_{suffix}"] = tf.gather(video["labels"], idx)
            out[f"mask_{suffix}"] = tf.gather(video["mask"], idx)
        return out

    return tf.data.Dataset.from_tensor_slices(starts).map(one)


def clip_dataset(files: List[str], feature_dim: int, data_config, *, batch_size: int,
                 seed: int, repeat: bool = True, shuffle: bool = True) -> tf.data.Dataset:
    """Batches of twin clips (dicts, see `ast_net.models.siamese`) from feature records.

    Args:
      files: feature TFRecord files.
      feature_dim: D.
      data_config: `config.data` (clip_length, frame_step, clip_stride, twin_shift,
        shuffle_buffer, feature_scale).
      batch_size: global batch size; the last partial batch is dropped (static shapes for XLA).
      seed: shuffling seed; same seed, same order.
      repeat: repeat forever (training).
      shuffle: shuffle files and clips.
    """
    n, step = int(data_config.clip_length), int(data_config.frame_step)
    stride, shift = int(data_config.clip_stride), int(data_config.twin_shift)
    scale = float(data_config.feature_scale)

    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(4, len(files)),
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.map(lambda r: records.parse_feature_record(r, feature_dim),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.flat_map(lambda v: _video_clips(v, n, step, stride, shift))
    ds = ds.filter(lambda c: tf.reduce_any(c["mask_a"] > 0))
    if scale != 1.0:
        ds = ds.map(lambda c: {k: (v * scale if k.startswith("features") else v)
                               for k, v in c.items()})
    if shuffle:
        ds = ds.shuffle(int(data_config.shuffle_buffer), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=True)
    return ds.prefetch(tf.data.AUTOTUNE)
