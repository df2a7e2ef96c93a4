"""Every console script of setup.py explains itself: `--help`, run as a user runs it (the
installed script, from a folder that is not the repository), lists the binary's own flags with
their help text, and nothing else reaches stderr."""

import ast
import importlib.util
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)


def _console_scripts():
    with open(os.path.join(REPO, "setup.py")) as f:
        return re.findall(r'"(ast-net-[\w-]+)=([\w.]+):run"', f.read())


def _text(node):
    """The literal text of a help argument (of an f-string, the text before its first {})."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and isinstance(node.values[0], ast.Constant):
        return node.values[0].value
    return ""


def _defined_flags(module):
    """(flag name, is boolean, help text) of every flag the binary's source defines, read
    from the source itself: its `flags.DEFINE_*` calls and those of the binaries-only
    helpers it calls (`engine_flags.define`, `beam_flags.define`, `config_flag.define`)."""
    path = importlib.util.find_spec(module).origin  # ast_net.pipelines is pipelines/.
    tree = ast.parse(open(path).read())
    found = []
    for call in ast.walk(tree):
        if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Attribute):
            continue
        owner = getattr(call.func.value, "id", "")
        kind = call.func.attr
        if owner == "flags" and kind.startswith("DEFINE_") and kind != "DEFINE_alias":
            help_node = call.args[3 if kind == "DEFINE_enum" else 2] if len(call.args) > (
                3 if kind == "DEFINE_enum" else 2) else None
            help_node = next((k.value for k in call.keywords if k.arg == "help"), help_node)
            found.append((call.args[0].value, kind in ("DEFINE_bool", "DEFINE_boolean"),
                          _text(help_node) if help_node is not None else ""))
        elif owner == "engine_flags" and kind == "define":
            found += [f for f in _defined_flags("ast_net.engine_flags") if f[0] != "batch_size"]
            batch_help = next(k.value for k in call.keywords if k.arg == "batch_size_help")
            found.append(("batch_size", False, _text(batch_help)))
        elif owner == "beam_flags" and kind == "define":
            from ast_net import beam_flags

            each = next(k.value for k in call.keywords if k.arg == "each_worker")
            found += [("runner", False, beam_flags.RUNNERS_HELP),
                      ("direct_num_workers", False, "Parallel workers of the DirectRunner (>1 "
                       f"runs worker processes, {_text(each)}")]
        elif owner == "config_flag" and kind == "define":
            found.append(("config", False, _text(call.args[0])))
    return found


def _squeeze(text):
    return "".join(text.split())  # absl wraps help at 80 columns (also after a hyphen).


SCRIPTS = _console_scripts()


def test_setup_lists_the_binaries():
    assert len(SCRIPTS) >= 11 and ("ast-net-predict", "ast_net.predict") in SCRIPTS


@pytest.mark.slow  # 11 binaries, 8 of which import TensorFlow: over 20 s on 2 cores.
def test_every_console_script_lists_its_own_flags(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    procs = {}
    for i in range(0, len(SCRIPTS), 4):  # Four at a time: the machine has 2 cores.
        batch = {name: subprocess.Popen([os.path.join(BIN, name), "--help"], cwd=tmp_path,
                                        env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True)
                 for name, _ in SCRIPTS[i:i + 4]}
        procs.update({name: (p, *p.communicate(timeout=300)) for name, p in batch.items()})
    for name, module in SCRIPTS:
        proc, out, err = procs[name]
        assert proc.returncode == 0, (name, err[-2000:])
        assert err.strip() == "", (name, err[-2000:])  # No TensorFlow start-up lines.
        assert "Try --helpfull" in out, name
        defined = _defined_flags(module)
        assert len(defined) >= 2, (name, defined)
        for flag, boolean, help_text in defined:
            shown = f"--[no]{flag}:" if boolean else f"--{flag}:"
            assert shown in out, (name, flag, out[-3000:])
            assert _squeeze(help_text[:60]) in _squeeze(out), (name, flag, help_text)


def test_an_old_flag_name_works_with_a_one_line_warning(capsys):
    from absl import flags

    from ast_net import flag_names

    values = flags.FlagValues()
    holder = flags.DEFINE_string("backbone_weights", None, "Weights.", flag_values=values)
    flag_names.deprecated_alias("weights", "backbone_weights", flag_values=values)
    values(["prog", "--weights=/w.h5"])
    assert holder.value == "/w.h5"
    assert capsys.readouterr().err == ("warning: --weights is deprecated; use "
                                       "--backbone_weights\n")
    values.unparse_flags()
    values(["prog", "--backbone_weights=/v.h5"])
    assert holder.value == "/v.h5" and capsys.readouterr().err == ""
