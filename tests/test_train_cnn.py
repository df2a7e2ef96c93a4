"""ast-net-train-cnn on a synthetic fer2013.csv: the real training path (TFDS, augmentation,
checkpoints, resume, export) lowers the loss, resumes, and writes weights load_backbone reads."""

import json
import os

import h5py
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
    assert 0.0 <= metrics["public_test_accuracy"] <= 1.0
    assert metrics["export"] == os.path.join(workdir, "mini_xception_fer2013.keras")
    after = _cross_entropy(backbones.load_backbone("mini_xception", metrics["export"]),
                           fer_dirs)
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
    with open(os.path.join(workdir, "checkpoints", "state.json")) as f:
        assert json.load(f) == {"loops_done": 2}
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
