"""Fixtures shared by the fault-injection tests."""

import os

import pytest


@pytest.fixture
def unwritable_dir(tmp_path):
    """An existing folder in which creating a file fails with EACCES, for real."""
    if os.geteuid() == 0:  # Root ignores permission bits: sysfs refuses new files to root too.
        path = "/sys/kernel"
    else:
        path = str(tmp_path / "read-only")
        os.mkdir(path)
        os.chmod(path, 0o555)
    with pytest.raises(PermissionError):  # The premise: nobody can write there.
        open(os.path.join(path, "probe.txt"), "w").close()
    yield path
    if os.geteuid() != 0:
        os.chmod(path, 0o755)


@pytest.fixture
def log_lines():
    """`log_lines(stderr)`: the lines of a binary's stderr once TensorFlow has started, less
    the one line that says which devices it runs on (`ast_net.startup` logs it once per run):
    that line must be there exactly once; everything else is returned for an exact check."""
    def log_lines(stderr: str):
        lines = stderr.strip().splitlines()
        devices = [line for line in lines if "] devices: " in line]
        assert len(devices) == 1, stderr[-2000:]
        return [line for line in lines if line not in devices]

    return log_lines
