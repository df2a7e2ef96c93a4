"""One atomic write for every output file: a temporary name in the same folder, `os.replace`.

    with atomic.path("out/run.csv") as tmp:      # a path, for writers that open files themselves
        frame.to_csv(tmp)                        # (cv2.VideoWriter, TFRecordWriter, keras.save)
    with atomic.open("out/run.csv", "w") as f:   # or an open file
        f.write(text)
    atomic.write_json("out/info.json", obj)

The temporary file is `.<name>.<pid>.tmp` beside the final one (same file system, so the
rename is atomic); writers that check the extension (Keras `save`, `cv2.VideoWriter`) keep it
with `suffix`: `atomic.path("ckpt.weights.h5", suffix=".weights.h5")` writes
`.ckpt.<pid>.tmp.weights.h5`. On success it is flushed, fsynced (optional) and renamed over
the final name; on any exception (disk full, Ctrl-C, a bad value) it is removed and the final
name is left as it was: a reader sees the old file or the whole new one, never a half file.
`remove_leftovers(folder)` deletes temporary files a killed process (kill -9) left behind.
"""

from __future__ import annotations

import builtins
import contextlib
import glob
import json
import os
import re
from typing import Iterator

_SUFFIX = ".tmp"
# `.<name>.<pid>.tmp`, or `.<stem>.<pid>.tmp<suffix>` when the extension is kept.
_TEMPORARY = re.compile(r"^\..+\.(\d+)\.tmp(\.[^/]+)?$")


def temporary_name(path: str, suffix: str = "") -> str:
    """The temporary name `path` is written under: `.<name>.<pid>.tmp` in the same folder.

    Args:
      path: the final path.
      suffix: an ending of `path` the temporary name keeps (".keras", ".weights.h5", ".avi"):
        `.<stem>.<pid>.tmp<suffix>`, for writers that pick the format by the extension.
    """
    folder, name = os.path.split(os.fspath(path))
    if suffix:
        if not name.endswith(suffix) or name == suffix:
            raise ValueError(f"{path}: expected a name ending with {suffix!r}")
        return os.path.join(folder, f".{name[:-len(suffix)]}.{os.getpid()}{_SUFFIX}{suffix}")
    return os.path.join(folder, f".{name}.{os.getpid()}{_SUFFIX}")


def _remove(tmp: str) -> None:
    try:
        os.remove(tmp)
    except FileNotFoundError:
        pass


@contextlib.contextmanager
def path(final: str, fsync: bool = False, suffix: str = "") -> Iterator[str]:
    """Yields a temporary path; on success it replaces `final`, on failure it is removed.

    Args:
      final: the path the file ends up under.
      fsync: fsync the file before the rename (survives a power cut, not only a crash).
      suffix: an ending of `final` the temporary path keeps (see `temporary_name`).
    """
    final = os.fspath(final)
    tmp = temporary_name(final, suffix)
    try:
        yield tmp
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, final)
    except BaseException:
        _remove(tmp)
        raise


@contextlib.contextmanager
def open(final: str, mode: str = "w", fsync: bool = False, **kwargs):  # noqa: A001
    """Like `builtins.open(final, mode)`, but the file appears under `final` only when the
    block ends without an exception. Text modes default to UTF-8."""
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
    with path(final, fsync=fsync) as tmp:
        with builtins.open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            if fsync:
                os.fsync(f.fileno())


def write_text(final: str, text: str, fsync: bool = False) -> None:
    with open(final, "w", fsync=fsync) as f:
        f.write(text)


def write_json(final: str, obj, fsync: bool = False) -> None:
    """`obj` as indented, key-sorted JSON (a diff-friendly, stable file)."""
    with open(final, "w", fsync=fsync) as f:
        json.dump(obj, f, indent=2, sort_keys=True)


def remove_leftovers(folder: str, recursive: bool = False) -> list[str]:
    """Removes temporary files of this module left by a killed process; returns them.

    Only files named `.<name>.<pid>.tmp` (or `.<stem>.<pid>.tmp<suffix>`) whose process is
    gone are removed, so a live writer (in this process or another) keeps its file.
    """
    pattern = os.path.join(os.fspath(folder), "**" if recursive else "", ".*" + _SUFFIX + "*")
    removed = []
    for tmp in glob.glob(pattern, recursive=recursive):
        name = os.path.basename(tmp)
        m = _TEMPORARY.match(name)
        if not (m or name.endswith(_SUFFIX)) or (m and _alive(int(m.group(1)))):
            continue
        _remove(tmp)
        removed.append(tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # A killed process not yet reaped (zombie, state Z) writes nothing any more.
        with builtins.open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
