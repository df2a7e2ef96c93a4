"""Bad input to the binaries is one `error:` line on stderr and exit status 2, never a traceback:
config files that cannot be loaded, and a feature TFRecord whose second record lacks a key."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from ast_net import train_lib
from ast_net.configs import debug

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# TensorFlow's C++ logging (glog style, e.g. "I0000 00:00:17.. 123 port.cc:153] ...", and the
# second line of its CPU-instructions notice) and absl's "WARNING: All log messages before
# absl::InitializeLog() ..." are not ours to judge.
_TF_LOG = re.compile(r"^([IWEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\] |WARNING: All log messages before "
                     r"absl::InitializeLog|To enable the following instructions: .* rebuild "
                     r"TensorFlow with the appropriate compiler flags\.$)")


def _run(module, *args):
    # As a user runs it: TensorFlow's default log level, so its log lines are on.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=180, env=env)


def _our_lines(stderr):
    return [ln for ln in stderr.splitlines() if ln.strip() and not _TF_LOG.match(ln)]


def _assert_one_error_line(out, *expected):
    assert out.returncode == 2, out.stderr[-3000:]
    assert "Traceback" not in out.stderr
    lines = _our_lines(out.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def test_config_file_that_does_not_exist(tmp_path):
    out = _run("ast_net.train", "--config=ast_net/configs/nope.py", f"--workdir={tmp_path}")
    _assert_one_error_line(out, "--config=ast_net/configs/nope.py", "No such file")


def test_ablation_row_that_does_not_exist(tmp_path):
    out = _run("ast_net.train", "--config=ast_net/configs/ablation.py:bogus",
               f"--workdir={tmp_path}")
    line = _assert_one_error_line(out, "--config=ast_net/configs/ablation.py:bogus",
                                  "unknown ablation row 'bogus'")
    assert "la_t_lo_g_s" in line  # the rows it could have been


def _write_second_record_without(path, key, split):
    """Two 60-frame feature records (D = 4); the second ('v1') has no `key`."""
    import tensorflow as tf

    from ast_net.data import schema

    examples = []
    for k in range(2):
        t = np.arange(60)
        va = np.stack([np.sin(t / 9 + k), np.cos(t / 7 + k)], -1) * 0.5
        examples.append(schema.make_sequence_example(
            video_id=f"v{k}", fps=25.0, timestamps=t / 25.0, face_present=np.ones(60, int),
            valence=va[:, 0], arousal=va[:, 1], label_mask=np.ones(60, int), split=split,
            features=np.concatenate([va, np.zeros((60, 2))], -1)))
    del examples[1].feature_lists.feature_list[key]
    with tf.io.TFRecordWriter(str(path)) as w:
        for ex in examples:
            w.write(ex.SerializeToString())
    return str(path)


@pytest.fixture(scope="module")
def bad_data(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    files = {split: _write_second_record_without(d / f"{split}-00000-of-00001.tfrecord",
                                                 "frame/valence", split)
             for split in ("train", "test")}
    return str(d), files


def test_train_on_a_file_whose_second_record_lacks_a_key(bad_data, tmp_path):
    data_dir, files = bad_data
    out = _run("ast_net.train", "--config=ast_net/configs/debug.py", f"--workdir={tmp_path}",
               f"--config.data.data_dir={data_dir}")
    line = _assert_one_error_line(out)
    assert line == (f"error: {files['train']}: record 2 (video 'v1'): missing the per-frame "
                    f"key 'frame/valence'")
    assert not os.path.exists(tmp_path / "checkpoints")  # found before any training step


def test_evaluate_on_a_file_whose_second_record_lacks_a_key(bad_data, toy_dataset, tmp_path):
    data_dir, files = bad_data
    wd = str(tmp_path / "wd")
    config = debug.get_config()  # A real (tiny) checkpoint with D = 4, as the bad records.
    config.data.data_dir = toy_dataset
    config.train.num_steps = config.train.checkpoint_every = config.train.steps_per_loop = 2
    config.train.eval_every = 1000
    train_lib.train_and_evaluate(config, wd)
    out = _run("ast_net.evaluate", f"--workdir={wd}", "--split=test", f"--data_dir={data_dir}")
    line = _assert_one_error_line(out)
    assert line == (f"error: {files['test']}: record 2 (video 'v1'): missing the per-frame "
                    f"key 'frame/valence'")
