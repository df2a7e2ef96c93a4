"""One video -> its SequenceExample records (fixed-length chunks) in a per-video part file.

`process_item` decodes the video, detects/tracks/aligns faces (`ast_net.faces.video_faces`),
JPEG-encodes one aligned S x S face per frame (a black crop where no face was found), puts
the labels on the frame timestamps (`labels.resample`) and writes one record per
`chunk_frames` frames, so memory stays bounded on hour-long videos. The part file is written
atomically (`manifest.atomic_record_writer`) and then the video's manifest entry, which marks
it done. Nothing a video can contain stops the batch: any error becomes a `failed` entry with
its reason; a video with no face on any frame becomes `no_face` (no records); label/video
length mismatches are masked and counted. Which face a frame contributes: for single-subject
data sets the tracker runs with `max_faces=1` (it follows the largest face of the first
detection, streaming); for Aff-Wild2 `_left` / `_right` items (`max_faces=2`) the face whose
box centre is left / right of the other face (with one face on the frame, the one in that half).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from typing import Callable, List, Optional

import numpy as np
from ast_net.pipelines import manifest

from ast_net import contract, errors
from ast_net.data import labels, layouts, schema
from ast_net.faces import video_faces

STATUS_OK, STATUS_FAILED, STATUS_NO_FACE = "ok", "failed", "no_face"


@dataclasses.dataclass(frozen=True)
class Options:
    """Processing options of every video; they make up the parts' fingerprint."""

    face_size: int = 0  # 0: the input size of `backbone` (`resolved`).
    detect_every: int = contract.DEFAULT_DETECT_EVERY
    min_face_size: int = contract.DEFAULT_MIN_FACE_SIZE
    chunk_frames: int = 3000
    jpeg_quality: int = 90
    resample: str = "linear"
    max_gap_s: Optional[float] = None
    refine_every: int = contract.DEFAULT_REFINE_EVERY
    backbone: str = contract.DEFAULT_BACKBONE  # Only decides the default face size.

    def resolved(self) -> "Options":
        """These options with `face_size` 0 replaced by the backbone's input size (so a
        flag-free run and an explicit `--face_size=64` share one fingerprint and contract)."""
        if self.face_size:
            return self
        return dataclasses.replace(self, face_size=contract.default_face_size(self.backbone))

    def to_contract(self, max_faces: Optional[int] = 1) -> contract.Contract:
        """The preprocessing contract of faces prepared with these options."""
        opts = self.resolved()
        return contract.faces_contract(
            opts.face_size, min_face_size=opts.min_face_size, detect_every=opts.detect_every,
            refine_every=opts.refine_every, max_faces=max_faces, jpeg_quality=opts.jpeg_quality)

    def fingerprint(self) -> str:
        data = dataclasses.asdict(self.resolved())
        del data["backbone"]  # It only picks the default face_size, which is in `data`.
        text = json.dumps(data, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:16]


def input_files(item: layouts.Item) -> dict:
    """{absolute path: identity} of every input file of `item`: the video by size and
    mtime_ns (re-reading a long video on every run would cost more than it saves), each label
    file by the SHA-256 of its content (small, and an edit may keep size and mtime)."""
    files = {}
    paths = [(item.video_path, False)] if item.video_path else []
    paths += [(p, True) for _, p in sorted(item.label_paths.items())]
    for path, by_content in paths:
        path = os.path.abspath(os.path.expanduser(path))
        try:
            if by_content:
                files[path] = {"sha256": manifest.file_sha256(path)}
            else:
                st = os.stat(path)
                files[path] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
        except OSError as e:
            files[path] = {"error": e.strerror or type(e).__name__}
    return files


def input_fingerprint(item: layouts.Item, options: Options) -> str:
    """What a cached per-video result is keyed on: the processing options, the item (split,
    subject, face, problem, ...) and its input files (`input_files`, absolute paths). A changed
    label file, a replaced video or another `--root` changes it, so that video is redone."""
    text = json.dumps({"options": options.resolved().fingerprint(),
                       "item": dataclasses.asdict(item), "files": input_files(item)},
                      sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def base_entry(item: layouts.Item, options: Options, fingerprint: Optional[str] = None) -> dict:
    """The manifest entry of an item before processing (`fingerprint`: `input_fingerprint`,
    computed before the inputs are read, so an input edited meanwhile is redone next run)."""
    return {
        "video_id": item.video_id, "split": item.split, "subject": item.subject,
        "dataset": item.dataset, "video_path": item.video_path, "face": item.face,
        "label_paths": dict(item.label_paths), "status": STATUS_FAILED, "reason": "",
        "fps": 0.0, "frames": 0, "declared_frames": 0, "width": 0, "height": 0,
        "frames_with_face": 0, "labelled_frames": 0, "usable_frames": 0,
        "length_mismatch": 0, "video_frames_past_labels": 0, "label_samples_past_video": 0,
        "chunks": 0, "seconds": 0.0,
        "fingerprint": fingerprint or input_fingerprint(item, options),
        "key": manifest.item_key(item.video_id),
    }


def black_jpeg(size: int, quality: int) -> bytes:
    return video_faces.encode_jpeg(np.zeros((size, size, 3), np.uint8), quality)


class FacePicker:
    """Chooses the face a frame contributes (see the module docstring)."""

    def __init__(self, side: str, width: int):
        self.side, self.width, self.track_id = side, width, None

    @staticmethod
    def _centre_x(face) -> float:
        x, _, w, _ = face.box
        return float(x) + float(w) / 2

    @staticmethod
    def _area(face) -> float:
        return float(face.box[2]) * float(face.box[3])

    def __call__(self, faces):
        if not faces:
            return None
        if self.side:
            if len(faces) == 1:
                left = self._centre_x(faces[0]) < self.width / 2
                return faces[0] if left == (self.side == "left") else None
            two = sorted(faces, key=self._area, reverse=True)[:2]
            two.sort(key=self._centre_x)
            return two[0] if self.side == "left" else two[1]
        for f in faces:  # Primary track: keep following the face we followed so far.
            if f.track_id == self.track_id:
                return f
        best = max(faces, key=self._area)
        self.track_id = best.track_id
        return best


def process_item(item: layouts.Item, options: Options, out_dir, detector=None,
                 on_frames: Optional[Callable[[int], None]] = None,
                 fingerprint: Optional[str] = None) -> dict:
    """Processes one item into its part file; returns (and saves) its manifest entry.

    `fingerprint`: the item's `input_fingerprint` as the caller computed it (else now).
    """
    options = options.resolved()
    entry = base_entry(item, options, fingerprint)
    start = time.time()
    if item.problem:
        entry["reason"] = item.problem
    else:
        try:
            _process(item, options, out_dir, detector, on_frames, entry)
        except _NoFace:
            entry["status"] = STATUS_NO_FACE
            entry["reason"] = f"no face found on any of the {entry['frames']} frames"
        except errors.UserError as e:
            entry["status"], entry["reason"] = STATUS_FAILED, str(e)
        except Exception as e:  # noqa: BLE001 - a bad video must never stop the batch.
            first = (str(e).strip().splitlines() or [""])[0]
            entry["status"], entry["reason"] = STATUS_FAILED, f"{type(e).__name__}: {first}"
    if entry["status"] != STATUS_OK:
        entry["chunks"] = 0
    entry["seconds"] = round(time.time() - start, 3)
    manifest.write_json_atomic(manifest.entry_path(out_dir, entry["key"]), entry)
    return entry


def _process(item, options, out_dir, detector, on_frames, entry) -> None:
    track = layouts.read_labels(item)
    frames = video_faces.iter_video_faces(
        item.video_path, face_size=options.face_size, detect_every=options.detect_every,
        min_face_size=options.min_face_size, detector=detector,
        max_faces=2 if item.face else 1, refine_every=options.refine_every)
    info = frames.info
    entry.update(fps=float(info.fps), declared_frames=int(info.num_frames),
                 width=int(info.width), height=int(info.height))
    picker = FacePicker(item.face, info.width)
    black = black_jpeg(options.face_size, options.jpeg_quality)
    all_times: List[float] = []
    all_indices: List[int] = []
    chunk = _Chunk()
    part = manifest.part_path(out_dir, entry["key"])
    with frames, manifest.atomic_record_writer(part) as writer:
        for ff in frames:
            face = picker(ff.faces)
            jpeg = black if face is None else video_faces.encode_jpeg(face.crop,
                                                                     options.jpeg_quality)
            chunk.add(ff.index, ff.timestamp, jpeg, face is not None)
            all_times.append(ff.timestamp)
            all_indices.append(ff.index)
            if len(chunk) >= options.chunk_frames:
                writer.write(_record(item, options, info, track, chunk, entry))
                chunk = _Chunk()
            if on_frames is not None and len(all_times) % 50 == 0:
                on_frames(len(all_times))
        if len(chunk):
            writer.write(_record(item, options, info, track, chunk, entry))
        entry["frames"] = len(all_times)
        if frames.truncated:
            raise errors.UserError(frames.error or f"{item.video_path}: truncated")
        if entry["frames_with_face"] == 0:
            raise _NoFace()
    if on_frames is not None:
        on_frames(len(all_times))
    if track is not None:
        mm = labels.length_mismatch(track, all_times, all_indices)
        entry.update(length_mismatch=mm.total, video_frames_past_labels=mm.frames_past_labels,
                     label_samples_past_video=mm.labels_past_video)
    entry["status"] = STATUS_OK


class _NoFace(Exception):
    pass


class _Chunk:
    def __init__(self):
        self.indices, self.times, self.jpegs, self.present = [], [], [], []

    def __len__(self):
        return len(self.indices)

    def add(self, index, timestamp, jpeg, present):
        self.indices.append(int(index))
        self.times.append(float(timestamp))
        self.jpegs.append(jpeg)
        self.present.append(1 if present else 0)


def _record(item, options, info, track, chunk: _Chunk, entry) -> bytes:
    present = np.asarray(chunk.present, np.int64)
    if track is None:
        val = aro = np.zeros(len(chunk), np.float32)
        mask = np.zeros(len(chunk), np.int64)
    else:
        val, aro, mask = labels.resample(track, chunk.times, method=options.resample,
                                         max_gap_s=options.max_gap_s,
                                         frame_indices=chunk.indices)
    usable = mask * present
    entry["frames_with_face"] += int(present.sum())
    entry["labelled_frames"] += int(mask.sum())
    entry["usable_frames"] += int(usable.sum())
    entry["chunks"] += 1
    example = schema.make_sequence_example(
        video_id=item.video_id, fps=info.fps, timestamps=chunk.times, face_present=present,
        valence=val, arousal=aro, label_mask=usable, face_jpegs=chunk.jpegs,
        subject=item.subject, split=item.split, dataset=item.dataset,
        first_frame=chunk.indices[0], face_size=options.face_size)
    return example.SerializeToString(deterministic=True)
