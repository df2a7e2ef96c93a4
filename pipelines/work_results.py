"""The `.work/` folder of a batch job's output directory and its per-item result files.

Every batch binary keeps what it has finished under `out_dir/.work/` so that a re-run skips
it: prepare-videos its per-video parts (`manifest.py`), extract-features one result per output
shard (`.work/features/<shard>.json`), predict-videos one per video
(`.work/predict/<name>.json`). A result is a JSON object written atomically and fsynced
(`ast_net.atomic`): it exists whole or not at all, so a killed job never leaves a half
"done" marker. An unreadable or non-object result reads as None (the item is redone).
"""

from __future__ import annotations

import json
import os
from typing import Optional

from ast_net import atomic

WORK = ".work"


def work_dir(out_dir) -> str:
    return os.path.join(out_dir, WORK)


def result_path(out_dir, kind: str, name: str) -> str:
    """Where the result of item `name` of a `kind` of job goes: `.work/<kind>/<name>.json`."""
    return os.path.join(out_dir, WORK, kind, name + ".json")


def read_result(out_dir, kind: str, name: str) -> Optional[dict]:
    """The result of item `name`, None when there is none or it is unreadable."""
    try:
        with open(result_path(out_dir, kind, name)) as f:
            result = json.load(f)
    except (OSError, ValueError):
        return None
    return result if isinstance(result, dict) else None


def write_result(out_dir, kind: str, name: str, result: dict) -> None:
    """Writes the result of item `name` atomically (fsynced), creating `.work/<kind>/`."""
    path = result_path(out_dir, kind, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic.write_text(path, json.dumps(result, indent=1, sort_keys=True) + "\n", fsync=True)
