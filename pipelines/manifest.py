"""Files of a prepare-videos output folder: per-video parts, atomic writes, shards, manifest.

Layout of `out_dir`:

    out_dir/
      train-00000-of-00004.tfrecord ...   final shards (written as `.<name>.<pid>.tmp`, renamed)
      manifest.json                       one entry per video + totals (written atomically)
      .work/parts/<key>.tfrecord          the records of one finished video
      .work/parts/<key>.json              its manifest entry, written last: the "done" marker
      .work/progress/<key>                frames decoded so far (for the progress display)

A video counts as done only when its `.json` exists and was made from the same inputs with the
same processing options (its `fingerprint`: options, absolute paths, the video's size and
mtime, the label files' content; `video_records.input_fingerprint`); everything is written
under a temporary name and renamed (`ast_net.atomic`), so a killed run leaves no half file
under a final name (only `.<name>.<pid>.tmp` leftovers, which `remove_leftovers` deletes on
the next run) and a re-run simply redoes the unfinished or changed videos. Shards are a
deterministic function of the done parts: video j (in sorted item order) of a split goes to
shard j mod N, its chunks in order.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import pathlib
import re
from typing import Dict, Iterable, Iterator, List, Optional

import tensorflow as tf
from ast_net.pipelines import work_results

from ast_net import atomic

MANIFEST = "manifest.json"
WORK = work_results.WORK
_SHARD_RE = re.compile(r"^(?P<split>[A-Za-z0-9_]+)-\d{5}-of-\d{5}\.tfrecord$")


def item_key(video_id: str) -> str:
    """A file-name-safe unique key for a video id (readable prefix + short hash)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", video_id.replace("/", "__"))[:80]
    return f"{safe}-{hashlib.sha1(video_id.encode()).hexdigest()[:8]}"


def work_dir(out_dir) -> pathlib.Path:
    return pathlib.Path(out_dir) / WORK


def part_path(out_dir, key: str) -> pathlib.Path:
    return work_dir(out_dir) / "parts" / f"{key}.tfrecord"


def entry_path(out_dir, key: str) -> pathlib.Path:
    return work_dir(out_dir) / "parts" / f"{key}.json"


def progress_path(out_dir, key: str) -> pathlib.Path:
    return work_dir(out_dir) / "progress" / key


def shard_name(split: str, index: int, num_shards: int) -> str:
    return f"{split}-{index:05d}-of-{num_shards:05d}.tfrecord"


def file_sha256(path) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def remove_leftovers(out_dir) -> List[str]:
    """Deletes the temporary files a killed run left in `out_dir` and `.work/`; returns them."""
    removed = []
    for folder in (pathlib.Path(out_dir), work_dir(out_dir) / "parts",
                   work_dir(out_dir) / "progress"):
        if folder.is_dir():
            removed += atomic.remove_leftovers(str(folder))
    return removed


def write_text_atomic(path, text: str) -> None:
    """Writes `text` to `path` atomically and fsynced (`ast_net.atomic`)."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(str(path), text, fsync=True)


def write_json_atomic(path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")


@contextlib.contextmanager
def atomic_record_writer(path) -> Iterator[tf.io.TFRecordWriter]:
    """A TFRecordWriter on a temporary name, renamed to `path` only if the block succeeds."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic.path(str(path)) as tmp:
        writer = tf.io.TFRecordWriter(tmp)
        try:
            yield writer
        finally:
            writer.close()


def load_done_entry(out_dir, key: str, fingerprint: str) -> Optional[dict]:
    """The saved entry of a finished video made with these options, else None."""
    path = entry_path(out_dir, key)
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if entry.get("fingerprint") != fingerprint:
        return None
    if entry.get("chunks", 0) and not part_path(out_dir, key).exists():
        return None
    return entry


def read_part(out_dir, key: str) -> Iterator[bytes]:
    for record in tf.data.TFRecordDataset(str(part_path(out_dir, key))).as_numpy_iterator():
        yield bytes(record)


def shard_plan(items_by_split: Dict[str, List[str]],
               num_shards: Dict[str, int]) -> Dict[str, int]:
    """{video key: shard index}: video j of split s (in the given order) -> shard j mod N_s."""
    plan = {}
    for split, keys in items_by_split.items():
        for j, key in enumerate(keys):
            plan[key] = j % num_shards[split]
    return plan


def write_shard(out_dir, split: str, index: int, num_shards: int,
                keys_in_order: Iterable[str]) -> int:
    """Writes one shard from the parts of `keys_in_order` (ok videos only); returns records."""
    final = pathlib.Path(out_dir) / shard_name(split, index, num_shards)
    count = 0
    with atomic_record_writer(final) as writer:
        for key in keys_in_order:
            for record in read_part(out_dir, key):
                writer.write(record)
                count += 1
    return count


def remove_stale_shards(out_dir, splits: Iterable[str], num_shards: int) -> List[str]:
    """Deletes shards of these splits left by an earlier run with another shard count."""
    removed = []
    splits = set(splits)
    for path in sorted(pathlib.Path(out_dir).glob("*.tfrecord")):
        m = _SHARD_RE.match(path.name)
        if m and m.group("split") in splits and not path.name.endswith(
                f"-of-{num_shards:05d}.tfrecord"):
            path.unlink()
            removed.append(path.name)
    return removed
