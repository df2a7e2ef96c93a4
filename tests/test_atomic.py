"""ast_net.atomic: the final name holds the old file or the whole new one, never a half file."""

import json
import os
import subprocess
import sys

import pytest

from ast_net import atomic


def test_success_replaces_and_leaves_no_temporary(tmp_path):
    final = tmp_path / "a.json"
    final.write_text("old")
    atomic.write_json(str(final), {"b": 1, "a": [1, 2]})
    assert json.loads(final.read_text()) == {"a": [1, 2], "b": 1}
    assert os.listdir(tmp_path) == ["a.json"]


def test_failure_keeps_old_file_and_removes_temporary(tmp_path):
    final = tmp_path / "a.csv"
    final.write_text("old,1\n")
    with pytest.raises(OSError):
        with atomic.open(str(final), "w") as f:
            f.write("new,2\n")
            raise OSError(28, "No space left on device")
    assert final.read_text() == "old,1\n"
    assert os.listdir(tmp_path) == ["a.csv"]


def test_path_for_writers_that_open_files_themselves(tmp_path):
    final = tmp_path / "v.bin"
    with atomic.path(str(final), fsync=True) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path)  # Same folder: the rename is atomic.
        assert not os.path.exists(final)
        with open(tmp, "wb") as f:
            f.write(b"\x00\x01")
    assert final.read_bytes() == b"\x00\x01"


def test_remove_leftovers_of_dead_processes_only(tmp_path):
    # A temporary file of a process killed with kill -9, and one of a live process.
    code = ("import os, sys; from ast_net import atomic; "
            "t = atomic.temporary_name(sys.argv[1]); open(t, 'w').write('x'); "
            "os.kill(os.getpid(), 9)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "dead.csv")], check=False)
    live = atomic.temporary_name(str(tmp_path / "live.csv"))  # This process: alive.
    open(live, "w").write("y")
    dead = [p for p in os.listdir(tmp_path) if p.startswith(".dead.csv.")]
    assert len(dead) == 1
    removed = atomic.remove_leftovers(str(tmp_path))
    assert [os.path.basename(p) for p in removed] == dead
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(live)]


def test_suffix_keeps_the_extension_and_leftovers_still_match(tmp_path):
    final = tmp_path / "ckpt.weights.h5"
    with atomic.path(str(final), suffix=".weights.h5") as tmp:
        assert os.path.basename(tmp) == f".ckpt.{os.getpid()}.tmp.weights.h5"
        with open(tmp, "wb") as f:
            f.write(b"w")
    assert final.read_bytes() == b"w" and os.listdir(tmp_path) == ["ckpt.weights.h5"]
    with pytest.raises(ValueError, match="ending with '.keras'"):
        atomic.temporary_name(str(final), suffix=".keras")
    # A killed writer's file with a kept extension is removed like any other; a live one stays.
    dead = tmp_path / ".model.999999999.tmp.keras"
    dead.write_text("x")
    live = atomic.temporary_name(str(tmp_path / "v.avi"), suffix=".avi")
    open(live, "w").write("y")
    assert atomic.remove_leftovers(str(tmp_path)) == [str(dead)]
    assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(live), "ckpt.weights.h5"])
