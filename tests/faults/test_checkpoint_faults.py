"""Checkpoint faults injected for real: a deleted or garbled CheckpointManager state file,
truncated checkpoint files, bad config values and a work directory a failed run left behind.

One work directory is trained once per module (debug config, checkpoints at steps 10, 20, 30);
every test works on its own copy.
"""

import glob
import os
import shutil
import subprocess
import sys

import pytest

from ast_net import config_check, errors, evaluate_lib, export_lib, train_lib, training_run
from ast_net.configs import ablation, debug, default, paper

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = "ckpt-{}.data-00000-of-00001"


def _config(data_dir, num_steps=30):
    c = debug.get_config()
    c.data.data_dir = data_dir
    c.train.num_steps = num_steps
    c.train.steps_per_loop = 10
    c.train.checkpoint_every = 10
    c.data.eval_split = ""  # No dev evaluation: faster, and these tests are about files.
    c.loss.warmup_steps = 0
    return c


@pytest.fixture(scope="module")
def trained(toy_dataset, tmp_path_factory):
    wd = str(tmp_path_factory.mktemp("faults") / "wd")
    assert train_lib.train_and_evaluate(_config(toy_dataset), wd)["step"] == 30
    return wd


@pytest.fixture
def wd(trained, tmp_path):
    copy = str(tmp_path / "wd")
    shutil.copytree(trained, copy)
    return copy


def _ckpt(wd, *parts):
    return os.path.join(wd, "checkpoints", *parts)


def _steps(wd):
    return sorted(int(os.path.basename(p)[5:-6]) for p in glob.glob(_ckpt(wd, "ckpt-*.index")))


def _truncate(path):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)


def _read(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.mark.parametrize("state", ["missing", "garbled"])
def test_lost_state_file_resumes_from_newest_and_deletes_nothing_old(wd, toy_dataset, state,
                                                                      capsys):
    before = {s: _read(_ckpt(wd, DATA.format(s))) for s in (10, 20, 30)}
    if state == "missing":
        os.remove(_ckpt(wd, "checkpoint"))
    else:
        with open(_ckpt(wd, "checkpoint"), "w") as f:
            f.write("model_checkpoint_path: {{{ not a proto\n")
    result = train_lib.train_and_evaluate(_config(toy_dataset, num_steps=40), wd)
    assert result["step"] == 40
    assert "resuming from step 30" in capsys.readouterr().out  # not from step 0
    # The old checkpoints were never listed in a readable state file: none is deleted or
    # rewritten (max_to_keep = 3 would otherwise have deleted ckpt-10 now).
    assert _steps(wd) == [10, 20, 30, 40]
    for s, data in before.items():
        assert _read(_ckpt(wd, DATA.format(s))) == data
    assert training_run.load_temporal(wd)[3] == 40


def test_intact_state_file_keeps_the_usual_retention(wd, toy_dataset):
    train_lib.train_and_evaluate(_config(toy_dataset, num_steps=50), wd)
    # max_to_keep = 3: ckpt-10 and ckpt-20, listed by the state file, were superseded.
    assert _steps(wd) == [30, 40, 50]


@pytest.mark.parametrize("damaged_file", [DATA.format(30), "ckpt-30.index"])
def test_truncated_newest_checkpoint_falls_back_with_a_warning(wd, damaged_file, caplog):
    _truncate(_ckpt(wd, damaged_file))
    with caplog.at_level("WARNING"):
        _, _, _, step = training_run.load_temporal(wd)
    assert step == 20
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and damaged_file in warnings[0], warnings
    assert "using ckpt-20 instead" in warnings[0]


def test_evaluate_export_and_train_use_the_previous_checkpoint(wd, toy_dataset, tmp_path,
                                                               capsys):
    _truncate(_ckpt(wd, DATA.format(30)))
    _, summary, _ = evaluate_lib.evaluate_workdir(wd, "test")
    assert list(summary.index) == ["valence", "arousal"]
    exported = export_lib.export(wd, str(tmp_path / "serving"), backbone="none")
    assert exported.step == 20
    # Training resumes from step 20 and writes a whole ckpt-30 over the damaged one.
    result = train_lib.train_and_evaluate(_config(toy_dataset, num_steps=30), wd)
    assert result["step"] == 30
    assert "resuming from step 20" in capsys.readouterr().out
    assert training_run.damage(_ckpt(wd, "ckpt-30")) == ""
    assert training_run.load_temporal(wd)[3] == 30


def _run(module, *args):
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=180)


@pytest.mark.slow  # Real binaries end to end, over 20 s.
def test_evaluate_binary_warns_then_falls_back(wd):
    _truncate(_ckpt(wd, DATA.format(30)))
    out = _run("ast_net.evaluate", f"--workdir={wd}", "--split=test")
    assert out.returncode == 0, out.stderr[-2000:]
    warning = [ln for ln in out.stderr.splitlines() if "damaged checkpoint" in ln]
    assert len(warning) == 1 and DATA.format(30) in warning[0], out.stderr[-2000:]
    assert "Mean CC" in out.stdout


def test_every_checkpoint_damaged_is_one_error_line(wd, toy_dataset):
    for s in (10, 20, 30):
        _truncate(_ckpt(wd, DATA.format(s)))
    for call in (lambda: training_run.load_temporal(wd),
                 lambda: train_lib.train_and_evaluate(_config(toy_dataset, num_steps=40), wd)):
        with pytest.raises(errors.UserError, match="every checkpoint is damaged"):
            call()
    assert _steps(wd) == [10, 20, 30]  # Training refused: nothing was overwritten.
    out = _run("ast_net.export", f"--workdir={wd}", f"--export_dir={wd}/serving")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "every checkpoint is damaged" in last


@pytest.mark.parametrize("field,value,expected", [
    ("train.batch_size", 0, "config.train.batch_size: must be an integer >= 1, got 0"),
    ("model.lstm_units", (0,), "config.model.lstm_units: must be a non-empty list"),
    ("data.clip_length", 1, "config.data.clip_length: must be an integer >= 2, got 1"),
    ("data.frame_step", 0, "config.data.frame_step: must be an integer >= 1, got 0"),
    ("train.learning_rate", -0.1, "config.train.learning_rate: must be a finite number > 0"),
    ("loss.trend_weight", -1.0, "config.loss.trend_weight: must be a finite number >= 0"),
    ("loss.trend_normalizer", "2M", "config.loss.trend_normalizer: must be one of '2N'"),
    ("train.distribute", "tpu", "config.train.distribute: must be one of 'auto'"),
    ("train.best_metric", "loss", "config.train.best_metric: must be one of 'mean_cc'"),
    ("loss.num_intervals", 11, "config.loss.num_intervals: must be <= config.data.clip_length "
                               "(10) (each interval needs a frame), got 11"),
    ("model.dropout", 1.0, "config.model.dropout: must be a finite number >= 0 and < 1, got 1.0"),
])
def test_bad_config_value_writes_nothing(toy_dataset, tmp_path, field, value, expected):
    config = _config(toy_dataset)
    section, key = field.split(".")
    config[section][key] = value
    wd = tmp_path / "wd"
    with pytest.raises(errors.UserError) as e:
        train_lib.train_and_evaluate(config, str(wd))
    assert expected in str(e.value)
    assert not wd.exists()


def test_bundled_configs_pass_and_all_weights_off_fails():
    for config in [default.get_config(), paper.get_config(), debug.get_config()] + [
            ablation.get_config(row) for row in ablation.ROWS]:
        assert config_check.problems(config) == []
    config = debug.get_config()
    for term in ("label", "trend", "local", "global", "siamese"):
        config.loss[f"{term}_weight"] = 0.0
    assert config_check.problems(config) == [
        "config.loss: every term weight is 0, so there is nothing to train; switch at least "
        "one of label/trend/local/global/siamese_weight on"]


def test_bad_config_binary_is_one_line_per_problem(toy_dataset, tmp_path):
    wd = tmp_path / "wd"
    out = _run("ast_net.train", "--config=ast_net/configs/debug.py", f"--workdir={wd}",
               f"--config.data.data_dir={toy_dataset}", "--config.train.batch_size=0",
               "--config.model.lstm_units=(0,)")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()[-2:]
    assert lines[0].startswith("error: config.model.lstm_units: ")
    assert lines[1] == "error: config.train.batch_size: must be an integer >= 1, got 0"
    assert not wd.exists()


def test_workdir_without_checkpoint_accepts_a_new_config(toy_dataset, tmp_path, wd):
    # What a run that failed before its first checkpoint leaves: run info of another config.
    fresh = str(tmp_path / "fresh")
    other = _config(toy_dataset)
    other.model.lstm_units = (7,)
    training_run.save_run_info(fresh, other, 4, "test")
    result = train_lib.train_and_evaluate(_config(toy_dataset, num_steps=10), fresh)
    assert result["step"] == 10
    assert list(training_run.load_run_info(fresh)[0].model.lstm_units) == [16, 8]
    # With a checkpoint the work directory still refuses another architecture.
    with pytest.raises(errors.UserError, match="holds a checkpoint of another config"):
        train_lib.train_and_evaluate(other, wd)
