"""`--config` takes a bundled config's name or a path, from any directory (issue 10, section 2).

`configs.resolve` is checked in-process; the installed console scripts (`ast-net-train`,
`ast-net-train-cnn` beside the test's Python) are run with a temporary directory as the working
directory, never the repository root, and stopped early by an error that comes only after the
config was loaded with its overrides (a missing data directory, an unknown field).
"""

import os
import subprocess
import sys

import pytest
from absl import flags

from ast_net import config_flag, configs

_BIN = os.path.dirname(sys.executable)
_TRAIN_NAMES = ["ablation", "debug", "default", "paper"]
_CNN_NAMES = ["cnn_debug", "cnn_mini_xception", "cnn_vgg16"]


def test_bundled_names():
    assert configs.names(cnn=False) == _TRAIN_NAMES
    assert configs.names(cnn=True) == _CNN_NAMES
    assert configs.names() == sorted(_TRAIN_NAMES + _CNN_NAMES)


def test_resolve_names_and_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = os.path.join(os.path.dirname(os.path.abspath(configs.__file__)))
    assert configs.resolve("debug") == os.path.join(folder, "debug.py")
    assert configs.resolve("ablation:la_t") == os.path.join(folder, "ablation.py") + ":la_t"
    # The repository path of the docs, from a directory that has no such file.
    assert configs.resolve("ast_net/configs/default.py") == os.path.join(folder, "default.py")
    own = tmp_path / "mine.py"
    own.write_text("def get_config():\n    return {}\n")
    assert configs.resolve("mine.py") == "mine.py"
    assert configs.resolve(f"{own}:x") == f"{own}:x"
    # A bare name is the bundled config even where a file of that name exists.
    (tmp_path / "debug").write_text("")
    assert configs.resolve("debug") == os.path.join(folder, "debug.py")


def test_resolve_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"unknown config name 'nope'; expected a config file "
                                         r"path or the name of a bundled config: ablation, "
                                         r"cnn_debug"):
        configs.resolve("nope")
    with pytest.raises(ValueError, match=r"No such file 'x/nope\.py' \(from .*\); expected"):
        configs.resolve("x/nope.py")
    with pytest.raises(ValueError, match="No such file 'ast_net/configs/nope.py'"):
        configs.resolve("ast_net/configs/nope.py")
    with pytest.raises(ValueError, match=r"'cnn_vgg16' is not one this binary trains; expected "
                                         r"a config file path or one of: ablation, debug, "
                                         r"default, paper$"):
        configs.resolve("cnn_vgg16", configs.names(cnn=False))
    (tmp_path / "folder.py").mkdir()
    with pytest.raises(ValueError, match="folder.py is not a config file"):
        configs.resolve("folder.py")


def _parse(*args):
    """Parses `--config...` args with the binaries' flag on a fresh FlagValues."""
    argv = ["prog", *args]
    fv = flags.FlagValues()
    holder = config_flag.define("Config.", cnn=False, flag_values=fv, sys_argv=argv)
    fv(argv)
    return holder.value


def test_flag_takes_a_name_with_overrides_in_process(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = _parse("--config=debug", "--config.train.num_steps=5")
    assert config.train.num_steps == 5 and config.data.clip_length == 10  # debug's own value
    row = _parse("--config=ablation:la_t", "--config.loss.trend_weight=2.5")
    assert (row.ablation_row, row.loss.trend_weight, row.loss.local_weight) == ("la_t", 2.5, 0.0)


@pytest.mark.parametrize("text,expected", [
    ("import no_such_module_xyz\n", "ModuleNotFoundError: No module named 'no_such_module_xyz'"),
    ("def get_config(:\n", "SyntaxError: "),
    ("def get_config():\n    raise OSError('disk on fire')\n", "disk on fire"),
])
def test_flag_config_file_that_fails_is_one_line(tmp_path, monkeypatch, text, expected):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.py").write_text(text)
    with pytest.raises(flags.IllegalFlagValueError) as e:
        _parse("--config=bad.py", "--config.train.num_steps=5")
    message = str(e.value)
    assert message.startswith("flag --config=bad.py: cannot load config file bad.py (")
    assert expected in message and "\n" not in message, message


def _run(binary, cwd, *args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([os.path.join(_BIN, binary), *args], cwd=cwd, capture_output=True,
                         text=True, timeout=180, env=env)
    assert out.returncode == 2, out.stderr[-3000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and out.stderr.strip().splitlines()[-1] == errors[0], out.stderr
    return errors[0]


@pytest.mark.parametrize("config", ["debug", "ast_net/configs/ablation.py:la_t"])
def test_train_binary_loads_a_bundled_config_from_any_directory(tmp_path, config):
    missing = tmp_path / "no_features"
    line = _run("ast-net-train", tmp_path, f"--config={config}", "--config.train.num_steps=5",
                f"--config.data.data_dir={missing}", f"--workdir={tmp_path / 'wd'}")
    # Only a loaded config with the override applied gets as far as reading the data dir.
    assert line.startswith(f"error: {missing}: directory not found"), line
    assert not (tmp_path / "wd").exists()


def test_train_binary_unknown_name_lists_the_bundled_ones(tmp_path):
    line = _run("ast-net-train", tmp_path, "--config=defualt", "--config.train.num_steps=5",
                f"--workdir={tmp_path / 'wd'}")
    assert line == ("error: bad command-line flag: flag --config=defualt: unknown config name "
                    "'defualt'; expected a config file path or the name of a bundled config: "
                    "ablation, debug, default, paper (see --help)")


def test_train_cnn_binary_bad_override_of_a_bundled_config(tmp_path):
    line = _run("ast-net-train-cnn", tmp_path, "--config=cnn_debug",
                "--config.train.num_stepz=1", f"--workdir={tmp_path / 'wd'}")
    # The suggestion comes from cnn_debug's own fields: the config was found and loaded.
    assert line == ("error: bad command-line flag: no such config field 'num_stepz'; Did you "
                    "mean \"num_steps\" instead of \"num_stepz\"? (see --help)")
