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
