"""End-to-end tests of training, resuming, evaluation and the binaries on tiny real TFRecords."""

import glob
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from ast_net import evaluate_lib, train_lib, training_run
from ast_net.configs import debug

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _config(data_dir, **train):
    c = debug.get_config()
    c.data.data_dir = data_dir
    c.train.learning_rate = 1e-2
    for k, v in train.items():
        c.train[k] = v
    return c


def _tags(event_dir):
    import tensorflow as tf

    tags = set()
    for path in glob.glob(os.path.join(event_dir, "events.out.tfevents.*")):
        for e in tf.compat.v1.train.summary_iterator(path):
            for v in e.summary.value:
                tags.add(v.tag)
    return tags


@pytest.fixture(scope="module")
def trained(toy_dataset, tmp_path_factory):
    """A work directory trained for 60 steps with the label loss (the "La" row)."""
    wd = str(tmp_path_factory.mktemp("trained"))
    config = _config(toy_dataset, num_steps=60, eval_every=60, steps_per_loop=20)
    for term in ("trend", "local", "global", "siamese"):  # the "La" row of Table 1
        config.loss[f"{term}_weight"] = 0.0
    return wd, train_lib.train_and_evaluate(config, wd)


def test_train_learns_logs_and_evaluates(trained):
    wd, result = trained
    assert result["step"] == 60
    train_tags = _tags(os.path.join(wd, "tensorboard", "train"))
    assert {"loss/total", "loss/label"} <= train_tags
    dev_tags = _tags(os.path.join(wd, "tensorboard", "dev"))
    assert {"dev/valence/mean_cc", "dev/arousal/mean_ccc", "dev/curves"} <= dev_tags
    # The toy features carry valence/arousal linearly: 60 steps of the label loss must find
    # them (about 0.93 measured; chance is 0).
    assert result["dev"]["valence/mean_cc"] > 0.7 and result["dev"]["arousal/mean_cc"] > 0.7

    per_video, summary, csv_path = evaluate_lib.evaluate_workdir(wd, "test")
    rows = pd.read_csv(csv_path)
    assert list(rows.columns) == ["video", "dimension", "CC", "CCC", "RMSE", "frames",
                                  "CC undefined"]
    assert len(rows) == 3 * 2
    # Mean CC in the table is the mean of the per-video CCs written to the CSV.
    val = rows[rows.dimension == "valence"]["CC"]
    assert summary.loc["valence", "Mean CC"] == pytest.approx(val.mean(), abs=1e-4)
    assert summary.loc["valence", "Max CC"] == pytest.approx(val.max(), abs=1e-4)
    preds = pd.read_csv(os.path.join(wd, "eval", "test_predictions", "test00.csv"))
    assert len(preds) == 160 and preds["frame"].tolist() == list(range(160))


def test_resume_matches_uninterrupted_run(toy_dataset, tmp_path):
    cfg = _config(toy_dataset, num_steps=20, eval_every=1000, steps_per_loop=10)
    full_wd, split_wd = str(tmp_path / "full"), str(tmp_path / "split")
    train_lib.train_and_evaluate(cfg, full_wd)
    tags = _tags(os.path.join(full_wd, "tensorboard", "train"))
    for term in ("total", "label", "trend", "local", "global", "siamese"):
        assert f"loss/{term}" in tags
    first = train_lib.train_and_evaluate(cfg, split_wd, stop_after_steps=10)
    assert first["step"] == 10
    second = train_lib.train_and_evaluate(cfg, split_wd)
    assert second["step"] == 20
    full, _, _, full_step = training_run.load_temporal(full_wd)
    split, _, _, split_step = training_run.load_temporal(split_wd)
    assert full_step == split_step == 20
    for a, b in zip(full.get_weights(), split.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def _train_cmd(data_dir, wd, *extra):
    return [sys.executable, "-m", "ast_net.train", "--config=ast_net/configs/debug.py",
            f"--workdir={wd}", f"--config.data.data_dir={data_dir}", *extra]


@pytest.mark.slow  # Real binaries end to end, over 20 s.
def test_killed_run_resumes_to_the_same_final_step(toy_dataset, tmp_path):
    wd = str(tmp_path / "wd")
    cmd = _train_cmd(toy_dataset, wd, "--config.train.num_steps=60",
                     "--config.train.steps_per_loop=10", "--config.train.checkpoint_every=10",
                     "--config.train.eval_every=1000")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline and not glob.glob(os.path.join(wd, "checkpoints", "*.index")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert glob.glob(os.path.join(wd, "checkpoints", "*.index")), "no checkpoint before kill"
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "resuming from step" in out.stdout
    assert "finished at step 60" in out.stdout


@pytest.mark.slow  # Real binaries end to end, over 20 s.
def test_mirrored_strategy_on_two_logical_cpus(toy_dataset, tmp_path):
    script = f"""
import tensorflow as tf
cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from ast_net import train_lib
from ast_net.configs import debug
c = debug.get_config()
c.data.data_dir = {toy_dataset!r}
c.train.distribute = 'mirrored'
c.train.num_steps = 10
c.train.eval_every = 10
assert train_lib.get_strategy('mirrored').num_replicas_in_sync == 2
r = train_lib.train_and_evaluate(c, {str(tmp_path / 'wd')!r})
import math
assert r['step'] == 10 and math.isfinite(r["losses"]["total"]), r
print('MIRRORED_OK')
"""
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert "MIRRORED_OK" in out.stdout, out.stderr[-3000:]


@pytest.mark.parametrize("extra,expected", [
    (["--config.data.data_dir=/nonexistent/dir"], "/nonexistent/dir: directory not found"),
    (["--config.data.clip_length=500"], "longer than every video"),
])
def test_binary_bad_input_is_one_line(toy_dataset, tmp_path, extra, expected):
    cmd = _train_cmd(toy_dataset, str(tmp_path / "wd"), *extra)
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert expected in out.stderr.strip().splitlines()[-1]


def test_unknown_config_field_is_one_line(toy_dataset, tmp_path):
    cmd = _train_cmd(toy_dataset, str(tmp_path / "wd"), "--config.train.num_stepz=3")
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    assert "num_stepz" in out.stderr


@pytest.mark.slow  # Real binaries end to end, over 20 s.
def test_evaluate_binary_prints_table(trained, tmp_path):
    wd, _ = trained
    out = subprocess.run([sys.executable, "-m", "ast_net.evaluate", f"--workdir={wd}",
                          "--split=test"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Max CC" in out.stdout and "valence" in out.stdout and "arousal" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "ast_net.evaluate",
                          f"--workdir={tmp_path / 'nothing'}"], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "not an ast-net-train work directory" in bad.stderr



def _scalars(event_dir, tag):
    """[(step, value)] of a TensorBoard scalar written with tf.summary.scalar."""
    import tensorflow as tf

    out = []
    for path in sorted(glob.glob(os.path.join(event_dir, "events.out.tfevents.*"))):
        for e in tf.compat.v1.train.summary_iterator(path):
            for v in e.summary.value:
                if v.tag == tag:
                    out.append((e.step, float(tf.make_ndarray(v.tensor))))
    return out


@pytest.mark.slow  # Real binaries end to end, over 20 s.
def test_xla_training_on_cpu(toy_dataset, tmp_path):
    """--config.train.jit_compile=true: the train step really is XLA-compiled (on the CPU)."""
    import tensorflow as tf

    wd = tmp_path / "xla"
    cmd = _train_cmd(toy_dataset, wd, "--config.train.jit_compile=true",
                     "--config.train.num_steps=6", "--config.train.steps_per_loop=3",
                     "--config.train.checkpoint_every=6", "--config.train.eval_every=1000",
                     "--config.loss.warmup_steps=3")  # 3 label-only steps, 3 full-loss steps
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="0")  # TF logs the XLA compilation.
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Compiled cluster using XLA" in out.stderr  # Absent from a jit_compile=false run.
    assert "finished at step 6" in out.stdout
    for term in ("total", "siamese"):
        values = _scalars(str(wd / "tensorboard" / "train"), f"loss/{term}")
        assert [s for s, _ in values] == [3, 6]
        assert all(np.isfinite(v) and v > 0 for _, v in values), values
    assert os.path.basename(tf.train.latest_checkpoint(str(wd / "checkpoints"))) == "ckpt-6"
    _, config, _, step = training_run.load_temporal(str(wd))
    assert step == 6 and config.train.jit_compile is True
