"""ast-net-train-cnn on a synthetic fer2013.csv: the real training path (TFDS, augmentation,
checkpoints, resume, export) lowers the loss, resumes, and writes weights load_backbone reads;
the mixed precision and XLA switches train, checkpoint and resume too; the binary's bad input
is one error line."""

import json
import math
import os
import subprocess
import sys

import h5py
import keras
import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from ast_net import errors, train_cnn_lib
from ast_net.configs import cnn_debug
from ast_net.data import fer2013
from ast_net.models import backbones


@pytest.fixture(scope="module")
def fer_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("fer")
    fer2013.write_synthetic_csv(str(root / "manual" / "fer2013.csv"), (64, 24, 8), seed=0)
    return str(root / "tfds"), str(root / "manual")


def _config(fer_dirs, **train):
    config = cnn_debug.get_config()
    config.data.data_dir, config.data.manual_dir = fer_dirs
    config.train.update(train)
    return config


def _cross_entropy(net, data_dir):
    """Mean -log p(label) over the un-augmented train split, computed in numpy."""
    images, labels = zip(*fer2013.load("train", data_dir=data_dir[0],
                                       manual_dir=data_dir[1]).as_numpy_iterator())
    probs = net.probs(np.stack(images)).numpy()
    return float(-np.log(probs[np.arange(len(labels)), np.array(labels)]).mean())


def test_augment_is_seeded_and_identity_when_switched_off():
    image = np.random.default_rng(0).integers(0, 256, (48, 48, 1), dtype=np.uint8)
    off = ml_collections.ConfigDict(dict(flip=False, max_rotation_deg=0.0, max_shift=0.0,
                                         max_zoom=0.0, max_brightness=0.0, max_contrast=0.0))
    np.testing.assert_array_equal(train_cnn_lib.augment(image, [1, 2], off).numpy(), image)
    aug = cnn_debug.get_config().augment
    a = train_cnn_lib.augment(image, [3, 4], aug).numpy()
    ds = tf.data.Dataset.from_tensors((image, tf.constant([3, 4], tf.int64)))
    b = next(iter(ds.map(lambda x, s: train_cnn_lib.augment(x, s, aug)))).numpy()
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.uint8 and a.shape == (48, 48, 1) and not np.array_equal(a, image)


def test_mini_xception_fine_tuning_lowers_the_loss(fer_dirs, tmp_path):
    workdir = str(tmp_path / "mini")
    config = _config(fer_dirs, num_steps=20, steps_per_loop=10)
    config.backbone = "mini_xception"
    before = _cross_entropy(backbones.load_backbone("mini_xception"), fer_dirs)
    metrics = train_cnn_lib.train_and_evaluate(config, workdir, verbose=0)
    assert metrics["resumed_after_loop"] == 0
    losses = metrics["history"]["loss"]
    assert len(losses) == 2 and losses[1] < losses[0]
    assert metrics["export"] == os.path.join(workdir, "mini_xception_fer2013.keras")
    tuned = backbones.load_backbone("mini_xception", metrics["export"])
    # The reported accuracy is the exported net's on the 24 public-test faces, counted here
    # in numpy (argmax == label) as the oracle (Keras reports it in float32).
    images, labels = zip(*fer2013.load("public_test", data_dir=fer_dirs[0],
                                       manual_dir=fer_dirs[1]).as_numpy_iterator())
    hits = np.argmax(tuned.probs(np.stack(images)).numpy(), axis=1) == np.array(labels)
    assert len(hits) == 24
    assert metrics["public_test_accuracy"] == pytest.approx(hits.mean(), abs=1e-6)
    after = _cross_entropy(tuned, fer_dirs)
    assert after < before - 0.5, (before, after)  # Measured: 4.02 -> 2.70.
    with open(os.path.join(workdir, "metrics.json")) as f:
        assert json.load(f)["public_test_accuracy"] == metrics["public_test_accuracy"]
    assert sorted(os.listdir(os.path.join(workdir, "tensorboard"))) == ["train", "validation"]


def test_vgg16_run_resumes_and_exports_weights_that_load_backbone_reads(fer_dirs, tmp_path):
    workdir = str(tmp_path / "vgg")
    config = _config(fer_dirs, num_steps=1, steps_per_loop=1, batch_size=8)
    first = train_cnn_lib.train_and_evaluate(config, workdir, verbose=0)
    assert first["resumed_after_loop"] == 0 and len(first["history"]["loss"]) == 1
    config.train.num_steps = 2  # Re-running with more steps continues after loop 1.
    metrics = train_cnn_lib.train_and_evaluate(config, workdir, verbose=0)
    assert metrics["resumed_after_loop"] == 1 and len(metrics["history"]["loss"]) == 1
    assert tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")).endswith("ckpt-2")
    path = os.path.join(workdir, "vgg16_fer2013.h5")
    assert metrics["export"] == path and "public_test_accuracy" in metrics
    net = backbones.load_backbone("vgg16", path)
    assert (net.input_size, net.feature_dim, net.probs_model is not None) == (32, 64, True)
    with h5py.File(path) as f:
        np.testing.assert_array_equal(net.feature_model.get_layer("conv5_3").get_weights()[0],
                                      f["conv5_3"]["conv5_3"]["kernel:0"][()])


def test_bad_settings_are_one_clear_line(fer_dirs, tmp_path):
    with pytest.raises(errors.UserError, match="must be a multiple of"):
        train_cnn_lib.train_and_evaluate(_config(fer_dirs, num_steps=15), str(tmp_path))
    config = _config(fer_dirs)
    config.model.init_weights = str(tmp_path / "missing.h5")
    with pytest.raises(errors.UserError, match="missing.h5: no such VGG16 weights file"):
        train_cnn_lib.train_and_evaluate(config, str(tmp_path))


def _spy_on_fit(monkeypatch):
    """The models `keras.Model.fit` is called on (the real fit runs)."""
    models = []
    fit = keras.Model.fit

    def spy(self, *args, **kwargs):
        models.append(self)
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", spy)
    return models


def _check_two_runs(config, workdir, models):
    """Trains 1 step, then resumes to 2; checks losses are finite and the checkpoint is there.
    Returns the models the two runs trained."""
    first = train_cnn_lib.train_and_evaluate(config, workdir, verbose=0)
    assert first["resumed_after_loop"] == 0 and len(models) == 1
    config.train.num_steps = 2
    second = train_cnn_lib.train_and_evaluate(config, workdir, verbose=0)
    assert second["resumed_after_loop"] == 1 and len(models) == 2
    for metrics in (first, second):
        values = [*metrics["history"]["loss"], *metrics["history"]["val_loss"],
                  metrics["public_test_loss"]]
        assert len(values) == 3 and all(math.isfinite(v) for v in values), metrics
    # A tf.train.Checkpoint per loop, named by the loops done (ast_net.training_run's layout).
    latest = tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))
    assert latest.endswith("ckpt-2") and os.path.getsize(latest + ".index") > 0
    assert int(tf.train.load_checkpoint(latest).get_tensor("loops/.ATTRIBUTES/VARIABLE_VALUE")) == 2
    return models


def test_vgg16_mixed_precision_fit_is_finite_checkpoints_and_resumes(fer_dirs, tmp_path,
                                                                     monkeypatch):
    models = _spy_on_fit(monkeypatch)
    workdir = str(tmp_path / "mixed")
    # float16 convolutions are slow on a CPU: 2 faces a step, 4 to evaluate (about 10 s).
    config = _config(fer_dirs, num_steps=1, steps_per_loop=1, batch_size=2,
                     mixed_precision=True)
    config.data.max_eval_examples = 4
    first, second = _check_two_runs(config, workdir, models)
    for model in (first, second):
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        conv = model.get_layer("conv1_1")
        assert conv.dtype_policy.name == "mixed_float16" and conv.kernel.dtype == "float32"
        assert model.get_layer("fc8").compute_dtype == "float16"
        assert model.output.dtype == "float32"  # The softmax stays float32.
    # The resumed run restored the optimizer: its inner step count continued from 1 to 2
    # (no step skipped for an overflow at this seed), with a power-of-two loss scale.
    assert int(second.optimizer.inner_optimizer.iterations) == 2
    scale = float(second.optimizer.dynamic_scale)
    assert scale >= 1 and math.log2(scale).is_integer(), scale
    net = backbones.load_backbone("vgg16", os.path.join(workdir, "vgg16_fer2013.h5"))
    assert net.probs_model.get_layer("conv1_1").get_weights()[0].dtype == np.float32
    np.testing.assert_allclose(net.probs_model.get_layer("conv1_1").get_weights()[0],
                               second.get_layer("conv1_1").get_weights()[0])


def test_mini_xception_xla_fit_is_finite_checkpoints_and_resumes(fer_dirs, tmp_path,
                                                                 monkeypatch):
    models = _spy_on_fit(monkeypatch)
    workdir = str(tmp_path / "xla")
    config = _config(fer_dirs, num_steps=1, steps_per_loop=1, batch_size=4, jit_compile=True)
    config.backbone = "mini_xception"
    config.data.max_eval_examples = 8
    first, second = _check_two_runs(config, workdir, models)
    assert first.jit_compile is True and second.jit_compile is True  # Keras kept XLA on.
    assert int(second.optimizer.iterations) == 2  # Resumed: optimizer state restored.
    net = backbones.load_backbone("mini_xception",
                                  os.path.join(workdir, "mini_xception_fer2013.keras"))
    assert net.feature_dim == 128


def test_binary_bad_input_is_one_error_line_and_exit_2(tmp_path):
    binary = os.path.join(os.path.dirname(sys.executable), "ast-net-train-cnn")
    config = os.path.join(os.path.dirname(cnn_debug.__file__), "cnn_debug.py")
    common = [binary, f"--config={config}", f"--workdir={tmp_path / 'run'}",
              f"--data_dir={tmp_path / 'tfds'}"]
    runs = {
        "no fer2013.csv": (common + [f"--manual_dir={tmp_path / 'nothing'}"],
                           f"error: {tmp_path / 'nothing' / 'fer2013.csv'}: not found"),
        "steps": (common + ["--config.train.num_steps=15"],
                  "error: config.train.num_steps=15 must be a multiple of"),
    }
    for name, (argv, expected) in runs.items():
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 2, (name, proc.stderr[-2000:])
        lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert len(lines) == 1 and lines[0].startswith(expected), (name, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr, name
    assert not (tmp_path / "run").exists()  # Nothing is written before the input is checked.
