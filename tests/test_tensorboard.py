"""TensorBoard output of training, read back from the event files: train scalars every
`log_every` steps, dev loss terms and table scalars, curve images, HParams written once."""

import glob
import os

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.plugins.hparams import plugin_data_pb2

from ast_net import train_lib
from ast_net.configs import debug

TERMS = ("total", "label", "trend", "local", "global", "siamese")


def _events(event_dir):
    """{tag: [(step, summary value)]} of every event file in `event_dir` (not sub-folders)."""
    out = {}
    for path in sorted(glob.glob(os.path.join(event_dir, "events.out.tfevents.*"))):
        for e in tf.compat.v1.train.summary_iterator(path):
            for v in e.summary.value:
                out.setdefault(v.tag, []).append((e.step, v))
    return out


def _scalar(value) -> float:
    return float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") else value.simple_value


@pytest.fixture(scope="module")
def run(toy_dataset, tmp_path_factory):
    wd = str(tmp_path_factory.mktemp("tb"))
    c = debug.get_config()
    c.data.data_dir = toy_dataset
    c.train.num_steps = 12
    c.train.steps_per_loop = 6
    c.train.log_every = 4
    c.train.eval_every = 12
    c.train.checkpoint_every = 12
    c.train.eval_loss_batches = 2
    c.train.learning_rate = 3e-3
    c.loss.warmup_steps = 0
    c.seed = 7
    result = train_lib.train_and_evaluate(c, wd)
    return wd, c, result


def test_train_scalars_every_log_every_steps(run):
    wd, _, result = run
    ev = _events(os.path.join(wd, "tensorboard", "train"))
    # log_every 4, loops of 6 steps: points at 4, 6 (end of a fit call), 8, 12.
    for term in TERMS:
        assert [s for s, _ in ev[f"loss/{term}"]] == [4, 6, 8, 12], term
    assert [s for s, _ in ev["learning_rate"]] == [4, 6, 8, 12]
    assert _scalar(ev["learning_rate"][-1][1]) == pytest.approx(3e-3)
    assert all(_scalar(v) > 0 for _, v in ev["steps_per_second"])
    # The last point is the mean over steps 9..12 and is what train_and_evaluate returns.
    assert _scalar(ev["loss/total"][-1][1]) == pytest.approx(result["losses"]["total"], rel=1e-6)
    # With every term on, total = label + 10 (trend + local + global) + 1000 siamese.
    last = {t: _scalar(ev[f"loss/{t}"][-1][1]) for t in TERMS}
    assert last["total"] == pytest.approx(
        last["label"] + 10 * (last["trend"] + last["local"] + last["global"])
        + 1000 * last["siamese"], rel=1e-4)


def test_dev_losses_table_scalars_and_curve_images(run):
    wd, _, result = run
    ev = _events(os.path.join(wd, "tensorboard", "dev"))
    for term in TERMS:
        assert [s for s, _ in ev[f"loss/{term}"]] == [12], term
    for dim in ("valence", "arousal"):
        for stat in ("max_cc", "min_cc", "mean_cc", "mean_ccc", "pooled_ccc", "rmse",
                     "cc_undefined"):
            assert f"dev/{dim}/{stat}" in ev, (dim, stat)
        mx, mn, mean = (_scalar(ev[f"dev/{dim}/{s}"][0][1]) for s in ("max_cc", "min_cc",
                                                                     "mean_cc"))
        # 3 dev videos: the mean lies between the extremes, which differ; TensorBoard holds
        # the numbers the evaluation returned.
        assert mn <= mean <= mx and mn < mx
        assert (mx, mn) == pytest.approx((result["dev"][f"{dim}/max_cc"],
                                          result["dev"][f"{dim}/min_cc"]), rel=1e-6)
        assert _scalar(ev[f"dev/{dim}/rmse"][0][1]) > 0
        assert _scalar(ev[f"dev/{dim}/mean_cc"][0][1]) == pytest.approx(
            result["dev"][f"{dim}/mean_cc"], rel=1e-6)
    assert result["dev"]["loss/total"] == pytest.approx(_scalar(ev["loss/total"][0][1]))
    # The toy dev split has 3 videos: 3 PNGs (encoded image strings after width and height).
    (step, image), = ev["dev/curves"]
    strings = tf.make_ndarray(image.tensor)
    assert step == 12 and len(strings) == 2 + 3
    width, height = int(strings[0]), int(strings[1])
    pixels = tf.io.decode_png(strings[2]).numpy()
    assert pixels.shape[:2] == (height, width) and width > height > 100
    assert np.ptp(pixels) > 0  # Not a blank image.
    assert "dev00, dev01, dev02" in image.metadata.summary_description


def test_hparams_written_once_with_the_config(run, tmp_path):
    wd, config, _ = run
    ev = _events(os.path.join(wd, "tensorboard"))
    values = [v for vs in ev.values() for _, v in vs
              if v.metadata.plugin_data.plugin_name == "hparams"]
    starts = []
    for v in values:
        data = plugin_data_pb2.HParamsPluginData.FromString(v.metadata.plugin_data.content)
        if data.HasField("session_start_info"):
            starts.append(data.session_start_info.hparams)
    assert len(starts) == 1
    hp = starts[0]
    assert hp["loss/siamese_weight"].number_value == 1000.0
    assert hp["loss/trend_weight"].number_value == 10.0
    assert hp["loss/terms"].string_value == "La + T + Lo + G + S"
    assert hp["loss/label"].string_value == "mse"
    assert hp["model/lstm_units"].string_value == "16,8"
    assert hp["train/learning_rate"].number_value == pytest.approx(3e-3)
    assert hp["seed"].number_value == 7
    # A second call (a resumed run) adds no second hparams record.
    train_lib.write_hparams(os.path.join(wd, "tensorboard"), config)
    assert len(glob.glob(os.path.join(wd, "tensorboard", "events.out.tfevents.*"))) == 1
    # Ablation rows say which terms are on.
    config = debug.get_config()
    config.loss.trend_weight = config.loss.siamese_weight = 0.0
    config.loss.label = "ccc"
    hp = train_lib.hparams_of(config)
    assert hp["loss/terms"] == "La + Lo + G" and hp["loss/label"] == "ccc"
