"""Fault: a client sends the SavedModel inputs of the wrong shape (issue 11, item 10).

TF Serving (and `tf.saved_model.load(...).signatures[...]`) does not enforce a signature's
declared shape, so before the shape checks a wrong rank or channel count failed in a reshape deep
in the graph, zero frames in the LSTM's TensorList, and rank-2 features were silently taken as
one clip. Each signature now checks its input in the graph: one InvalidArgumentError that says
what it expected and what it got. The exports are loaded back with `tf.saved_model.load`, as a
server loads them, and called with the bad inputs.
"""

import numpy as np
import pytest
import tensorflow as tf

from ast_net import export_lib
from ast_net.models import backbones, temporal

D = 128  # The embedded mini-Xception's feature size.


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """(faces + features + video signatures, features-only export with N fixed to 4)."""
    import keras

    keras.utils.set_random_seed(0)
    model = temporal.build_temporal_model(D, lstm_units=(5, 4))
    folder = tmp_path_factory.mktemp("serving_inputs")
    full = export_lib.build_archive(model, 1.0, backbones.load_backbone("mini_xception"),
                                    window=(4, 3))
    full.write_out(str(folder / "full"), verbose=False)
    fixed = export_lib.build_archive(model, 1.0, None, clip_length=4, window=(4, 3))
    fixed.write_out(str(folder / "fixed"), verbose=False)
    return tf.saved_model.load(str(folder / "full")), tf.saved_model.load(str(folder / "fixed"))


FACES = "uint8 [batch, N, H, W, 3] (aligned RGB face crops; batch, N, H, W >= 1), got shape]"
VIDEO_FACES = ("uint8 [batch, T, H, W, 3] (aligned RGB face crops of T consecutive video frames;"
               " batch, T, H, W >= 1), got shape]")
FEATURES = f"float32 [batch, N, {D}] (batch, N >= 1), got shape]"
VIDEO_FEATURES = (f"float32 [batch, T, {D}] (T consecutive video frames of one face; batch, "
                  f"T >= 1), got shape]")

CASES = [  # (export, signature, input shape, dtype, expected text, the shape as printed)
    ("full", "faces", (2, 64, 64, 3), np.uint8, FACES, "[2 64 64 3]"),            # no N axis
    ("full", "faces", (1, 2, 64, 64, 1), np.uint8, FACES, "[1 2 64 64 1]"),       # gray
    ("full", "faces", (1, 0, 64, 64, 3), np.uint8, FACES, "[1 0 64 64 3]"),       # no frames
    ("full", "serving_default", (1, 2, 64, 64), np.uint8, FACES, "[1 2 64 64]"),
    ("full", "video_faces", (3, 64, 64, 3), np.uint8, VIDEO_FACES, "[3 64 64 3]"),
    ("full", "video_faces", (1, 0, 64, 64, 3), np.uint8, VIDEO_FACES, "[1 0 64 64 3]"),
    ("full", "features", (5, D), np.float32, FEATURES, f"[5 {D}]"),               # rank 2
    ("full", "features", (1, 5, 64), np.float32, FEATURES, "[1 5 64]"),           # wrong D
    ("full", "features", (0, 5, D), np.float32, FEATURES, f"[0 5 {D}]"),          # empty batch
    ("full", "video_features", (5, D), np.float32, VIDEO_FEATURES, f"[5 {D}]"),
    ("full", "video_features", (1, 0, D), np.float32, VIDEO_FEATURES, f"[1 0 {D}]"),
    ("fixed", "features", (1, 5, D), np.float32,
     f"float32 [batch, 4, {D}] (batch, N >= 1), got shape]", f"[1 5 {D}]"),      # N is fixed
]


@pytest.mark.parametrize("export,signature,shape,dtype,expected,printed", CASES)
def test_bad_input_shape_says_what_was_expected(served, export, signature, shape, dtype,
                                                expected, printed):
    model = served[0] if export == "full" else served[1]
    fn = model.signatures[signature]
    name = list(fn.structured_input_signature[1])[0]
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        fn(**{name: tf.zeros(shape, tf.as_dtype(dtype))})
    message = str(info.value)
    assert f"[{name}: expected {expected} {printed}" in message, message[-1500:]
    assert "Reshape" not in message and "TensorList" not in message


def test_good_inputs_still_answer(served):
    full, fixed = served
    faces = np.random.default_rng(0).integers(0, 256, (1, 7, 64, 64, 3), dtype=np.uint8)
    for signature in ("faces", "video_faces"):
        out = full.signatures[signature](**{signature: tf.constant(faces)})
        assert out["valence"].shape == (1, 7) and out["arousal"].shape == (1, 7)
    out = fixed.signatures["features"](features=tf.zeros([2, 4, D]))
    assert out["valence"].shape == (2, 4)
