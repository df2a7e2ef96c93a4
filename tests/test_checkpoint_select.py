"""Which checkpoint is read: --step latest / best / a number, and the best dev checkpoint that
training keeps in checkpoints/best/ beside the latest ones."""

import glob
import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from ast_net import errors, export_lib, inference, train_lib, training_run
from ast_net.configs import debug

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _dev_scalars(wd, tag):
    """{step: value} of a dev TensorBoard scalar."""
    out = {}
    for path in glob.glob(os.path.join(wd, "tensorboard", "dev", "events.out.tfevents.*")):
        for e in tf.compat.v1.train.summary_iterator(path):
            for v in e.summary.value:
                if v.tag == tag:
                    out[e.step] = float(tf.make_ndarray(v.tensor))
    return out


@pytest.fixture(scope="module")
def two_runs(toy_dataset, tmp_path_factory):
    """Run A: 20 steps, dev evaluation every 10 (the best one is kept). Run B: resumed to 50
    without a dev split, so the best checkpoint stays one of A's while the latest-retention
    (3 checkpoints) moves on to 30, 40, 50."""
    wd = str(tmp_path_factory.mktemp("select") / "wd")
    c = debug.get_config()
    c.data.data_dir = toy_dataset
    c.train.num_steps = 20
    c.train.steps_per_loop = 10
    c.train.checkpoint_every = 10
    c.train.eval_every = 10
    c.loss.warmup_steps = 0
    train_lib.train_and_evaluate(c, wd)
    with open(os.path.join(wd, "checkpoints", "best", "best.json")) as f:
        best_after_a = json.load(f)
    c.train.num_steps = 50
    c.data.eval_split = ""
    train_lib.train_and_evaluate(c, wd)
    return wd, best_after_a


def test_best_is_the_argmax_of_the_dev_mean_cc(two_runs):
    wd, best = two_runs
    val = _dev_scalars(wd, "dev/valence/mean_cc")
    aro = _dev_scalars(wd, "dev/arousal/mean_cc")
    assert sorted(val) == [10, 20]
    means = {s: (val[s] + aro[s]) / 2 for s in val}
    top = max(means, key=means.get)
    assert best["step"] == top and best["metric"] == "mean_cc"
    assert best["score"] == pytest.approx(means[top], abs=1e-6)


def test_best_survives_the_latest_retention_and_every_step_resolves(two_runs):
    wd, best = two_runs
    b = best["step"]
    latest = sorted(int(os.path.basename(p)[5:-6]) for p in
                    glob.glob(os.path.join(wd, "checkpoints", "ckpt-*.index")))
    assert latest == [30, 40, 50]
    assert training_run.resolve_checkpoint(wd, "best") == (
        os.path.join(wd, "checkpoints", "best", f"ckpt-{b}"), b)
    assert training_run.load_temporal(wd, "best")[3] == b
    assert training_run.load_temporal(wd, str(b))[3] == b  # found in best/
    assert training_run.load_temporal(wd, 40)[3] == 40
    assert training_run.load_temporal(wd)[3] == 50
    net_b = training_run.load_temporal(wd, "best")[0]
    net_50 = training_run.load_temporal(wd, "latest")[0]
    assert not np.allclose(net_b.get_weights()[-2], net_50.get_weights()[-2])
    with pytest.raises(errors.UserError) as e:
        training_run.load_temporal(wd, 25)
    assert str(e.value) == (f"{wd}: no checkpoint of step 25; available steps: "
                            f"{b}, 30, 40, 50; best = step {b}")
    # predict / realtime load through inference.load_head: the same resolution.
    with pytest.raises(errors.UserError, match="no checkpoint of step 25"):
        inference.load_head(wd, step="25")
    exported = export_lib.export(wd, os.path.join(wd, "serving"), backbone="none", step="best")
    assert exported.step == b


@pytest.mark.parametrize("value,expected", [
    (None, "latest"), ("latest", "latest"), ("", "latest"), (" Best ", "best"), ("40", 40),
    (40, 40), ("0", 0)])
def test_parse_step(value, expected):
    assert training_run.parse_step(value) == expected


@pytest.mark.parametrize("value", ["-1", "ten", "4.5", 4.5, "last"])
def test_parse_step_rejects(value):
    with pytest.raises(errors.UserError, match="--step must be a step number, 'latest' or"):
        training_run.parse_step(value)


def test_best_keeper_keeps_one_best_checkpoint(tmp_path):
    wd = str(tmp_path)
    net = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    step = tf.Variable(0, dtype=tf.int64)
    keeper = training_run.BestKeeper(wd, "mean_cc", model=net, step=step)
    best_dir = os.path.join(wd, "checkpoints", "best")

    def scores(v, a):
        return {"valence/mean_cc": v, "arousal/mean_cc": a, "valence/mean_ccc": 0.9,
                "arousal/mean_ccc": 0.9}

    def record():
        with open(os.path.join(best_dir, "best.json")) as f:
            return json.load(f)

    assert keeper.update(scores(0.5, 0.3), 10)
    assert record() == {"step": 10, "metric": "mean_cc", "score": pytest.approx(0.4)}
    assert not keeper.update(scores(0.2, 0.2), 20)      # worse: nothing written
    assert not keeper.update(scores(float("nan"), 0.9), 30)  # undefined CC never wins
    assert training_run.checkpoint_steps(best_dir) == [10]
    assert keeper.update(scores(0.6, 0.6), 40)
    assert training_run.checkpoint_steps(best_dir) == [40]   # the superseded best is gone
    assert sorted(os.listdir(best_dir)) == [
        "best.json", "ckpt-40.data-00000-of-00001", "ckpt-40.index"]
    # A resumed run knows the score to beat; another metric starts afresh.
    assert not training_run.BestKeeper(wd, "mean_cc", model=net, step=step).update(
        scores(0.55, 0.55), 50)
    assert training_run.BestKeeper(wd, "mean_ccc", model=net, step=step).update(
        scores(0.0, 0.0), 60)
    assert record()["metric"] == "mean_ccc" and record()["step"] == 60
    assert not training_run.BestKeeper(wd, "", model=net, step=step).update(scores(1, 1), 70)
    assert math.isnan(training_run.best_score({"valence/mean_cc": 0.5}, "mean_cc"))


def _run(module, *args):
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=180)


@pytest.mark.slow  # Real binaries end to end, over 20 s.
def test_evaluate_binary_step_flag(two_runs):
    wd, best = two_runs
    out = _run("ast_net.evaluate", f"--workdir={wd}", "--split=test", "--step=best",
               f"--out_dir={wd}/eval_best")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Mean CC" in out.stdout
    bad = _run("ast_net.evaluate", f"--workdir={wd}", "--split=test", "--step=7")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1] == (
        f"error: {wd}: no checkpoint of step 7; available steps: {best['step']}, 30, 40, 50; "
        f"best = step {best['step']}")


def test_predict_step_needs_a_checkpoint(tmp_path):
    out = _run("ast_net.predict", f"--video={tmp_path}/x.mp4", f"--out_dir={tmp_path}/out",
               "--step=best")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        "error: --step picks a checkpoint of --workdir; give --workdir")
