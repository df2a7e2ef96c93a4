"""Aligned-face TFRecords -> per-frame attribute-CNN feature TFRecords (the paper's stage 2 input).

Input: a directory of face records as `ast-net-prepare-videos` writes them
(`{split}-00000-of-000NN.tfrecord`, one `SequenceExample` per video or chunk, JPEG faces in
`frame/face_jpeg`) and its `manifest.json`. Output: the same file names in `out_dir`, each
record copied field for field (context, timestamps, labels, masks, face flags) with the JPEG
list replaced by `frame/features` [T, D] and the context saying `feature_dim`, `face_size` 0
and `backbone`. Frames without a face (`face_present` 0) get zero features and no CNN time; a
JPEG that does not decode is treated as a frame without a face and counted.

The work is an Apache Beam job (`feature_inference`: each shard read and its records taken
apart on a worker, the faces through the backbone with Beam's RunInference in batches of
`batch_size` keyed by shard, record and batch, the records put back together and each output
shard written to a hidden temporary name and renamed when complete, `ast_net.atomic`), on the
runner prepare-videos uses (`beam_pipeline`: DirectRunner with one or several worker
processes, or Dataflow / Flink / Spark with their options; the workers must see in_dir and
out_dir, as prepare-videos' do). The features are the numbers the backbone gives on the
decoded faces, the same with any number of workers, and the shards the same bytes. No reader
sees a partial shard. The input shards are the set `in_dir/manifest.json` names (`shards`;
every `*.tfrecord` when there is no manifest). Each output is tied to its exact input: the
manifest records per shard the input's SHA-256 (re-hashed only when its size, mtime or inode
changed) and a key of the extraction settings; a re-run keeps an output only when both still
match, redoes the others, and deletes output shards the current input set does not name (say, after
prepare-videos ran again with another --num_shards). `out_dir/manifest.json` is the input
manifest plus `files` ({split: [shard names]}: the shards train and evaluate read, only
finished and current ones), a `features` section (backbone, weights, D, per-shard counts and
input fingerprints, failed shards), rewritten atomically before and after the job (a shard
finished by a run killed in between is kept from its result file), and the
preprocessing contract (`ast_net/contract.py`) of the faces completed with the backbone, its
weights fingerprint and D. Faces of another size than the backbone's input (say 224 px faces
for the 64 px mini_xception) are refused with one error line: never a silent resize.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple

import tensorflow as tf
from ast_net.pipelines import beam_pipeline, feature_inference
from ast_net.pipelines import manifest as faces_manifest

from ast_net import atomic, contract, errors
from ast_net.data import schema
from ast_net.models import backbones
from ast_net.progress import bar as progress_bar

MANIFEST = "manifest.json"
_SHARD_RE = re.compile(r"^(?P<split>[A-Za-z0-9_]+)-\d{5}-of-\d{5}\.tfrecord$")


@dataclasses.dataclass
class Summary:
    """What a run did."""
    shards_written: int
    shards_skipped: int
    videos: int
    frames: int
    faces: int
    bad_frames: int
    failed_videos: int
    failed_shards: int
    seconds: float
    manifest_path: str
    problems: List[str] = dataclasses.field(default_factory=list)  # One line per bad shard.
    removed: List[str] = dataclasses.field(default_factory=list)  # Superseded outputs.

    def __str__(self):
        rate = self.faces / self.seconds if self.seconds > 0 else 0.0
        return (f"{self.shards_written} shards written, {self.shards_skipped} already done; "
                f"{self.videos} videos, {self.frames} frames, {self.faces} faces "
                f"({rate:.1f} faces/s), {self.bad_frames} undecodable frames, "
                f"{self.failed_videos} bad records and {self.failed_shards} unreadable shards "
                "skipped; "
                + (f"{len(self.removed)} superseded shards removed; " if self.removed else "")
                + f"manifest {self.manifest_path}")


def list_shards(in_dir: str) -> list:
    """Sorted names of the face-record shards (`*.tfrecord`, hidden files excluded)."""
    if not os.path.isdir(in_dir):
        raise errors.UserError(f"{in_dir}: no such directory of face TFRecords")
    names = sorted(n for n in os.listdir(in_dir)
                   if n.endswith(".tfrecord") and not n.startswith("."))
    if not names:
        raise errors.UserError(
            f"{in_dir}: no *.tfrecord shards; expected the output of ast-net-prepare-videos")
    return names


def input_shards(in_dir: str) -> Dict[str, List[str]]:
    """{split: shard names} to convert: the `shards` that `in_dir/manifest.json` names (what
    prepare-videos wrote last; a name may be missing on disk), else every `*.tfrecord`."""
    names = list_shards(in_dir)
    path = os.path.join(in_dir, MANIFEST)
    if os.path.exists(path):
        try:
            with open(path) as f:
                named = json.load(f).get("shards")
        except (OSError, ValueError, AttributeError):
            named = None
        if isinstance(named, dict) and named:
            return {str(s): sorted(str(n) for n in v) for s, v in sorted(named.items())}
    out: Dict[str, List[str]] = {}
    for name in names:
        m = _SHARD_RE.match(name)
        out.setdefault(m.group("split") if m else name[:-len(".tfrecord")], []).append(name)
    return out


def _input_identity(path: str, known: Optional[dict]) -> dict:
    """size, mtime_ns, inode and SHA-256 of an input shard; the hash is taken from `known`
    (the previous run's record) when size, mtime and inode are unchanged."""
    st = os.stat(path)
    ident = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}
    if isinstance(known, dict) and known.get("sha256") and all(
            known.get(k) == v for k, v in ident.items()):
        ident["sha256"] = known["sha256"]
    else:
        ident["sha256"] = faces_manifest.file_sha256(path)
    return ident


def _write_json_atomic(path: str, obj) -> None:
    atomic.write_text(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")


def _load_manifest(in_dir: str, out_dir: str, fingerprint: dict) -> Tuple[dict, dict]:
    """(the output manifest to fill: the input manifest + a fresh `features` section, the
    previous run's per-shard records {name: stats}). An out_dir made with another backbone,
    D or weights path is refused; an unreadable old manifest just means nothing is reused."""
    out_path = os.path.join(out_dir, MANIFEST)
    previous = {}
    if os.path.exists(out_path):
        try:
            with open(out_path) as f:
                old = json.load(f)
        except (OSError, ValueError):
            old = {}
        features = old.get("features") if isinstance(old, dict) else None
        if isinstance(features, dict):
            made_with = {k: features.get(k) for k in fingerprint}
            if made_with != fingerprint:
                raise errors.UserError(
                    f"{out_path}: this directory holds features made with {made_with}, not "
                    f"{fingerprint}; use another --out_dir")
            if isinstance(features.get("shards"), dict):
                previous = features["shards"]
    manifest = {}
    in_path = os.path.join(in_dir, MANIFEST)
    if os.path.exists(in_path):
        with open(in_path) as f:
            try:
                manifest = json.load(f)
            except json.JSONDecodeError:
                raise errors.UserError(f"{in_path}: not a JSON manifest") from None
        if not isinstance(manifest, dict):
            manifest = {"source": manifest}
    manifest["features"] = dict(fingerprint, source_dir=os.path.abspath(in_dir), shards={},
                                failed_shards={})
    return manifest, previous


def _record_face_size(path: str) -> int:
    """`face_size` of the first record of a face shard (0 when unknown or empty)."""
    for raw in tf.data.TFRecordDataset(path).take(1).as_numpy_iterator():
        try:
            size = tf.train.SequenceExample.FromString(raw).context.feature[schema.FACE_SIZE]
        except Exception:  # noqa: BLE001 - a bad record is reported by the conversion.
            return 0
        return int(size.int64_list.value[0]) if size.int64_list.value else 0
    return 0


def check_faces(in_dir: str, shards: list, net, weights: Optional[str]) -> contract.Contract:
    """The contract of the features about to be made; UserError when the faces do not fit.

    The faces' contract comes from `<in_dir>/manifest.json` (prepare-videos writes it), or,
    for face directories made before contracts, from the records' `face_size`. Faces of another
    size than the backbone's input are refused: resizing them here would feed the CNN crops
    the predictor never makes (it aligns straight to the contract's size).
    """
    faces = contract.read_manifest(in_dir) or contract.Contract()
    size = faces.face_size or _record_face_size(os.path.join(in_dir, shards[0]))
    if size and size != net.input_size:
        raise errors.UserError(
            f"{in_dir}: faces were prepared at {size} px but the {net.name} backbone takes "
            f"{net.input_size} px (a mismatch is an error, never a silent resize): run "
            f"ast-net-prepare-videos again with --face_size={net.input_size} or "
            f"--backbone={net.name}, or extract with the backbone the faces were made for")
    return faces.replace(face_size=size or net.input_size, backbone=net.name,
                         weights=contract.weights_fingerprint(net.name, weights),
                         feature_dim=int(net.feature_dim))


def extract_features(in_dir: str, out_dir: str, *, backbone: str = backbones.DEFAULT,
                     weights: Optional[str] = None, batch_size: int = 0,
                     jit_compile: bool = False, progress: bool = True,
                     runner: str = "DirectRunner", direct_num_workers: int = 1,
                     beam_args: Sequence[str] = ()) -> Summary:
    """Runs the extraction as a Beam job; see the module docstring. Returns a Summary.

    Args:
      batch_size: faces per CNN forward pass; 0: by the device of the worker
        that reads the shard (`feature_inference.device_batch_size`).
      runner, direct_num_workers, beam_args: as prepare-videos (`beam_pipeline.pipeline`).

    Raises:
      errors.UserError: missing or empty in_dir, in_dir == out_dir, records without JPEG faces,
        an out_dir made with another backbone, a missing or wrong weights file.
    """
    if batch_size < 0:
        raise errors.UserError(f"--batch_size must be >= 1 (or 0: by device), got {batch_size}")
    if os.path.abspath(in_dir) == os.path.abspath(out_dir):
        raise errors.UserError(f"{out_dir}: the output directory must differ from --in_dir")
    by_split = input_shards(in_dir)
    split_of = {name: split for split, names in by_split.items() for name in names}
    shards = [n for n in sorted(split_of) if os.path.exists(os.path.join(in_dir, n))]
    if not shards:
        raise errors.UserError(f"{in_dir}: none of the shards its {MANIFEST} names exists "
                               f"({', '.join(sorted(split_of))})")
    net = backbones.load_backbone(backbone, weights)
    os.makedirs(out_dir, exist_ok=True)
    fingerprint = {"backbone": net.name, "feature_dim": net.feature_dim,
                   "weights": os.path.abspath(weights) if weights else None}
    manifest, previous = _load_manifest(in_dir, out_dir, fingerprint)
    for name in split_of:  # Shards a killed run finished after its last manifest.
        result = feature_inference.read_result(out_dir, name)
        if result and result.pop("status", None) == feature_inference.STATUS_OK:
            previous[name] = result
    features_contract = check_faces(in_dir, shards, net, weights)
    manifest[contract.KEY] = features_contract.to_dict()
    manifest_path = os.path.join(out_dir, MANIFEST)
    summary = Summary(0, 0, 0, 0, 0, 0, 0, 0, 0.0, manifest_path)
    start = time.time()
    atomic.remove_leftovers(out_dir)  # Temporary shards of a killed run.
    # What an output depends on besides its input shard: backbone, D, weights (by content,
    # in the contract), the faces' contract and how the faces' JPEGs are decoded (shards made
    # with TF's fast IDCT, before 2026-12-07, are redone).
    settings = hashlib.sha1(json.dumps({"fingerprint": fingerprint, "contract": manifest.get(
        contract.KEY), "face_jpeg_dct": schema.FACE_JPEG_DCT_METHOD}, sort_keys=True,
        default=str).encode()).hexdigest()[:16]
    done, todo = {}, {}
    for name in sorted(split_of):
        in_path = os.path.join(in_dir, name)
        if name not in shards:
            _fail(manifest, summary, name, in_path, "missing (named by the input manifest)")
            continue
        ident = _input_identity(in_path, (previous.get(name) or {}).get("input"))
        old = previous.get(name) or {}
        if (old.get("settings") == settings and (old.get("input") or {}).get("sha256")
                == ident["sha256"] and os.path.exists(os.path.join(out_dir, name))):
            done[name] = dict(old, input=ident)
            summary.shards_skipped += 1
        else:
            todo[name] = ident
    # Publish only outputs that match their inputs, then delete every other output shard of
    # ours (superseded names, stale contents) and its result: a reader of `files` never
    # meets either.
    _publish(manifest, manifest_path, done, by_split)
    for name in sorted(os.listdir(out_dir)):
        if name in done or not name.endswith(".tfrecord") or name.startswith("."):
            continue
        if name in previous or name in split_of or _SHARD_RE.match(name):
            os.remove(os.path.join(out_dir, name))
            if name not in split_of:
                summary.removed.append(name)
    results = os.path.dirname(feature_inference.result_path(out_dir, "x"))
    for name in os.listdir(results) if os.path.isdir(results) else ():
        if name[:-len(".json")] not in done:
            os.remove(os.path.join(results, name))
    if todo:
        bar = _Progress(out_dir, sorted(todo), f"features ({net.name})", progress)
        try:
            with beam_pipeline.pipeline(runner, direct_num_workers, beam_args) as p:
                feature_inference.build(
                    p, {n: os.path.join(in_dir, n) for n in todo}, out_dir, backbone=backbone,
                    weights=weights, backbone_name=net.name, feature_dim=net.feature_dim,
                    batch_size=batch_size, jit_compile=jit_compile, inputs=todo,
                    settings=settings)
        finally:
            bar.stop()
    user_errors = []
    for name in sorted(todo):
        in_path = os.path.join(in_dir, name)
        stats = feature_inference.read_result(out_dir, name) or {
            "status": feature_inference.STATUS_FAILED, "reason": "the job gave no result"}
        status = stats.pop("status")
        if status == feature_inference.STATUS_USER_ERROR:
            user_errors.append(stats["reason"])
        if status != feature_inference.STATUS_OK:
            _fail(manifest, summary, name, in_path, stats["reason"])
            continue
        done[name] = stats
        summary.shards_written += 1
        for key in ("videos", "frames", "faces", "bad_frames"):
            setattr(summary, key, getattr(summary, key) + stats[key])
        summary.failed_videos += len(stats["failed"])
    _publish(manifest, manifest_path, done, by_split)
    # The manifest holds every result now; they were kept only for a run killed before this.
    shutil.rmtree(os.path.join(out_dir, feature_inference.WORK), ignore_errors=True)
    if user_errors:
        raise errors.UserError(user_errors[0])
    summary.seconds = time.time() - start
    lost = [split for split, names in by_split.items() if not any(n in done for n in names)]
    if lost:
        raise errors.UserError(
            "; ".join(f"split {split} has no usable input shard left, no {split} features "
                      f"written" for split in lost) + ": " + "; ".join(summary.problems))
    return summary


class _Progress:
    """A tqdm bar of output shards finished, fed by polling their result files."""

    def __init__(self, out_dir: str, names: List[str], desc: str, enabled: bool):
        self._out_dir, self._names = out_dir, names
        self._stop = threading.Event()
        self._thread = None
        if enabled:
            self._bar = progress_bar(total=len(names), unit="shard", desc=desc)
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()

    def _run(self):
        while True:
            stopping = self._stop.wait(1.0)
            self._bar.n = sum(os.path.exists(feature_inference.result_path(self._out_dir, n))
                              for n in self._names)
            self._bar.refresh()
            if stopping:
                break
        self._bar.close()

    def stop(self):
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)

def _fail(manifest: dict, summary: Summary, name: str, in_path: str, reason: str) -> None:
    manifest["features"]["failed_shards"][name] = reason
    summary.failed_shards += 1
    summary.problems.append(f"{in_path}: skipped, {reason}")


def _publish(manifest: dict, path: str, done: dict, by_split: Dict[str, List[str]]) -> None:
    """Writes the manifest with `files` = the finished, current output shards per split."""
    manifest["features"]["shards"] = dict(sorted(done.items()))
    manifest["files"] = {split: [n for n in names if n in done]
                         for split, names in by_split.items()}
    _write_json_atomic(path, manifest)
