"""Synthetic benchmark: per-frame feature sequences whose link to valence/arousal is known.

It stands in for "attribute CNN features of real videos" so the whole training and evaluation
path can be run and checked end to end in minutes on a CPU (and Table 1 re-run on it).

Per video (T frames at `fps`):
- latent valence/arousal z(t) in (-1, 1): tanh of a per-video baseline plus a sum of four slow
  sinusoids (periods 10-60 s, random phases) and a little low-pass filtered noise;
- features f(t) = s_subject · E(z(t)) + o_subject + drift(t) + noise(t), where E is one fixed
  random nonlinear map for the whole benchmark, E(z) = tanh(W z + b) + U [v², a², v·a], on all
  but D/8 "nuisance" dims; s_subject is a per-subject expressiveness gain and o_subject a
  per-subject offset vector (identity); drift(t) are slow random processes unrelated to
  emotion (strong on the nuisance dims, weak on the others); noise is i.i.d. per frame;
- labels(t) = z(t − delay) + small filtered label noise: annotators lag the face by a per-video
  delay drawn in [min_delay_s, max_delay_s] (1.5-3.5 s), so the label at t depends on features
  from the past, which a causal model can use;
- one or two stretches without a face (face_present = 0, features zeroed, label_mask = 0) and
  one stretch with a face but no label (label_mask = 0).
Subjects are split into train/dev/test (12/4/4 of 20 by default), never shared between splits.
Everything is drawn from `numpy.random.SeedSequence([seed, ...])`: same seed, same bytes.
Records follow `schema.make_sequence_example(features=...)`, in shards
`{split}-{i:05d}-of-{k:05d}.tfrecord`, plus `manifest.json` (parameters, per-video facts).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
from typing import Dict, Iterator, List, Mapping, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf

from ast_net import atomic, errors, progress
from ast_net.data import schema

DATASET = "synthetic"
MANIFEST = "manifest.json"
DEFAULT_SPLITS = (("train", 0.6), ("dev", 0.2), ("test", 0.2))


@dataclasses.dataclass(frozen=True)
class Params:
    """Generator parameters (all recorded in the manifest)."""

    seed: int = 0
    num_subjects: int = 20
    videos_per_subject: Tuple[int, int] = (2, 3)  # Inclusive range, drawn per subject.
    feature_dim: int = 128
    fps: float = 25.0
    min_frames: int = 1500
    max_frames: int = 3000
    splits: Tuple[Tuple[str, float], ...] = DEFAULT_SPLITS  # (name, share of subjects)
    min_delay_s: float = 1.5
    max_delay_s: float = 3.5
    feature_noise: float = 0.3   # Std of the i.i.d. per-frame feature noise.
    subject_offset: float = 0.5  # Std of the per-subject offset vector entries.
    label_noise: float = 0.03    # Std of the (filtered) label noise.
    num_shards: int = 2          # Shards per split (fewer if a split has fewer videos).


@dataclasses.dataclass
class Video:
    """One generated video: arrays of length T and the facts recorded in the manifest."""

    video_id: str
    subject: str
    split: str
    features: np.ndarray      # [T, D] float32
    valence: np.ndarray       # [T] float32 label (0 where label_mask is 0)
    arousal: np.ndarray
    label_mask: np.ndarray    # [T] int64
    face_present: np.ndarray  # [T] int64
    latent: np.ndarray        # [T, 2] undelayed latent (valence, arousal) at frame times
    delay_frames: int         # Labels at frame t are latent[t - delay_frames] (+ noise).
    fps: float

    @property
    def timestamps(self) -> np.ndarray:
        return np.arange(len(self.valence), dtype=np.float64) / self.fps


def _rng(params: Params, *tags: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(params.seed), *tags]))


def _smooth_noise(rng: np.random.Generator, shape: Tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian-smoothed white noise along axis 0 (kernel std `sigma` samples), unit std."""
    length = shape[0]
    spectrum = np.fft.rfft(rng.normal(size=shape), axis=0)
    freq = np.fft.rfftfreq(length)  # Cycles per sample.
    gain = np.exp(-2.0 * (np.pi * freq * sigma) ** 2).reshape((-1,) + (1,) * (len(shape) - 1))
    y = np.fft.irfft(spectrum * gain, n=length, axis=0)
    y = y - y.mean(axis=0, keepdims=True)
    return y / (y.std(axis=0, keepdims=True) + 1e-8)


def check_params(params: Params) -> None:
    """Raises UserError naming the first parameter that makes no sense."""
    lo, hi = params.videos_per_subject
    checks = [
        (params.num_subjects >= len(params.splits), "num_subjects",
         f"at least one subject per split ({len(params.splits)})"),
        (1 <= lo <= hi, "videos_per_subject", "1 <= min <= max"),
        (params.feature_dim >= 4, "feature_dim", ">= 4"),
        (params.fps > 0, "fps", "> 0"),
        (2 <= params.min_frames <= params.max_frames, "min_frames/max_frames",
         "2 <= min_frames <= max_frames"),
        (0 <= params.min_delay_s <= params.max_delay_s, "min_delay_s/max_delay_s",
         "0 <= min <= max"),
        (params.num_shards >= 1, "num_shards", ">= 1"),
        (all(w > 0 for _, w in params.splits), "splits", "positive shares"),
        (len({n for n, _ in params.splits}) == len(params.splits), "splits", "distinct names"),
    ]
    for ok, name, expected in checks:
        if not ok:
            raise errors.UserError(f"synthetic benchmark: {name} must be {expected}")


def assign_splits(params: Params) -> Dict[str, List[int]]:
    """Subject indices per split: shares by largest remainder, >= 1 each, seeded shuffle."""
    total = sum(w for _, w in params.splits)
    n = params.num_subjects
    quotas = [w / total * n for _, w in params.splits]
    counts = [int(math.floor(q + 1e-9)) for q in quotas]
    by_remainder = sorted(range(len(counts)), key=lambda i: counts[i] - quotas[i])
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    for i, count in enumerate(counts):  # Every split gets a subject, from the largest one.
        if count == 0:
            counts[i] += 1
            counts[int(np.argmax(counts))] -= 1
    subjects = _rng(params, 1).permutation(n)
    out, start = {}, 0
    for (name, _), count in zip(params.splits, counts):
        out[name] = sorted(int(s) for s in subjects[start:start + count])
        start += count
    return out


class _World:
    """The fixed random maps shared by every video of one benchmark."""

    def __init__(self, params: Params):
        rng = _rng(params, 2)
        d = params.feature_dim
        self.num_nuisance = max(1, d // 8)
        self.emotional = np.arange(d) >= self.num_nuisance  # First D/8 dims: nuisance only.
        self.w = rng.normal(0.0, 1.2, size=(2, d))
        self.b = rng.normal(0.0, 0.5, size=(d,))
        self.u = rng.normal(0.0, 0.4, size=(3, d))
        self.drift_proj = rng.normal(0.0, 0.15, size=(4, d))
        self.drift_proj[:, ~self.emotional] = rng.normal(0.0, 1.0, size=(4, self.num_nuisance))

    def emotion(self, z: np.ndarray) -> np.ndarray:
        v, a = z[:, :1], z[:, 1:2]
        quad = np.concatenate([v * v, a * a, v * a], axis=1)
        e = np.tanh(z @ self.w + self.b) + quad @ self.u
        return e * self.emotional


def _latent(rng: np.random.Generator, length: int, fps: float) -> np.ndarray:
    """[length, 2] smooth latent (valence, arousal) trajectories in (-1, 1)."""
    t = np.arange(length) / fps
    out = np.empty((length, 2))
    for dim in range(2):
        periods = np.exp(rng.uniform(np.log(10.0), np.log(60.0), size=4))
        phases = rng.uniform(0, 2 * np.pi, size=4)
        amps = rng.uniform(0.5, 1.0, size=4)
        s = (amps[None] * np.sin(2 * np.pi * t[:, None] / periods[None] + phases[None])).sum(1)
        s = s / np.sqrt(0.5 * np.sum(amps ** 2))  # Unit std over a long stretch.
        s = s + 0.15 * _smooth_noise(rng, (length,), 1.0 * fps)
        out[:, dim] = np.tanh(rng.normal(0.0, 0.3) + 0.8 * s)
    return out


def _stretches(rng, length: int, count: int, min_len: int, max_len: int) -> np.ndarray:
    mask = np.zeros(length, bool)
    max_len = max(1, min(max_len, length // 10))
    min_len = max(1, min(min_len, max_len))
    for _ in range(count):
        n = int(rng.integers(min_len, max_len + 1))
        start = int(rng.integers(0, max(1, length - n)))
        mask[start:start + n] = True
    return mask


def generate_video(params: Params, world: _World, subject: int, index: int,
                   split: str) -> Video:
    """Generates video `index` of subject `subject` (deterministic in params.seed)."""
    srng = _rng(params, 3, subject)
    gain = srng.uniform(0.6, 1.4)
    offset = srng.normal(0.0, params.subject_offset, size=params.feature_dim)
    rng = _rng(params, 4, subject, index)
    fps, d = params.fps, params.feature_dim
    length = int(rng.integers(params.min_frames, params.max_frames + 1))
    delay = int(round(rng.uniform(params.min_delay_s, params.max_delay_s) * fps))
    pad = int(math.ceil(params.max_delay_s * fps))
    z_all = _latent(rng, length + pad, fps)  # z_all[pad + t] is the latent at frame t.
    z = z_all[pad:]
    drift = _smooth_noise(rng, (length, 4), 10.0 * fps)
    features = (gain * world.emotion(z) + offset + drift @ world.drift_proj
                + rng.normal(0.0, params.feature_noise, size=(length, d)))
    labels = z_all[pad - delay: pad - delay + length]
    labels = labels + params.label_noise * _smooth_noise(rng, (length, 2), 0.2 * fps)
    labels = np.clip(labels, -1.0, 1.0)
    no_face = _stretches(rng, length, int(rng.integers(1, 3)), int(0.4 * fps), int(2 * fps))
    unlabelled = _stretches(rng, length, 1, int(1 * fps), int(3 * fps))
    features[no_face] = 0.0
    label_mask = (~no_face & ~unlabelled).astype(np.int64)
    labels = labels * label_mask[:, None]
    video = Video(
        video_id=f"{DATASET}/s{subject:02d}_v{index}", subject=f"s{subject:02d}", split=split,
        features=features.astype(np.float32), valence=labels[:, 0].astype(np.float32),
        arousal=labels[:, 1].astype(np.float32), label_mask=label_mask,
        face_present=(~no_face).astype(np.int64), latent=z.astype(np.float32),
        delay_frames=delay, fps=fps)
    return video


def num_videos(params: Params, subject: int) -> int:
    """How many videos subject `subject` has (drawn in params.videos_per_subject)."""
    lo, hi = params.videos_per_subject
    return int(_rng(params, 5, subject).integers(lo, hi + 1))


def generate(params: Params) -> Iterator[Video]:
    """All videos, split by split (in `params.splits` order), subject by subject."""
    check_params(params)
    world = _World(params)
    for split, subjects in assign_splits(params).items():
        for subject in subjects:
            for index in range(num_videos(params, subject)):
                yield generate_video(params, world, subject, index, split)


def _parse_videos_per_subject(value) -> Tuple[int, int]:
    if isinstance(value, str):
        parts = value.replace(" ", "").split("-")
        try:
            nums = [int(p) for p in parts]
        except ValueError:
            raise errors.UserError(
                f"videos_per_subject: expected N or MIN-MAX, got {value!r}") from None
        value = nums if len(nums) == 2 else nums * 2 if len(nums) == 1 else value
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return (int(value[0]), int(value[1]))
    raise errors.UserError(f"videos_per_subject: expected N or MIN-MAX, got {value!r}")


def parse_splits(value: Union[str, Mapping[str, float], Sequence]) -> Tuple:
    """Accepts "train=0.6,dev=0.2,test=0.2", a mapping or (name, share) pairs."""
    if isinstance(value, str):
        pairs = []
        for item in filter(None, (s.strip() for s in value.split(","))):
            name, sep, share = item.partition("=")
            try:
                pairs.append((name.strip(), float(share)))
            except ValueError:
                sep = ""
            if not sep or not name.strip():
                raise errors.UserError(
                    f"splits: expected NAME=SHARE[,NAME=SHARE...], got {value!r}")
        value = pairs
    items = value.items() if isinstance(value, Mapping) else value
    return tuple((str(n), float(w)) for n, w in items)


def make_params(*, seed: int = 0, num_subjects: int = 20,
                videos_per_subject: Union[int, str, Tuple[int, int]] = (2, 3),
                splits=DEFAULT_SPLITS, **kwargs) -> Params:
    """Params from friendly argument types (see `write_benchmark`)."""
    params = Params(seed=int(seed), num_subjects=int(num_subjects),
                    videos_per_subject=_parse_videos_per_subject(videos_per_subject),
                    splits=parse_splits(splits), **kwargs)
    check_params(params)
    return params


def params_dict(params: Params) -> dict:
    """JSON-friendly parameters for the manifest."""
    d = dataclasses.asdict(params)
    d["videos_per_subject"] = list(params.videos_per_subject)
    d["splits"] = {name: share for name, share in params.splits}
    return d


def make_record(video: Video, fast: bool = False):
    """The video as a `schema.make_sequence_example` feature record.

    With `fast`, the per-frame feature list is filled from `ndarray.tolist()` (python floats)
    instead of numpy scalars, about 3x faster for D = 128; the record is identical (a test
    compares the bytes). This keeps the default benchmark under 20 s.
    """
    kwargs = dict(video_id=video.video_id, fps=video.fps, timestamps=video.timestamps,
                  face_present=video.face_present, valence=video.valence,
                  arousal=video.arousal, label_mask=video.label_mask, subject=video.subject,
                  split=video.split, dataset=DATASET,
                  backbone=f"{DATASET}-d{video.features.shape[1]}")
    if not fast:
        return schema.make_sequence_example(features=video.features, **kwargs)
    record = schema.make_sequence_example(
        features=np.zeros((len(video.valence), 0), np.float32), **kwargs)
    record.context.feature[schema.FEATURE_DIM].int64_list.value[:] = [video.features.shape[1]]
    feature_list = record.feature_lists.feature_list[schema.FEATURES]
    del feature_list.feature[:]
    for row in video.features.tolist():
        feature_list.feature.add().float_list.value.extend(row)
    return record


def _shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:05d}-of-{count:05d}.tfrecord"


def _plan_shards(params: Params) -> Dict[str, int]:
    """Shards per split: num_shards, but never more than the split's videos."""
    out = {}
    for split, subjects in assign_splits(params).items():
        videos = sum(num_videos(params, s) for s in subjects)
        out[split] = max(1, min(params.num_shards, videos))
    return out


def _stale_files(out_dir: str, splits: Sequence[str], keep: Sequence[str]) -> List[str]:
    """Shard files of our splits already in `out_dir` that this run will not write.

    Ones listed by an earlier synthetic manifest are ours to replace; any other one would be
    mixed into the splits by readers, so it is an error.
    """
    previous = set()
    manifest_path = os.path.join(out_dir, MANIFEST)
    if os.path.exists(manifest_path):
        try:
            with open(manifest_path) as f:
                old = json.load(f)
            if old.get("dataset") == DATASET:
                previous = {n for names in old.get("files", {}).values() for n in names}
        except (OSError, ValueError, AttributeError):
            previous = set()
    stale = []
    for name in sorted(os.listdir(out_dir)):
        if name in keep or not name.endswith(".tfrecord"):
            continue
        if any(name.startswith(f"{split}-") for split in splits):
            if name not in previous:
                raise errors.UserError(
                    f"{os.path.join(out_dir, name)}: out_dir already holds TFRecords that "
                    "this generator did not write; use an empty --out_dir")
            stale.append(name)
    return stale


def write_benchmark(out_dir: str, *, show_progress: bool = False, **kwargs) -> dict:
    """Generates the benchmark into `out_dir` and returns the manifest (also written).

    Keyword args are the `Params` fields: seed, num_subjects, videos_per_subject (N, "MIN-MAX"
    or (min, max)), feature_dim, fps, min_frames, max_frames, splits ({name: share},
    (name, share) pairs or "train=0.6,dev=0.2,test=0.2"), min_delay_s, max_delay_s,
    feature_noise, subject_offset, label_noise, num_shards. A tiny set for tests (about 0.2 s):
    `write_benchmark(d, num_subjects=3, videos_per_subject=1, feature_dim=8, min_frames=600,
    max_frames=700)`. Shards are written atomically (`ast_net.atomic`): renamed when all are
    complete, removed on an error; shards of an earlier run of this generator that this run
    does not rewrite are removed.
    """
    params = make_params(**kwargs)
    os.makedirs(out_dir, exist_ok=True)
    shards = _plan_shards(params)
    files = {split: [_shard_name(split, i, k) for i in range(k)] for split, k in shards.items()}
    stale = _stale_files(out_dir, list(shards), [n for names in files.values() for n in names])
    counters = {split: 0 for split in files}
    videos = []
    total = sum(num_videos(params, s) for s in range(params.num_subjects))
    with contextlib.ExitStack() as stack:  # On an error no shard is left behind, half or whole.
        writers = {split: [tf.io.TFRecordWriter(stack.enter_context(
            atomic.path(os.path.join(out_dir, n)))) for n in names]
            for split, names in files.items()}
        for split_writers in writers.values():  # Exits run last in, first out: each writer
            for w in split_writers:             # is closed before its file is renamed.
                stack.callback(w.close)
        for video in progress.bar(generate(params), total=total, unit="video",
                                  desc="synthetic", enabled=show_progress):
            shard = counters[video.split] % len(files[video.split])
            counters[video.split] += 1
            record = make_record(video, fast=True)
            writers[video.split][shard].write(record.SerializeToString())
            videos.append({
                "id": video.video_id, "subject": video.subject, "split": video.split,
                "frames": int(len(video.valence)), "file": files[video.split][shard],
                "delay_s": round(video.delay_frames / video.fps, 4),
                "delay_frames": video.delay_frames,
                "face_frames": int(video.face_present.sum()),
                "labelled_frames": int(video.label_mask.sum())})
    manifest = {
        "dataset": DATASET, "generator": "ast_net.data.synthetic", "params": params_dict(params),
        "feature_dim": params.feature_dim, "fps": params.fps,
        "subjects": {k: [f"s{s:02d}" for s in v] for k, v in assign_splits(params).items()},
        "files": files, "videos": videos}
    atomic.write_text(os.path.join(out_dir, MANIFEST), json.dumps(manifest, indent=1) + "\n")
    for name in stale:
        os.remove(os.path.join(out_dir, name))
    return manifest


def summary(manifest: dict, out_dir: str) -> str:
    """Human-readable lines: videos, subjects and frames per split."""
    lines = [f"wrote {len(manifest['videos'])} videos to {out_dir}"]
    for split, subjects in manifest["subjects"].items():
        videos = [v for v in manifest["videos"] if v["split"] == split]
        lines.append(f"  {split:<6} {len(subjects):>3} subjects {len(videos):>4} videos "
                     f"{sum(v['frames'] for v in videos):>8} frames "
                     f"{len(manifest['files'][split])} shard(s)")
    return "\n".join(lines)
