"""Tests of ast-net-export: a tiny trained workdir exported, then served in a fresh process.

The fresh process imports TensorFlow only, with `keras` and `ast_net` blocked from importing,
so the SavedModel cannot lean on project code or Keras objects. Its answers on real aligned face
clips (the astronaut photo of scikit-image, eyes put on the template by `faces.align`) must
match the Keras backbone + temporal network computed here within 1e-5.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from tensorflow.core.protobuf import saved_model_pb2

from ast_net import errors, export_lib, inference_heads, training_run

PY = sys.executable
SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
FEATURE_SCALE = 0.5
ASTRONAUT_EYES = ((204.0, 100.0), (245.0, 102.0))  # DESIGN section 5.


def _versions(export_dir):
    return sorted(n for n in os.listdir(export_dir) if n.isdigit())


def _binary(*args, **kwargs):
    return subprocess.Popen([PY, "-m", "ast_net.export", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.fixture(scope="module")
def workdir(tiny_workdir):
    """A workdir trained for 2 steps on 128-d "mini_xception" features (scale 0.5)."""
    return tiny_workdir


@pytest.fixture(scope="module")
def exported(workdir, tmp_path_factory):
    export_dir = str(tmp_path_factory.mktemp("serving"))
    return export_dir, export_lib.export(workdir, export_dir)


@pytest.fixture(scope="module")
def clips_and_reference(workdir, tmp_path_factory):
    """Aligned astronaut face clips (.npy files) and what Keras predicts for them."""
    import skimage.data

    from ast_net.faces import align
    from ast_net.models import backbones

    image = skimage.data.astronaut()
    rng = np.random.default_rng(1)

    def clip(frames, size):  # Eye detections jittered by about 2 px, as a tracker gives them.
        (lx, ly), (rx, ry) = ASTRONAUT_EYES
        out = []
        for _ in range(frames):
            j = rng.normal(scale=2.0, size=4)
            out.append(align.align_face(image, (lx + j[0], ly + j[1]), (rx + j[2], ry + j[3]),
                                        size).crop)
        return np.stack(out)

    inputs = {"faces64": np.stack([clip(10, 64), clip(10, 64)]),  # [2, 10, 64, 64, 3]
              "faces80": clip(7, 80)[None]}                      # [1, 7, 80, 80, 3] (resized)
    backbone = backbones.load_backbone("mini_xception")
    temporal, _, _, _ = training_run.load_temporal(workdir)
    expected = {}
    for key in ("faces64", "faces80"):
        faces = inputs[key]
        feats = backbone.features(faces.reshape((-1,) + faces.shape[2:])).numpy()
        feats = feats.reshape(faces.shape[:2] + (-1,))
        expected[key] = np.clip(temporal(feats * FEATURE_SCALE).numpy(), -1.0, 1.0)
        if key == "faces64":
            inputs["features"] = feats
            expected["features"] = expected[key]
    # 40 consecutive frames (more than N·Δt = 30 of the debug config): what ast-net-predict's
    # streaming head gives each frame, phases merged and clipped, is what video_features gives.
    video = rng.normal(size=(1, 40, 128)).astype(np.float32)
    head = inference_heads.TemporalHead(temporal, 10, 3, feature_scale=FEATURE_SCALE,
                                        merge=True, value_range=(-1.0, 1.0))
    inputs["video"] = video
    expected["video"] = np.concatenate(
        head.step_batch([(t, t / 25.0, [0], video[0, t][None]) for t in range(40)]))[None]
    folder = tmp_path_factory.mktemp("clips")
    for key, value in inputs.items():
        np.save(folder / f"{key}.npy", value)
    return str(folder), expected


_SERVE = textwrap.dedent("""
    import sys
    sys.modules["keras"] = sys.modules["tf_keras"] = sys.modules["ast_net"] = None  # blocked
    import numpy as np
    import tensorflow as tf

    model_dir, folder = sys.argv[1:]
    model = tf.saved_model.load(model_dir)
    calls = {"serving_default": ("faces", "faces64"), "faces": ("faces", "faces80"),
             "features": ("features", "features"), "video_features": ("video_features", "video")}
    out = {}
    for signature, (name, array) in calls.items():
        fn = model.signatures[signature]
        assert list(fn.structured_input_signature[1]) == [name], fn.structured_input_signature
        result = fn(**{name: tf.constant(np.load(f"{folder}/{array}.npy"))})
        assert sorted(result) == ["arousal", "valence"], sorted(result)
        out[signature] = np.stack([result["valence"].numpy(), result["arousal"].numpy()], -1)
    np.savez(f"{folder}/served.npz", **out)
    print("served", sorted(model.signatures))
""")


def test_fresh_tensorflow_process_matches_keras(exported, clips_and_reference):
    export_dir, result = exported
    folder, expected = clips_and_reference
    proc = subprocess.run([PY, "-c", _SERVE, result.path, folder], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert ("served ['faces', 'faces_jpeg', 'features', 'metadata', 'serving_default', "
            "'video_faces', 'video_features']" in proc.stdout)
    served = np.load(os.path.join(folder, "served.npz"))
    assert served["serving_default"].shape == (2, 10, 2)
    assert served["faces"].shape == (1, 7, 2)
    np.testing.assert_allclose(served["serving_default"], expected["faces64"], atol=1e-5)
    np.testing.assert_allclose(served["faces"], expected["faces80"], atol=1e-5)
    np.testing.assert_allclose(served["features"], expected["features"], atol=1e-5)
    assert served["video_features"].shape == (1, 40, 2)
    np.testing.assert_allclose(served["video_features"], expected["video"], atol=1e-5)
    # Not a trivially constant model: the outputs vary across frames and clips.
    assert np.ptp(expected["faces64"][..., 0]) > 1e-4 and np.ptp(expected["faces64"][..., 1]) > 1e-4


def test_layout_metadata_and_saved_model_cli(exported):
    export_dir, result = exported
    assert result.version == 1 and "1" in _versions(export_dir)
    assert result.signatures == ("serving_default", "faces", "features", "video_faces",
                                 "video_features", "faces_jpeg", "metadata")
    for part in ("saved_model.pb", "variables/variables.index", export_lib.METADATA):
        assert os.path.isfile(os.path.join(result.path, part)), part
    with open(os.path.join(result.path, export_lib.METADATA)) as f:
        meta = json.load(f)
    assert (meta["step"], meta["backbone"], meta["feature_dim"], meta["face_size"]) == (
        2, "mini_xception", 128, 64)
    assert meta["feature_scale"] == FEATURE_SCALE and meta["default_signature"] == "faces"
    assert meta["merge_phases"] is True and meta["label_range"] == [-1.0, 1.0]

    proc = subprocess.run([SAVED_MODEL_CLI, "show", "--dir", result.path, "--all"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout
    default = text.split("signature_def['serving_default']:")[1]
    assert default.index("inputs['faces']") < default.index("DT_UINT8") < \
        default.index("(-1, -1, -1, -1, 3)")
    features = text.split("signature_def['features']:")[1].split("signature_def[")[0]
    assert "inputs['features']" in features and "(-1, -1, 128)" in features
    video = text.split("signature_def['video_features']:")[1].split("signature_def[")[0]
    assert "inputs['video_features']" in video and "(-1, -1, 128)" in video
    video_faces = text.split("signature_def['video_faces']:")[1].split("signature_def[")[0]
    assert "inputs['video_faces']" in video_faces and "(-1, -1, -1, -1, 3)" in video_faces
    for name in ("valence", "arousal"):
        assert f"outputs['{name}']" in default and f"outputs['{name}']" in features
        assert f"outputs['{name}']" in video


@pytest.mark.slow  # Real binaries end to end, over 20 s.
def test_killed_export_leaves_no_version_and_reexport_adds_one(workdir, exported):
    export_dir, _ = exported
    before = set(os.listdir(export_dir))
    versions = _versions(export_dir)
    new = str(int(versions[-1]) + 1)
    # Features only: the cheapest export to kill (the build and rename code is the same).
    proc = _binary("--workdir", workdir, "--export_dir", export_dir, "--backbone", "none")
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if set(os.listdir(export_dir)) - before:  # The hidden build directory appeared.
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "the export ended before it could be killed"
    leftovers = set(os.listdir(export_dir)) - before
    assert len(leftovers) == 1 and next(iter(leftovers)).startswith(f".export-{new}-")
    assert _versions(export_dir) == versions  # TF Serving sees no half-written version.

    # Re-export: the next version, here the features signature only with N fixed to 10.
    proc = _binary("--workdir", workdir, "--export_dir", export_dir, "--backbone", "none",
                   "--clip_length", "10")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert f"as {os.path.join(export_dir, new)} (version {new})" in out
    assert "serving_default (= features), features, video_features, metadata" in out
    assert "left from an interrupted export" in err
    assert _versions(export_dir) == versions + [new]
    proto = saved_model_pb2.SavedModel.FromString(
        open(os.path.join(export_dir, new, "saved_model.pb"), "rb").read())
    signatures = proto.meta_graphs[0].signature_def
    assert sorted(k for k in signatures if not k.startswith("__")) == [
        "features", "metadata", "serving_default", "video_features"]
    default = signatures["serving_default"]
    assert list(default.inputs) == ["features"] and sorted(default.outputs) == ["arousal",
                                                                                  "valence"]
    assert [d.size for d in default.inputs["features"].tensor_shape.dim] == [-1, 10, 128]
    with pytest.raises(errors.UserError, match=f"version {new} exists already"):
        export_lib.export(workdir, export_dir, version=int(new))


@pytest.mark.slow  # Real binaries end to end, over 20 s.
def test_bad_input_is_one_line_and_exit_2(workdir, tmp_path):
    # Without the TF_CPP_MIN_LOG_LEVEL of conftest: the binaries' entry point (ast_net/startup)
    # must keep TensorFlow's C++ start-up lines (oneDNN, CUDA stub, cuInit) off stderr; what
    # is left besides the error is at most the one INFO line naming the devices.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    runs = {
        "not a workdir": _binary("--workdir", str(tmp_path), "--export_dir", str(tmp_path / "e"),
                                 env=env),
        "no weights": _binary("--workdir", workdir, "--export_dir", str(tmp_path / "e"),
                              "--backbone_weights", str(tmp_path / "missing.hdf5"), env=env),
    }
    expected = {"not a workdir": "not an ast-net-train work directory",
                "no weights": "missing.hdf5: cannot read the weights file"}
    for name, proc in runs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 2, (name, err[-2000:])
        lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and expected[name] in lines[0], (name, err[-2000:])
        rest = [line for line in err.splitlines() if line.strip() and line not in lines]
        assert len(rest) <= 1 and all("] devices: CPU only" in line for line in rest), \
            (name, err[-2000:])
        assert "Traceback" not in err
    assert not (tmp_path / "e").exists() or not os.listdir(tmp_path / "e")


def test_backbone_choice():
    info = {"backbone": "mini_xception", "feature_dim": 128}
    synthetic = {"backbone": "synthetic", "feature_dim": 128}
    with pytest.raises(errors.UserError, match="vgg16 backbone needs --backbone_weights"):
        export_lib.resolve_backbone({"backbone": "vgg16", "feature_dim": 4096})
    with pytest.raises(errors.UserError, match="trained on mini_xception features"):
        export_lib.resolve_backbone(info, "vgg16")
    with pytest.raises(errors.UserError, match="gives 128-d features but the workdir was "
                                               "trained on 64-d"):
        export_lib.resolve_backbone({"backbone": "synthetic", "feature_dim": 64}, "mini_xception")
    with pytest.raises(errors.UserError, match="say which CNN with --backbone"):
        export_lib.resolve_backbone(synthetic, None, "w.h5")
    with pytest.raises(errors.UserError, match="with --backbone=none"):
        export_lib.resolve_backbone(info, "none", "w.h5")
    assert export_lib.resolve_backbone(synthetic) is None
    assert export_lib.resolve_backbone(info, "none") is None
    assert export_lib.resolve_backbone(synthetic, "mini_xception").feature_dim == 128
