"""What the streaming engine does with each face's CNN output: the AST-Net LSTM, or zero-shot.

A head gives the engine its CNN function (`cnn_function(backbone)`: uint8 crops -> outputs) and
turns each frame's outputs into (valence, arousal) per face (`step_batch`), keeping per-track
state between frames. Tracks never come back once lost (`FaceTracker` never reuses an id), so a
track's state is dropped on the first frame it is missing from.

`TemporalHead` (a checkpoint of `ast-net-train`). Each track keeps a ring buffer of the CNN
features of its last (N - 1)·Δt + 1 frames (N = config.data.clip_length, Δt =
config.data.frame_step). The prediction for frame t is the LSTM's LAST output over the window
of frames t - (N - 1)Δt, ..., t - Δt, t of that track: the same N-frames-Δt-apart sampling the
network was trained on, computed incrementally and causally (no future frames), so it works
live. At the start of a track the window holds only the frames that exist (t, t - Δt, ... down
to the track's first frame): fewer than N. When a live source drops frames, the window takes,
for each wanted index, the newest buffered frame at or before it. The offline variant for a
whole file (`ast_net/windows.py`, used by ast-net-evaluate) differs in one respect: it may use
later frames of a window (a frame's value comes from a window covering it at a position >= N/2),
so near the start of a video its values can differ from the causal ones here; away from the
start both have at least N/2 frames of history, and here always the full N.

Those raw per-window values are then merged exactly as everywhere else
(`windows.merge_phases`): the output for frame t is the mean of the track's raw values of frames
t - Δt + 1, ..., t (one of each phase; only those it has at the start of a track or when frames
were dropped), clipped to `config.output.label_range`. The SavedModel's `video_*` signatures
compute this same streaming sequence in TensorFlow ops.

`ZeroShotHead` (no checkpoint): the embedded FER2013 CNN's 7 emotion probabilities ->
`va_mapping.probabilities_to_va` -> a per-track causal EMA (`va_mapping.EmaSmoother`).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ast_net import errors, va_mapping, windows
from ast_net.models import backbones


class TrackWindow:
    """Ring buffer of one track's features with their frame indices (indices increase)."""

    def __init__(self, capacity: int, feature_dim: int):
        self.capacity = int(capacity)
        self.features = np.zeros((self.capacity, feature_dim), np.float32)
        self.indices = np.full(self.capacity, -1, np.int64)
        self.size = 0
        self.head = 0  # Next slot to write.
        self.recent: list[tuple[int, np.ndarray]] = []  # (index, raw value) of the last Δt frames.

    def push(self, index: int, feature) -> None:
        self.features[self.head] = feature
        self.indices[self.head] = index
        self.head = (self.head + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def window(self, index: int, clip_length: int, frame_step: int) -> np.ndarray:
        """Features of frames index - (N-1)Δt, ..., index (those the track has) `[n, D]`."""
        order = (self.head - self.size + np.arange(self.size)) % self.capacity
        idx = self.indices[order]
        wanted = index - frame_step * np.arange(clip_length - 1, -1, -1)
        wanted = wanted[wanted >= idx[0]]
        # Newest buffered frame at or before each wanted index (exact when nothing dropped).
        pos = np.searchsorted(idx, wanted, side="right") - 1
        return self.features[order[pos]]

    def merged(self, index: int, raw: np.ndarray, frame_step: int, value_range) -> np.ndarray:
        """Adds frame `index`'s raw value; the merged value of frames index - Δt + 1 .. index."""
        self.recent = [(i, v) for i, v in self.recent if i > index - frame_step]
        self.recent.append((index, np.array(raw, np.float32)))  # A copy: `raw` may be a view.
        values = np.stack([v for _, v in self.recent])
        return windows.merge_phases(values, frame_step, value_range)[-1]


class TemporalHead:
    """The trained AST-Net temporal network over per-track windows; see the module docstring.

    Args:
      model: the temporal keras.Model (`features [B, T, D] -> [B, T, 2]`).
      clip_length: N.
      frame_step: Δt.
      feature_scale: config.data.feature_scale (features are multiplied by it, as in training).
      merge: merge the phases (`windows.merge_phases`); False: the raw per-window values.
      value_range: clip the outputs to this (low, high); None: no clipping. `inference.load_head`
        passes both from the checkpoint's `config.output` (merged, [-1, 1] by default); the
        defaults here (raw) are for code that wants the network's own window outputs.
      jit_compile: XLA for the full-length (N-frame) windows, which are all windows once a
        track is (N - 1)Δt frames old. XLA compiles once per shape, so those batches are padded
        to a power of two (a handful of compilations in all); the shorter windows at the start
        of a track run without XLA. On our CPU XLA halves the LSTM time (benchmarks/realtime.py).
    """

    def __init__(self, model, clip_length: int, frame_step: int, feature_scale: float = 1.0,
                 jit_compile: bool = False, merge: bool = False, value_range=None):
        self.model = model
        self.clip_length = int(clip_length)
        self.frame_step = int(frame_step)
        self.feature_scale = float(feature_scale)
        self.merge = bool(merge)
        self.value_range = None if value_range is None else tuple(float(v) for v in value_range)
        self.feature_dim = int(model.input_shape[-1])
        self.capacity = (self.clip_length - 1) * self.frame_step + 1
        self.step = None  # The checkpoint step restored, set by `inference.load_head`.
        spec = tf.TensorSpec([None, None, self.feature_dim], tf.float32)

        def last_output(windows):
            return model(windows * self.feature_scale, training=False)[:, -1, :]

        self._predict = tf.function(last_output, input_signature=[spec], jit_compile=False)
        self._predict_full = (tf.function(last_output, jit_compile=True) if jit_compile
                              else None)
        self.reset()

    def reset(self) -> None:
        self.tracks: dict[int, TrackWindow] = {}

    def cnn_function(self, backbone):
        if backbone.feature_dim != self.feature_dim:
            raise errors.UserError(
                f"the {backbone.name} backbone gives {backbone.feature_dim}-d features but the "
                f"temporal model expects {self.feature_dim}-d")
        return backbone.features

    def predict_windows(self, windows: list[np.ndarray]) -> np.ndarray:
        """LSTM last outputs `[len(windows), 2]`, one call per distinct window length."""
        out = np.zeros((len(windows), 2), np.float32)
        by_len: dict[int, list[int]] = {}
        for i, w in enumerate(windows):
            by_len.setdefault(len(w), []).append(i)
        for length, rows in by_len.items():
            batch = np.stack([windows[i] for i in rows])
            if self._predict_full is not None and length == self.clip_length:
                padded = np.zeros((1 << (len(rows) - 1).bit_length(),) + batch.shape[1:],
                                  np.float32)
                padded[:len(rows)] = batch
                out[rows] = self._predict_full(tf.constant(padded)).numpy()[:len(rows)]
            else:
                out[rows] = self._predict(tf.constant(batch)).numpy()
        return out

    def step_batch(self, frames) -> list[np.ndarray]:
        """frames: list of (index, timestamp, track_ids, features [n, D]) in frame order."""
        clips, owners, counts = [], [], []
        for index, _, ids, feats in frames:
            for track_id in [i for i in self.tracks if i not in ids]:
                del self.tracks[track_id]
            for track_id, feature in zip(ids, feats):
                track = self.tracks.get(track_id)
                if track is None:
                    track = self.tracks[track_id] = TrackWindow(self.capacity, self.feature_dim)
                track.push(index, feature)
                clips.append(track.window(index, self.clip_length, self.frame_step))
                owners.append((track, index))
            counts.append(len(ids))
        values = self.predict_windows(clips) if clips else np.zeros((0, 2), np.float32)
        # In frame order, so each track's last Δt raw values are those of its past frames.
        width = self.frame_step if self.merge else 1
        for row, (track, index) in enumerate(owners):
            values[row] = track.merged(index, values[row], width, self.value_range)
        return np.split(values, np.cumsum(counts)[:-1]) if counts else []


class ZeroShotHead:
    """FER2013 probabilities -> Russell circumplex (valence, arousal) -> per-track EMA."""

    def __init__(self, smoothing_s: float = 0.5):
        self.smoothing_s = float(smoothing_s)
        self.reset()

    def reset(self) -> None:
        self.tracks: dict[int, va_mapping.EmaSmoother] = {}

    @staticmethod
    def cnn_function(backbone):
        if backbone.probs_model is None:
            raise errors.UserError(
                f"the {backbone.name} backbone has no FER2013 emotion head, which the zero-shot "
                "default needs: use --backbone=mini_xception, fine-tuned vgg16 weights "
                "(ast-net-train-cnn), or an AST-Net --workdir")
        if tuple(backbone.probs_model.output_shape[1:]) != (len(backbones.EMOTIONS),):
            raise errors.UserError(f"the {backbone.name} backbone does not output the 7 FER2013 "
                                   "classes the zero-shot mapping needs")
        probs_model = backbone.probs_model

        @tf.function(reduce_retracing=True)
        def probs(faces_uint8):
            return tf.cast(probs_model(backbone.preprocess(faces_uint8), training=False),
                           tf.float32)

        return probs

    def step_batch(self, frames) -> list[np.ndarray]:
        out = []
        for _, timestamp, ids, probs in frames:
            for track_id in [i for i in self.tracks if i not in ids]:
                del self.tracks[track_id]
            va = va_mapping.probabilities_to_va(probs) if len(ids) else np.zeros((0, 2))
            rows = []
            for track_id, value in zip(ids, va):
                smoother = self.tracks.get(track_id)
                if smoother is None:
                    smoother = self.tracks[track_id] = va_mapping.EmaSmoother(self.smoothing_s)
                rows.append(smoother.update(timestamp, value))
            out.append(np.asarray(rows, np.float32).reshape(-1, 2))
        return out


def has_emotion_head(backbone) -> bool:
    """Whether the backbone's network ends in the 7 FER2013 classes (`backbones.EMOTIONS`)."""
    return (backbone.probs_model is not None
            and tuple(backbone.probs_model.output_shape[1:]) == (len(backbones.EMOTIONS),))


def with_emotions(head, backbone, cnn_fn):
    """crops uint8 [B, S, S, 3] -> (the head's CNN outputs [B, D], emotions [B, 7] or None).

    The zero-shot head's outputs are the 7 probabilities themselves. For the LSTM head, a
    backbone with a 7-class head gives its features and probabilities in one pass (one Keras
    model with both outputs, sharing the layers up to the features); without one, None.
    """
    if isinstance(head, ZeroShotHead):
        def same(crops):
            probs = np.asarray(cnn_fn(crops))
            return probs, probs

        return same
    if not has_emotion_head(backbone):
        return lambda crops: (np.asarray(cnn_fn(crops)), None)
    try:  # One graph to both outputs: the layers they share run once.
        joint = keras.Model(backbone.probs_model.inputs,
                            [backbone.feature_model.outputs[0], backbone.probs_model.outputs[0]])
    except ValueError:  # The two models do not share a graph: two calls.
        joint = None

    @tf.function(reduce_retracing=True)
    def both(faces_uint8):
        x = backbone.preprocess(faces_uint8)
        if joint is not None:
            features, probs = joint(x, training=False)
        else:
            features = backbone.feature_model(x, training=False)
            probs = backbone.probs_model(x, training=False)
        return tf.cast(features, tf.float32), tf.cast(probs, tf.float32)

    def call(crops):
        features, probs = both(crops)
        return features.numpy(), probs.numpy()

    return call
