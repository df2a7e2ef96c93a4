"""The one place that owns the TFRecord schema: feature keys, parse specs and record builders.

Every video (or fixed-length chunk of a long video) is one `tf.train.SequenceExample`:

context (one value per record)
  video/id            bytes   unique id, e.g. "avec2012/devel003" (chunks share it)
  video/subject       bytes   subject id, used for subject-independent splits
  video/split         bytes   "train" | "dev" | "test" | ...
  video/dataset       bytes   "avec2012" | "recola" | "affwild2" | "sewa" | "csv" | "synthetic"
  video/fps           float   frame rate of the source video
  video/num_frames    int64   frames in this record
  video/first_frame   int64   index in the source video of this record's first frame (chunks)
  video/feature_dim   int64   D of frame/features (0 when the record holds JPEG faces)
  video/face_size     int64   S of the S x S aligned faces (0 when the record holds features)
  video/backbone      bytes   name of the CNN that made frame/features ("" for faces)

feature lists (one entry per frame)
  frame/features      float[D]  attribute CNN features     (feature records)
  frame/face_jpeg     bytes     aligned S x S face as JPEG  (face records)
  frame/timestamp     float     seconds from the start of the video
  frame/face_present  int64     1 when a face was found on the frame
  frame/valence       float     label resampled to the frame time (0 where not valid)
  frame/arousal       float
  frame/label_mask    int64     1 when valence/arousal are valid labels for the frame

Writers in `pipelines/` and readers in `ast_net/data/` import this module; nothing else spells
a key.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np
import tensorflow as tf

# Context keys.
VIDEO_ID = "video/id"
SUBJECT = "video/subject"
SPLIT = "video/split"
DATASET = "video/dataset"
FPS = "video/fps"
NUM_FRAMES = "video/num_frames"
FIRST_FRAME = "video/first_frame"
FEATURE_DIM = "video/feature_dim"
FACE_SIZE = "video/face_size"
BACKBONE = "video/backbone"

# Per-frame keys.
FEATURES = "frame/features"
FACE_JPEG = "frame/face_jpeg"
TIMESTAMP = "frame/timestamp"
FACE_PRESENT = "frame/face_present"
VALENCE = "frame/valence"
AROUSAL = "frame/arousal"
LABEL_MASK = "frame/label_mask"

LABEL_KEYS = (VALENCE, AROUSAL)  # Order of the output dims everywhere: [valence, arousal].
DIMENSIONS = ("valence", "arousal")

CONTEXT_SPEC = {
    VIDEO_ID: tf.io.FixedLenFeature([], tf.string),
    SUBJECT: tf.io.FixedLenFeature([], tf.string, default_value=""),
    SPLIT: tf.io.FixedLenFeature([], tf.string, default_value=""),
    DATASET: tf.io.FixedLenFeature([], tf.string, default_value=""),
    FPS: tf.io.FixedLenFeature([], tf.float32),
    NUM_FRAMES: tf.io.FixedLenFeature([], tf.int64),
    FIRST_FRAME: tf.io.FixedLenFeature([], tf.int64, default_value=0),
    FEATURE_DIM: tf.io.FixedLenFeature([], tf.int64, default_value=0),
    FACE_SIZE: tf.io.FixedLenFeature([], tf.int64, default_value=0),
    BACKBONE: tf.io.FixedLenFeature([], tf.string, default_value=""),
}

_COMMON_SEQUENCE_SPEC = {
    TIMESTAMP: tf.io.FixedLenSequenceFeature([], tf.float32),
    FACE_PRESENT: tf.io.FixedLenSequenceFeature([], tf.int64),
    VALENCE: tf.io.FixedLenSequenceFeature([], tf.float32),
    AROUSAL: tf.io.FixedLenSequenceFeature([], tf.float32),
    LABEL_MASK: tf.io.FixedLenSequenceFeature([], tf.int64),
}

REQUIRED_CONTEXT = (VIDEO_ID, FPS, NUM_FRAMES)
REQUIRED_SEQUENCE = tuple(_COMMON_SEQUENCE_SPEC)


# How every reader decodes `frame/face_jpeg` (and the serving `faces_jpeg` signature a client's
# JPEG): libjpeg's accurate integer IDCT, the one PIL, OpenCV and browsers use. TensorFlow's
# default, the fast IDCT, differs from it by up to 14 grey levels on 64 px crops, so features
# extracted with it for training would not be the pixels a client's JPEG decodes to.
FACE_JPEG_DCT_METHOD = "INTEGER_ACCURATE"


def decode_face_jpeg(jpeg) -> tf.Tensor:
    """One `frame/face_jpeg` (scalar string tensor or bytes) -> uint8 [S, S, 3] RGB (TF ops;
    raises `InvalidArgumentError` on bytes that are not an image)."""
    return tf.io.decode_jpeg(jpeg, channels=3, dct_method=FACE_JPEG_DCT_METHOD)


def feature_sequence_spec(feature_dim: int) -> dict:
    """Parse spec of the feature lists of a feature record with D = `feature_dim`."""
    spec = dict(_COMMON_SEQUENCE_SPEC)
    spec[FEATURES] = tf.io.FixedLenSequenceFeature([feature_dim], tf.float32)
    return spec


def face_sequence_spec() -> dict:
    """Parse spec of the feature lists of a face (JPEG) record."""
    spec = dict(_COMMON_SEQUENCE_SPEC)
    spec[FACE_JPEG] = tf.io.FixedLenSequenceFeature([], tf.string)
    return spec


def _bytes(values) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=list(values)))


def _floats(values) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=list(values)))


def _ints(values) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))


def _to_bytes(s) -> bytes:
    return s if isinstance(s, bytes) else str(s).encode("utf-8")


def make_sequence_example(
    *,
    video_id: str,
    fps: float,
    timestamps: Sequence[float],
    face_present: Sequence[int],
    valence: Sequence[float],
    arousal: Sequence[float],
    label_mask: Sequence[int],
    features: Optional[np.ndarray] = None,
    face_jpegs: Optional[Sequence[bytes]] = None,
    subject: str = "",
    split: str = "",
    dataset: str = "",
    first_frame: int = 0,
    face_size: int = 0,
    backbone: str = "",
) -> tf.train.SequenceExample:
    """Builds one record. Exactly one of `features` ([T, D] float) or `face_jpegs` is given.

    Invalid labels (mask 0) are written as 0.0 so a NaN can never leak into a loss.
    """
    if (features is None) == (face_jpegs is None):
        raise ValueError("give exactly one of features or face_jpegs")
    n = len(timestamps)
    for name, seq in (("face_present", face_present), ("valence", valence),
                      ("arousal", arousal), ("label_mask", label_mask)):
        if len(seq) != n:
            raise ValueError(f"{name} has {len(seq)} entries, expected {n} (one per frame)")
    mask = np.asarray(label_mask, np.int64)
    val = np.where(mask > 0, np.nan_to_num(np.asarray(valence, np.float32)), 0.0)
    aro = np.where(mask > 0, np.nan_to_num(np.asarray(arousal, np.float32)), 0.0)

    context = {
        VIDEO_ID: _bytes([_to_bytes(video_id)]),
        SUBJECT: _bytes([_to_bytes(subject)]),
        SPLIT: _bytes([_to_bytes(split)]),
        DATASET: _bytes([_to_bytes(dataset)]),
        FPS: _floats([float(fps)]),
        NUM_FRAMES: _ints([n]),
        FIRST_FRAME: _ints([int(first_frame)]),
        BACKBONE: _bytes([_to_bytes(backbone)]),
    }
    lists = {
        TIMESTAMP: [_floats([float(t)]) for t in timestamps],
        FACE_PRESENT: [_ints([int(f)]) for f in face_present],
        VALENCE: [_floats([float(v)]) for v in val],
        AROUSAL: [_floats([float(a)]) for a in aro],
        LABEL_MASK: [_ints([int(m)]) for m in mask],
    }
    if features is not None:
        features = np.asarray(features, np.float32)
        if features.ndim != 2 or features.shape[0] != n:
            raise ValueError(f"features must be [{n}, D], got {features.shape}")
        context[FEATURE_DIM] = _ints([features.shape[1]])
        context[FACE_SIZE] = _ints([0])
        lists[FEATURES] = [_floats(row) for row in features]
    else:
        if len(face_jpegs) != n:
            raise ValueError(f"face_jpegs has {len(face_jpegs)} entries, expected {n}")
        context[FEATURE_DIM] = _ints([0])
        context[FACE_SIZE] = _ints([int(face_size)])
        lists[FACE_JPEG] = [_bytes([j]) for j in face_jpegs]

    return tf.train.SequenceExample(
        context=tf.train.Features(feature=context),
        feature_lists=tf.train.FeatureLists(
            feature_list={k: tf.train.FeatureList(feature=v) for k, v in lists.items()}),
    )


def describe(record: bytes) -> Mapping[str, object]:
    """Reads a serialized record in pure Python (no graph): context values and list lengths.

    Used to validate files and give clear errors before any tf.data graph is built.
    """
    ex = tf.train.SequenceExample.FromString(record)
    out: dict = {}
    for key, feat in ex.context.feature.items():
        kind = feat.WhichOneof("kind")
        vals = list(getattr(feat, kind).value) if kind else []
        out[key] = vals[0] if len(vals) == 1 else vals
    out["_lists"] = {k: len(v.feature) for k, v in ex.feature_lists.feature_list.items()}
    return out
