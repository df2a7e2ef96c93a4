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
"""

from __future__ import annotations

from typing import Callable, List, Tuple

import numpy as np

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


def predict_video(predict_fn: Callable[[np.ndarray], np.ndarray], features: np.ndarray,
                  clip_length: int, frame_step: int, batch_size: int = 64) -> np.ndarray:
    """Per-frame predictions [T, dims] for a whole video of features [T, D].

    Args:
      predict_fn: maps a batch of clips [B, n, D] to [B, n, dims].
      features: per-frame features of the whole video.
      clip_length: N.
      frame_step: Δt.
      batch_size: windows per call of `predict_fn`.
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
    return out
