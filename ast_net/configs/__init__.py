"""The bundled ml_collections configs, found by name in the installed package.

`--config` of `ast-net-train` / `ast-net-train-cnn` takes either a config file path or the
name of a config file of this folder (`debug`, `default`, `paper`, `ablation`, `cnn_vgg16`,
...), optionally followed by `:<argument>` for `get_config` (`ablation:la_t`). A name is looked
up here, in the package's own folder, so it works from any directory of a pip-installed
package; so does the repository path `ast_net/configs/<name>.py` of the docs when no such file
exists relative to the working directory. `resolve` turns either form into the file to load.
"""

from __future__ import annotations

import os
import pathlib
from typing import List, Optional, Sequence

FOLDER = pathlib.Path(__file__).resolve().parent
CNN_PREFIX = "cnn_"  # the configs of `ast-net-train-cnn`; the others are `ast-net-train`'s


def names(cnn: Optional[bool] = None) -> List[str]:
    """The bundled config names, sorted: all, only the CNN ones (`cnn=True`) or the others."""
    out = sorted(p.stem for p in FOLDER.glob("*.py") if not p.stem.startswith("_"))
    if cnn is None:
        return out
    return [n for n in out if n.startswith(CNN_PREFIX) == cnn]


def path(name: str) -> str:
    """The file of the bundled config `name`."""
    return str(FOLDER / f"{name}.py")


def resolve(spec: str, allowed: Optional[Sequence[str]] = None) -> str:
    """The `path[:argument]` to load for a `--config` value: a bundled name or a file path.

    Args:
      spec: `name`, `name:argument`, `path/to/config.py` or `path/to/config.py:argument`.
      allowed: the bundled names this binary accepts (default: all of them).
    Returns:
      An existing file's path, with `:argument` appended when one was given.
    Raises:
      ValueError: one line: an unknown name (listing the bundled ones) or a missing file.
    """
    allowed = list(names() if allowed is None else allowed)
    file, sep, arg = spec.partition(":")
    listed = ", ".join(allowed)
    if not file:
        raise ValueError(f"expected a bundled config name ({listed}) or a config file path, "
                         f"got {spec!r}")
    looks_like_path = file.endswith(".py") or "/" in file or os.sep in file
    if not looks_like_path and file in allowed:
        return f"{path(file)}{sep}{arg}"
    given = pathlib.Path(file).expanduser()
    if given.is_file():
        return f"{given}{sep}{arg}"
    if given.exists():
        raise ValueError(f"{file} is not a config file (a .py file with get_config())")
    if looks_like_path:
        name = given.stem
        # The docs' repository path, run from another directory: the installed file.
        if name in allowed and os.path.normpath(file) == os.path.join("ast_net", "configs",
                                                                      f"{name}.py"):
            return f"{path(name)}{sep}{arg}"
        raise ValueError(f"No such file {file!r} (from {os.getcwd()}); expected a config file "
                         f"or the name of a bundled config: {listed}")
    if file in names():
        raise ValueError(f"config {file!r} is not one this binary trains; expected a config "
                         f"file path or one of: {listed}")
    raise ValueError(f"unknown config name {file!r}; expected a config file path or the name "
                     f"of a bundled config: {listed}")
