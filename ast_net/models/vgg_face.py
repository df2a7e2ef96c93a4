"""VGG16 with the VGG-Face layer names, its weight files and its preprocessing.

The network is the VGG16 of Parkhi et al. (VGG-Face) as a Keras 3 functional model whose layers
keep the original names: `conv1_1` ... `conv5_3`, `pool1` ... `pool5`, `flatten`, `fc6`, `drop6`,
`fc7`, `drop7`, `fc8` (logits) and `prob` (softmax). `fc6` carries its ReLU: the attribute feature
is the fc6 activation AFTER the ReLU, which is what the paper's Caffe model exposes as the `fc6`
blob (Caffe's `relu6` runs in place on that blob). Dropout follows fc6 and fc7 during training
only, so the feature is never dropped out.

Weight files are HDF5 files in the Keras-2 `save_weights` layout: the root attribute
`layer_names`, one group per layer whose attribute `weight_names` lists its datasets in order
(kernel, bias); a full-model save keeps the same under a `model_weights` group. Three variants
are read: the VGG-Face release of keras-vggface (`rcmalli_vggface_tf_vgg16.h5`: layers `conv1_1`
... `fc8`, 2622 identities, weight names like `conv1_1/kernel:0`), the Keras ImageNet release
(`vgg16_weights_tf_dim_ordering_tf_kernels.h5`: `block1_conv1` ... `fc1`, `fc2`, `predictions`,
1000 classes, weight names like `block1_conv1_W_1:0`) mapped onto our names, and the files that
`save_weights` here writes after fine-tuning (the VGG-Face layout plus `ast_net_*` attributes:
mean pixel, class names), which keras-vggface users can read too.

Preprocessing is the VGG-Face one (keras-vggface `preprocess_input(version=1)`): RGB in 0..255,
flipped to BGR, minus the mean pixel B 93.5940, G 104.7624, R 129.1863. ImageNet weights use
the Caffe ImageNet mean (B 103.939, G 116.779, R 123.68) instead; the file says which.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional, Sequence

import h5py
import numpy as np
from absl import logging

from ast_net import atomic, errors, lazy

tf = lazy.module("tensorflow")  # Imported on first use (see ast_net/lazy.py).
keras = lazy.module("keras")

VGGFACE_FILE = "rcmalli_vggface_tf_vgg16.h5"
VGGFACE_URL = ("https://github.com/rcmalli/keras-vggface/releases/download/v2.0/"
               "rcmalli_vggface_tf_vgg16.h5")
IMAGENET_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
IMAGENET_URL = ("https://github.com/fchollet/deep-learning-models/releases/download/v0.1/"
                "vgg16_weights_tf_dim_ordering_tf_kernels.h5")
EXPECTED_FILES = (
    f"expected the VGG-Face weights {VGGFACE_FILE} (keras-vggface release, {VGGFACE_URL}) or "
    f"the Keras ImageNet VGG16 weights {IMAGENET_FILE} ({IMAGENET_URL}) or a file written by "
    "ast-net-train-cnn")

# The backbone interface (`backbones.BACKBONES`; mini_xception.py defines the same names).
NAME = "vgg16"
INPUT_SIZE = 224
FEATURE_DIM = 4096
EXPORT_NAME = "vgg16_fer2013.h5"  # What ast-net-train-cnn writes (`save`).
NEEDS_WEIGHTS = True  # Without a weights file the network is random (speed tests only).
TF_THREADS = 0  # Engine default TF op threads (`inference.set_tf_threads`): TF's default.

MEAN_BGR_VGGFACE = (93.5940, 104.7624, 129.1863)
MEAN_BGR_IMAGENET = (103.939, 116.779, 123.68)

# (name, filters) of the 13 convolutions; a pool follows the last conv of each block.
CONV_LAYERS = (
    ("conv1_1", 64), ("conv1_2", 64),
    ("conv2_1", 128), ("conv2_2", 128),
    ("conv3_1", 256), ("conv3_2", 256), ("conv3_3", 256),
    ("conv4_1", 512), ("conv4_2", 512), ("conv4_3", 512),
    ("conv5_1", 512), ("conv5_2", 512), ("conv5_3", 512),
)
FC_LAYERS = ("fc6", "fc7", "fc8")
WEIGHT_LAYERS = tuple(n for n, _ in CONV_LAYERS) + FC_LAYERS
FEATURE_LAYER = "fc6"

# Keras applications ImageNet names -> VGG-Face names.
_IMAGENET_NAMES = {f"block{n[4]}_conv{n[6]}": n for n, _ in CONV_LAYERS}
_IMAGENET_NAMES.update({"fc1": "fc6", "fc2": "fc7", "predictions": "fc8"})


def build_vgg16(input_size: int = 224, num_classes: int = 7, fc_width: int = 4096,
                dropout: float = 0.5, dtype=None,
                kernel_initializer="glorot_uniform") -> keras.Model:
    """VGG16 with VGG-Face layer names; input `image` float [B, S, S, 3] preprocessed BGR.

    Args:
      input_size: S, a multiple of 32 (224 for the real weights; smaller for quick tests).
      num_classes: width of fc8 (7 for FER2013, 2622 for VGG-Face identities).
      fc_width: width of fc6 and fc7 (4096 in VGG16).
      dropout: rate of the dropout after fc6 and fc7 (training only).
      dtype: a Keras dtype policy for every layer but the softmax, e.g. "mixed_float16".
      kernel_initializer: "zeros" saves seconds when a weight file is loaded next.
    """
    if input_size % 32 or input_size < 32:
        raise errors.UserError(f"VGG16 input size must be a multiple of 32, got {input_size}")
    inputs = keras.Input(shape=(input_size, input_size, 3), name="image")
    x = inputs
    for name, filters in CONV_LAYERS:
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=name,
                                kernel_initializer=kernel_initializer, dtype=dtype)(x)
        if name in ("conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3"):
            x = keras.layers.MaxPooling2D(2, 2, name=f"pool{name[4]}", dtype=dtype)(x)
    x = keras.layers.Flatten(name="flatten", dtype=dtype)(x)
    x = keras.layers.Dense(fc_width, activation="relu", name="fc6",
                           kernel_initializer=kernel_initializer, dtype=dtype)(x)
    x = keras.layers.Dropout(dropout, name="drop6", dtype=dtype)(x)
    x = keras.layers.Dense(fc_width, activation="relu", name="fc7",
                           kernel_initializer=kernel_initializer, dtype=dtype)(x)
    x = keras.layers.Dropout(dropout, name="drop7", dtype=dtype)(x)
    x = keras.layers.Dense(num_classes, name="fc8", dtype=dtype)(x)  # Random: often new.
    probs = keras.layers.Activation("softmax", name="prob", dtype="float32")(x)
    return keras.Model(inputs, probs, name=NAME)


def feature_model(model: keras.Model) -> keras.Model:
    """The fc6 (after ReLU) sub-model of `build_vgg16`'s model, sharing its weights."""
    return keras.Model(model.inputs, model.get_layer(FEATURE_LAYER).output, name="vgg16_fc6")


def preprocess(faces_uint8, input_size: int = INPUT_SIZE,
               mean_bgr: Sequence[float] = MEAN_BGR_VGGFACE):
    """uint8 RGB faces [B, H, W, 3] (or gray [B, H, W, 1]) -> float BGR minus mean [B, S, S, 3].

    TF ops only (runs in tf.data, tf.function, XLA and serving signatures). Faces of another
    size are resized bilinearly (OpenCV INTER_LINEAR semantics, no antialiasing: XLA cannot
    compile the antialiased op); gray faces are copied to 3 channels.
    """
    x = tf.convert_to_tensor(faces_uint8)
    if x.dtype != tf.uint8:
        raise TypeError(f"faces must be uint8, got {x.dtype}")
    if x.shape.rank != 4:
        raise ValueError(f"faces must be [batch, height, width, channels], got {x.shape}")
    if x.shape[-1] == 1:
        x = tf.tile(x, [1, 1, 1, 3])
    x = tf.cast(x, tf.float32)
    if x.shape[1] != input_size or x.shape[2] != input_size:
        x = tf.image.resize(x, [input_size, input_size], method="bilinear", antialias=False)
    return x[..., ::-1] - tf.constant(mean_bgr, tf.float32)


@dataclasses.dataclass
class WeightsFile:
    """What a VGG16 weight file holds, by our layer names."""
    path: str
    kind: str                          # "vggface" | "imagenet" | "ast_net"
    weights: dict                      # layer name -> [kernel, bias] numpy arrays
    mean_bgr: tuple
    class_names: Optional[tuple]       # fc8 classes when known (FER2013 after fine-tuning)

    @property
    def input_size(self) -> int:
        rows = self.weights["fc6"][0].shape[0]
        side = int(round((rows / 512) ** 0.5))
        return side * 32

    @property
    def fc_width(self) -> int:
        return int(self.weights["fc6"][0].shape[1])

    @property
    def num_classes(self) -> Optional[int]:
        return int(self.weights["fc8"][0].shape[1]) if "fc8" in self.weights else None


def _text(v) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def _layer_arrays(root: h5py.Group, name: str) -> list:
    """Arrays of one layer group, in `weight_names` order (kernel, bias)."""
    g = root[name]
    names = [_text(n) for n in g.attrs.get("weight_names", [])]
    if names:
        return [np.asarray(g[n]) for n in names]
    found = []  # No attribute: every dataset below the group, kernels (ndim > 1) first.
    g.visititems(lambda _, obj: found.append(np.asarray(obj))
                 if isinstance(obj, h5py.Dataset) else None)
    return sorted(found, key=lambda a: -a.ndim)


def read_weights(path: str) -> WeightsFile:
    """Reads a VGG-Face, Keras ImageNet or ast-net VGG16 weight file (see the module doc).

    Raises:
      errors.UserError: one line naming the file and what was expected.
    """
    if not path or not os.path.isfile(path):
        raise errors.UserError(f"{path}: no such VGG16 weights file; {EXPECTED_FILES}")
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise errors.UserError(f"{path}: not an HDF5 file; {EXPECTED_FILES}") from None
    with f:
        root = f
        if "layer_names" not in f.attrs and "model_weights" in f:
            root = f["model_weights"]
        if "layer_names" in root.attrs:
            layer_names = [_text(n) for n in root.attrs["layer_names"]]
        else:
            layer_names = list(root.keys())
        if "conv1_1" in layer_names:
            kind, rename = "vggface", {n: n for n in WEIGHT_LAYERS}
        elif "block1_conv1" in layer_names:
            kind, rename = "imagenet", _IMAGENET_NAMES
        else:
            raise errors.UserError(
                f"{path}: no VGG16 layers in this file (it has {layer_names[:6]}...); "
                f"{EXPECTED_FILES}")
        weights = {}
        for theirs, ours in rename.items():
            if theirs in layer_names:
                arrays = _layer_arrays(root, theirs)
                if len(arrays) != 2 or arrays[0].ndim not in (2, 4) or arrays[1].ndim != 1:
                    raise errors.UserError(
                        f"{path}: layer {theirs} holds {[a.shape for a in arrays]}, "
                        "expected a kernel and a bias")
                weights[ours] = arrays
        missing = [n for n in WEIGHT_LAYERS[:-1] if n not in weights]  # fc8 is optional.
        if missing:
            raise errors.UserError(
                f"{path}: layers {missing} are missing (a 'notop' file?); the full file with "
                f"fc6/fc7 is needed, {EXPECTED_FILES}")
        mean = MEAN_BGR_IMAGENET if kind == "imagenet" else MEAN_BGR_VGGFACE
        class_names = None
        if "ast_net_mean_bgr" in f.attrs:
            kind = "ast_net"
            mean = tuple(float(v) for v in f.attrs["ast_net_mean_bgr"])
            if "ast_net_class_names" in f.attrs:
                class_names = tuple(_text(n) for n in f.attrs["ast_net_class_names"])
    rows = weights["fc6"][0].shape[0]
    side = int(round((rows / 512) ** 0.5))
    if side * side * 512 != rows:
        raise errors.UserError(f"{path}: fc6 kernel has {rows} rows, not 512 * k^2 of a VGG16")
    return WeightsFile(path=path, kind=kind, weights=weights, mean_bgr=tuple(mean),
                       class_names=class_names)


def load_weights(model: keras.Model, weights: WeightsFile, *, skip_mismatched_fc8=True) -> list:
    """Assigns the file's arrays to `model` (built by `build_vgg16`); returns the layers set.

    fc8 is skipped (left as initialised) when the file has none or its class count differs
    (VGG-Face's 2622 identities or ImageNet's 1000 classes before FER2013 fine-tuning).
    """
    loaded = []
    for name, arrays in weights.weights.items():
        layer = model.get_layer(name)
        expected = [tuple(v.shape) for v in layer.weights]
        got = [tuple(a.shape) for a in arrays]
        if expected != got:
            if name == "fc8" and skip_mismatched_fc8:
                continue
            raise errors.UserError(
                f"{weights.path}: layer {name} has shapes {got}, the model expects {expected} "
                f"(input size {model.input_shape[1]}, fc width {model.get_layer('fc6').units})")
        layer.set_weights([a.astype(np.float32) for a in arrays])
        loaded.append(name)
    return loaded


def save_weights(model: keras.Model, path: str, *, mean_bgr: Sequence[float],
                 class_names: Optional[Sequence[str]] = None) -> None:
    """Writes `model`'s weights atomically in the VGG-Face (keras-vggface) layout."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic.path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            names = [layer.name for layer in model.layers]
            f.attrs["layer_names"] = np.array([n.encode() for n in names])
            f.attrs["backend"] = b"tensorflow"
            f.attrs["keras_version"] = keras.__version__.encode()
            f.attrs["ast_net_mean_bgr"] = np.asarray(mean_bgr, np.float64)
            if class_names:
                f.attrs["ast_net_class_names"] = np.array([c.encode() for c in class_names])
            for layer in model.layers:
                g = f.create_group(layer.name)
                values = [np.asarray(v.numpy(), np.float32) for v in layer.weights]
                wnames = [f"{layer.name}/{'kernel' if v.ndim > 1 else 'bias'}:0"
                          for v in values]
                g.attrs["weight_names"] = np.array([w.encode() for w in wnames])
                for wname, value in zip(wnames, values):
                    g.create_dataset(wname, data=value)


def weights_id() -> str:
    """The contract's fingerprint of the default weights: "random" (no file)."""
    return "random"


def load(weights_path: Optional[str] = None, *, class_names: Sequence[str],
         input_size: Optional[int] = None, fc_width: Optional[int] = None):
    """(model, mean_bgr, has a FER head) for `backbones.load_backbone` (float32, inference).

    Args:
      weights_path: see `read_weights`; None gives random weights (for speed tests only).
      class_names: the FER2013 classes; fc8 is a FER head when the file says it has them.
      input_size, fc_width: random weights only (defaults 224 and 4096).
    """
    if weights_path is None:
        model = build_vgg16(input_size=input_size or INPUT_SIZE, fc_width=fc_width or 4096,
                            num_classes=len(class_names))
        return model, MEAN_BGR_VGGFACE, False
    weights = read_weights(weights_path)
    if input_size and input_size != weights.input_size:
        raise errors.UserError(
            f"{weights_path}: weights are for {weights.input_size}px input, not {input_size}")
    model = build_vgg16(input_size=weights.input_size, fc_width=weights.fc_width,
                        num_classes=weights.num_classes or len(class_names),
                        kernel_initializer="zeros")
    load_weights(model, weights)
    return model, weights.mean_bgr, weights.class_names == tuple(class_names)


def build_trainable(config, class_names: Sequence[str]):
    """(model, mean_bgr) to fine-tune, from `config.model.init_weights` (VGG-Face) or random."""
    init = os.path.expanduser(config.model.init_weights) if config.model.init_weights else None
    policy = "mixed_float16" if config.train.mixed_precision else None
    model = build_vgg16(
        input_size=config.model.input_size, num_classes=len(class_names),
        fc_width=config.model.fc_width, dropout=config.model.dropout, dtype=policy)
    mean = MEAN_BGR_VGGFACE
    if init:
        weights = read_weights(init)
        loaded = load_weights(model, weights)
        mean = weights.mean_bgr
        logging.info("initialised %s from %s (%s weights)", loaded, init, weights.kind)
    else:
        logging.warning("config.model.init_weights is empty: VGG16 starts from random weights "
                        "(the paper starts from VGG-Face, %s)", VGGFACE_FILE)
    return model, mean


def trainable_model(model: keras.Model) -> keras.Model:
    """The model `fit` trains: VGG16 trains as it is (see mini_xception.trainable_model)."""
    return model


def copy_weights(src: keras.Model, dst: keras.Model) -> None:
    """Copies the weights of `trainable_model`'s result back (the same model here)."""
    if src is not dst:
        dst.set_weights(src.get_weights())


def save(model: keras.Model, path: str, *, mean_bgr: Sequence[float],
         class_names: Optional[Sequence[str]] = None) -> None:
    """Writes the fine-tuned model as the .h5 file `load` reads (`save_weights`)."""
    save_weights(model, path, mean_bgr=mean_bgr, class_names=class_names)
