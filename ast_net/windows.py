"""How every frame of a whole video gets its prediction from clip windows.

The temporal network was trained on clips of N frames taken every Δt video frames. To predict a
whole video of T frames we split it into Δt interleaved "phase" sequences: phase p holds frames
p, p + Δt, p + 2Δt, ... Each phase sequence (length L) is cut into windows of N frames that
start every N/2 positions, the last window ending exactly at the end. A frame takes its value
from the LAST window that covers it at a position ≥ N/2 (the first window also gives its first
N/2 positions), so every frame is predicted with at least N/2 frames of history (or all the
history there is near the start) - the same kind of context the network saw in training.
Sequences shorter than N are one window of their own length. Every frame of the video thus gets
exactly one prediction, and no frame is predicted from a clip sampled at another rate.

Merging the phases (`merge_phases`). Each phase is predicted by its own windows, so the raw
per-frame values carry a pattern of period Δt (about 0.2 s at 50 fps, sd about 0.03 on the
synthetic benchmark): a saw-tooth. The per-frame output is the CAUSAL mean of the raw values of
the last Δt frames (t - Δt + 1, ..., t: exactly one frame of each phase), then clipped to the
labels' range (`config.output.label_range`, default [-1, 1]; the linear head can overshoot it,
e.g. -1.41). Any pattern of period Δt becomes a constant. The first Δt - 1 frames (warm-up)
average the frames that exist (frame t: the mean of frames 0..t). Causal, so the streaming
predictor (`inference_heads.TemporalHead`, which only has the past) computes the same thing; the
one function serves evaluate, predict, realtime, and `merge_phases_tf` mirrors it op for op in
the exported SavedModel. The cost is a lag of (Δt - 1)/2 frames (0.09 s at 50 fps).
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from ast_net import errors

DEFAULT_LABEL_RANGE = (-1.0, 1.0)  # Valence and arousal labels of every data set we read.

Window = Tuple[np.ndarray, np.ndarray]  # (frame indices of the window, positions it assigns)


def plan(num_frames: int, clip_length: int, frame_step: int) -> List[Window]:
    """The windows covering a video: each is (frame indices, positions whose output is kept)."""
    windows: List[Window] = []
    half = max(clip_length // 2, 1)
    for phase in range(min(frame_step, num_frames)):
        seq = np.arange(phase, num_frames, frame_step)
        length = len(seq)
        if length <= clip_length:
            windows.append((seq, np.arange(length)))
            continue
        starts = list(range(0, length - clip_length, half)) + [length - clip_length]
        for k, s in enumerate(starts):
            keep_from = 0 if k == 0 else half
            windows.append((seq[s:s + clip_length], np.arange(keep_from, clip_length)))
    return windows


def output_options(config) -> Tuple[bool, Optional[Tuple[float, float]]]:
    """(merge the phases?, value range or None) of an AST-Net config (`config.output`).

    Work directories written before `config.output` existed get the defaults: merged, [-1, 1].
    """
    output = config.get("output") or {}
    merge = bool(output.get("merge_phases", True))
    value_range = output.get("label_range", DEFAULT_LABEL_RANGE)
    if value_range is None:
        return merge, None
    try:
        lo, hi = (float(v) for v in value_range)
    except (TypeError, ValueError):
        lo = hi = float("nan")
    if not lo < hi:
        raise errors.UserError(f"config.output.label_range must be (low, high) with low < "
                               f"high, got {value_range!r}")
    return merge, (lo, hi)


def merge_phases(values, frame_step: int,
                 value_range: Optional[Sequence[float]] = DEFAULT_LABEL_RANGE) -> np.ndarray:
    """Causal mean over the last `frame_step` frames, then clipped (see the module docstring).

    Args:
      values: raw per-frame values `[..., T, dims]` (time is the second-to-last axis).
      frame_step: Δt, the width of the mean; 1 leaves the values as they are (clip only).
      value_range: (low, high) to clip to; None: no clipping.

    Returns:
      float32 array of the shape of `values`: out[t] = mean(values[max(0, t - Δt + 1) .. t]).
    """
    v = np.asarray(values, np.float32)
    num_frames = v.shape[-2]
    width = max(int(frame_step), 1)
    total = v.copy()
    for k in range(1, min(width, num_frames)):  # The same order of sums as merge_phases_tf.
        total[..., k:, :] += v[..., :num_frames - k, :]
    count = np.minimum(np.arange(num_frames) + 1, width).astype(np.float32)[:, None]
    out = total / count
    if value_range is not None:
        out = np.clip(out, np.float32(value_range[0]), np.float32(value_range[1]))
    return out


def merge_phases_tf(values, frame_step: int,
                    value_range: Optional[Sequence[float]] = DEFAULT_LABEL_RANGE):
    """`merge_phases` in TensorFlow ops for a `[batch, T, dims]` float32 tensor (any T >= 0)."""
    import tensorflow as tf  # Only the export needs it; evaluate and predict run numpy.

    width = max(int(frame_step), 1)
    num_frames = tf.shape(values)[1]
    total = values
    for k in range(1, width):
        padded = tf.concat([tf.zeros_like(values[:, :k]), values], axis=1)
        total = total + padded[:, :num_frames]  # values[t - k], 0 before the first frame.
    count = tf.cast(tf.minimum(tf.range(num_frames) + 1, width), tf.float32)[None, :, None]
    out = total / count
    if value_range is not None:
        out = tf.clip_by_value(out, float(value_range[0]), float(value_range[1]))
    return out


def predict_video(predict_fn: Callable[[np.ndarray], np.ndarray], features: np.ndarray,
                  clip_length: int, frame_step: int, batch_size: int = 64, *,
                  merge: bool = False,
                  value_range: Optional[Sequence[float]] = None) -> np.ndarray:
    """Per-frame predictions [T, dims] for a whole video of features [T, D].

    Args:
      predict_fn: maps a batch of clips [B, n, D] to [B, n, dims].
      features: per-frame features of the whole video.
      clip_length: N.
      frame_step: Δt.
      batch_size: windows per call of `predict_fn`.
      merge: merge the phases (`merge_phases` over Δt frames); False: the raw window values.
      value_range: clip to this (low, high); None: no clipping. `output_options(config)` gives
        both from a config.
    """
    num_frames = features.shape[0]
    windows = plan(num_frames, clip_length, frame_step)
    out = None
    by_len: dict = {}
    for w in windows:
        by_len.setdefault(len(w[0]), []).append(w)
    # Process windows in plan order within each length group; later windows overwrite earlier
    # ones, and within one phase all full windows share one length, so order is preserved.
    for length in sorted(by_len):
        group = by_len[length]
        for b in range(0, len(group), batch_size):
            chunk = group[b:b + batch_size]
            batch = np.stack([features[idx] for idx, _ in chunk]).astype(np.float32)
            preds = np.asarray(predict_fn(batch))
            if out is None:
                out = np.zeros((num_frames, preds.shape[-1]), np.float32)
            for (idx, keep), p in zip(chunk, preds):
                out[idx[keep]] = p[keep]
    if out is None:
        return np.zeros((0, 2), np.float32)
    if merge or value_range is not None:
        out = merge_phases(out, frame_step if merge else 1, value_range)
    return out


def streaming_equivalent(num_frames: int, clip_length: int, frame_step: int,
                         merge_width: int = 1) -> np.ndarray:
    """Bool mask [T]: frames whose offline value (`predict_video`) equals the streaming one.

    The streaming head (`inference_heads.TemporalHead`, only the past) takes frame t's raw
    value from the window t - (N-1)Δt, ..., t of its phase (or from the phase start, near the
    start of a track). The offline value comes from the last `plan` window that covers t at a
    position >= N/2, i.e. from the frames of that window up to t (the LSTM is causal). Both see
    the same frames exactly when that window starts where the causal one does. With the phase
    merge over the last `merge_width` frames (Δt; 1 = none), all of those must agree. Assumes
    one track from frame 0 on (a face on every frame), as evaluation's feature records do.
    """
    start = np.full(num_frames, -1)
    for idx, keep in plan(num_frames, clip_length, frame_step):
        start[idx[keep]] = idx[0]  # Later windows overwrite, as in `predict_video`.
    t = np.arange(num_frames)
    raw = start == np.maximum(t % frame_step, t - (clip_length - 1) * frame_step)
    width = max(int(merge_width), 1)
    return np.array([raw[max(0, i - width + 1):i + 1].all() for i in t], bool)
