"""The prepare-videos job: a data set layout -> sharded aligned-face TFRecords + manifest.json.

`prepare_videos(config)` finds the items of the layout (`layouts.find_items`), runs an Apache
Beam pipeline (DirectRunner unless `config.runner` / Beam arguments say otherwise) in which
each video is processed into its own part file under `out_dir/.work/` (skipped when a
previous run already finished it from the same inputs with the same options:
`video_records.input_fingerprint`), then a grouping by shard writes each
`{split}-{i:05d}-of-{N:05d}.tfrecord` under a temporary name and renames it. Shard contents
depend only on the finished parts, so a run killed at any point and run again gives the same
records as an uninterrupted run. The driver shows a tqdm bar (videos and frames done) while the
pipeline runs, by watching `.work/`, which works with every runner whose workers share
`out_dir` (local disk for DirectRunner; a shared mount on Flink / Spark / Dataflow workers);
Beam counters (`videos_ok`, `videos_failed`, `videos_no_face`, `frames`) are set as well.
Temporary files a killed run left are removed first. With the DirectRunner's worker processes
(`direct_num_workers` > 1) each worker dies with the driver (kill -9 included) and prints only
errors on its own stderr (its log reaches the driver's logging): `worker_command`.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import math
import os
import pathlib
import shlex
import shutil
import sys
import threading
from typing import Dict, List, Sequence, Tuple

import apache_beam as beam
from apache_beam.options import pipeline_options
from ast_net.pipelines import manifest, video_records

from ast_net import contract, errors
from ast_net.data import layouts
from ast_net.progress import bar as progress_bar

_VIDEOS_PER_AUTO_SHARD = 10


@dataclasses.dataclass
class Config:
    """Everything the job needs; the binary fills it from flags."""

    dataset: str
    root: str
    out_dir: str
    splits: Sequence[str] = ()
    options: video_records.Options = dataclasses.field(default_factory=video_records.Options)
    num_shards: int = 0  # 0: one shard per 10 videos of a split (at least 1).
    runner: str = "DirectRunner"
    direct_num_workers: int = 1
    beam_args: Sequence[str] = ()
    progress: bool = True


@dataclasses.dataclass
class Summary:
    videos: int
    ok: int
    failed: int
    no_face: int
    records: Dict[str, int]
    manifest_path: str
    shards: Dict[str, List[str]]
    # (video id, status, reason) of each video of this run that is not ok, cached or not.
    problems: List[Tuple[str, str, str]] = dataclasses.field(default_factory=list)

    def line(self) -> str:
        recs = ", ".join(f"{s}: {n}" for s, n in sorted(self.records.items())) or "none"
        return (f"{self.videos} videos: {self.ok} ok, {self.no_face} with no face, "
                f"{self.failed} failed; records {recs}; manifest {self.manifest_path}")


class _ProcessVideo(beam.DoFn):
    """(order, item, shard key, input fingerprint) -> (shard key, (order, video key, status));
    writes the part unless it is done with this fingerprint."""

    def __init__(self, out_dir: str, options: video_records.Options):
        self._out_dir, self._options = out_dir, options
        self._counters = {s: beam.metrics.Metrics.counter("prepare_videos", f"videos_{s}")
                          for s in (video_records.STATUS_OK, video_records.STATUS_FAILED,
                                    video_records.STATUS_NO_FACE)}
        self._frames = beam.metrics.Metrics.counter("prepare_videos", "frames")
        self._detector = None

    def setup(self):
        from ast_net.faces import detector  # Heavy (TensorFlow graphs): once per worker.

        self._detector = detector.MtcnnDetector(min_face_size=self._options.min_face_size)

    def process(self, element):
        order, item, shard_key, fingerprint = element
        key = manifest.item_key(item.video_id)
        entry = manifest.load_done_entry(self._out_dir, key, fingerprint)
        if entry is None:
            progress = manifest.progress_path(self._out_dir, key)
            entry = video_records.process_item(
                item, self._options, self._out_dir, detector=self._detector,
                on_frames=lambda n: manifest.write_text_atomic(progress, str(n)),
                fingerprint=fingerprint)
            self._counters[entry["status"]].inc()
            self._frames.inc(entry["frames"])
            log = logging.info if entry["status"] == video_records.STATUS_OK else logging.warning
            log("prepare_videos: %s %s (%d frames%s)", item.video_id, entry["status"],
                entry["frames"], f"; {entry['reason']}" if entry["reason"] else "")
        yield shard_key, (order, key, entry["status"])


def _write_shard(element, out_dir: str):
    (split, index, num_shards), videos = element
    keys = [key for _, key, status in sorted(videos) if status == video_records.STATUS_OK]
    manifest.write_shard(out_dir, split, index, num_shards, keys)


def _beam_options(config: Config) -> pipeline_options.PipelineOptions:
    args = list(config.beam_args)
    if not any(a.startswith("--runner") for a in args):
        args.append(f"--runner={config.runner}")
    if "direct" in config.runner.lower():
        if not any(a.startswith("--direct_num_workers") for a in args):
            args.append(f"--direct_num_workers={config.direct_num_workers}")
        if not any(a.startswith("--direct_running_mode") for a in args):
            mode = "multi_processing" if config.direct_num_workers > 1 else "in_memory"
            args.append(f"--direct_running_mode={mode}")
    return pipeline_options.PipelineOptions(args)


def _runner(config: Config, options: pipeline_options.PipelineOptions):
    """The in-process FnApiRunner for DirectRunner, else None (Beam picks `--runner`).

    Beam 2.77's DirectRunner first tries PrismRunner, which downloads a binary from GitHub;
    offline that costs time and a network attempt, so we start the Python runner it falls
    back to directly (it honours --direct_num_workers / --direct_running_mode). Its worker
    processes (multi_processing) run `worker_command` instead of Beam's bare
    `sdk_worker_main`, so that they die with the driver and keep Beam's start-up noise off the
    terminal; `direct_running_mode` is then cleared, or FnApiRunner would put Beam's command
    back.
    """
    if options.view_as(pipeline_options.StandardOptions).runner not in (
            "DirectRunner", "direct", "Direct"):
        return None
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability import portable_runner
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.transforms import environments

    environment = None
    direct = options.view_as(pipeline_options.DirectOptions)
    if direct.direct_running_mode == "multi_processing":
        environment = environments.SubprocessSDKEnvironment.from_command_string(
            worker_command(os.getpid()))
        direct.direct_running_mode = None
    encoded = portable_runner.JobServiceHandle.encode_pipeline_options(
        options.get_all_options())
    return fn_runner.FnApiRunner(default_environment=environment,
                                 provision_info=fn_runner.ExtendedProvisionInfo(
                                     beam_provision_api_pb2.ProvisionInfo(
                                         pipeline_options=encoded)))


# A DirectRunner worker process (multi_processing). It dies with the driver: on Linux the
# kernel kills it when its parent dies (PR_SET_PDEATHSIG), elsewhere (and if the driver died
# before the prctl) a thread sees it reparented. This runs before Beam and TensorFlow are
# imported (seconds), so a driver killed at any point takes its workers along. A stderr handler
# at ERROR level keeps Beam's import warnings ("apitools not found") and the harness' INFO
# lines off the terminal; every record still reaches the driver through Beam's logging
# service, where the driver's log level decides. TensorFlow's start-up lines are filtered as in
# the binaries (`startup.quiet_tensorflow`; the driver logs the devices).
_WORKER_CODE = """\
import ctypes, logging, os, signal, sys, threading, time
DRIVER = {driver_pid}
if sys.platform.startswith("linux"):
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)
    except Exception:
        pass
def watch():
    while os.getppid() == DRIVER:
        time.sleep(1.0)
    os._exit(1)
threading.Thread(target=watch, name="driver_watch", daemon=True).start()
handler = logging.StreamHandler()
handler.setLevel(logging.ERROR)
logging.getLogger().addHandler(handler)
from ast_net import startup
startup.quiet_tensorflow(log_devices=False)
from apache_beam.runners.worker import sdk_worker_main
sdk_worker_main.main(sys.argv)
"""


def worker_command(driver_pid: int) -> str:
    """The shell command of one DirectRunner worker process (`_WORKER_CODE`). Beam runs it
    with `sh -c`; `exec` makes the worker the driver's own child."""
    code = _WORKER_CODE.format(driver_pid=int(driver_pid))
    return f"exec {shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def _num_shards(config: Config, count: int) -> int:
    if config.num_shards > 0:
        return config.num_shards
    return max(1, math.ceil(count / _VIDEOS_PER_AUTO_SHARD))


def prepare_videos(config: Config) -> Summary:
    """Runs the job; returns a Summary (also written as manifest.json).

    Paths in `config` may start with `~`.

    Raises:
      UserError: bad root / data set / splits, no items, bad options.
    """
    if config.options.resample not in ("linear", "nearest"):
        raise errors.UserError(f"--resample: expected linear or nearest, got "
                               f"{config.options.resample!r}")
    if config.options.chunk_frames < 1 or 0 < config.options.face_size < 16:
        raise errors.UserError("--chunk_frames must be >= 1 and --face_size >= 16 (or 0: the "
                               "backbone's input size)")
    if config.options.refine_every < 1 or config.options.detect_every < 1:
        raise errors.UserError("--detect_every and --refine_every must be >= 1")
    config = dataclasses.replace(config, root=os.path.expanduser(str(config.root)),
                                 out_dir=os.path.expanduser(str(config.out_dir)),
                                 options=config.options.resolved())
    items = layouts.find_items(config.dataset, config.root, config.splits or None)
    out_dir = pathlib.Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest.remove_leftovers(out_dir)  # Of a killed run (kill -9 leaves .<name>.<pid>.tmp).
    fingerprint = config.options.fingerprint()
    keys = [manifest.item_key(it.video_id) for it in items]
    # Taken before any input is read: an input edited during the run is redone next run.
    fingerprints = {key: video_records.input_fingerprint(it, config.options)
                    for it, key in zip(items, keys)}
    by_split: Dict[str, List[str]] = collections.defaultdict(list)
    for it, key in zip(items, keys):
        by_split[it.split].append(key)
    shards = {s: _num_shards(config, len(k)) for s, k in by_split.items()}
    plan = manifest.shard_plan(by_split, shards)
    elements = [(order, it, (it.split, plan[key], shards[it.split]), fingerprints[key])
                for order, (it, key) in enumerate(zip(items, keys))]
    watcher = _Progress(out_dir, keys, fingerprints, config.progress)
    watcher.start()
    try:
        options = _beam_options(config)
        with beam.Pipeline(runner=_runner(config, options), options=options) as p:
            processed = (p | "Items" >> beam.Create(elements)
                         | "Spread" >> beam.Reshuffle()
                         | "ProcessVideo" >> beam.ParDo(_ProcessVideo(str(out_dir),
                                                                      config.options)))
            _ = (processed | "ByShard" >> beam.GroupByKey()
                 | "WriteShard" >> beam.Map(_write_shard, str(out_dir)))
    finally:
        watcher.stop()
    return _finish(config, out_dir, items, keys, by_split, shards, plan, fingerprint,
                   fingerprints)


def _finish(config, out_dir, items, keys, by_split, shards, plan, fingerprint,
            fingerprints) -> Summary:
    """Writes empty shards nobody wrote, drops stale ones, writes manifest.json (which keeps
    the entries and shards of splits this run did not touch)."""
    for split, num in shards.items():
        used = {plan[k] for k in by_split[split]}
        for index in range(num):
            if index not in used:
                manifest.write_shard(out_dir, split, index, num, [])
        manifest.remove_stale_shards(out_dir, [split], num)
    entries = []
    for it, key in zip(items, keys):
        entry = manifest.load_done_entry(out_dir, key, fingerprints[key])
        if entry is None:
            raise RuntimeError(f"{it.video_id}: the pipeline finished without its entry")
        entries.append(entry)
    path = out_dir / manifest.MANIFEST
    old, old_shards = [], {}
    if path.exists():
        try:
            previous = json.loads(path.read_text())
            old = [e for e in previous["videos"] if e.get("split") not in shards]
            old_shards = {s: list(names) for s, names in previous.get("shards", {}).items()
                          if s not in shards and all((out_dir / n).exists() for n in names)}
        except (ValueError, KeyError, TypeError, AttributeError):
            old, old_shards = [], {}
    all_entries = sorted(old + entries, key=lambda e: (e["split"], e["video_id"], e["face"]))
    count = collections.Counter(e["status"] for e in entries)
    records = collections.Counter()
    for e in entries:
        records[e["split"]] += e["chunks"]
    shard_files = {s: [manifest.shard_name(s, i, n) for i in range(n)]
                   for s, n in sorted(shards.items())}
    all_shards = dict(sorted({**old_shards, **shard_files}.items()))
    totals = {k: sum(e[k] for e in entries) for k in (
        "frames", "frames_with_face", "labelled_frames", "usable_frames", "length_mismatch")}
    manifest.write_json_atomic(path, {
        "dataset": config.dataset, "root": str(config.root),
        "options": dataclasses.asdict(config.options), "fingerprint": fingerprint,
        contract.KEY: _contract(config, items).to_dict(),
        "shards": all_shards, "records": dict(records), "totals": totals,
        "status": dict(count), "videos": all_entries})
    shutil.rmtree(manifest.work_dir(out_dir) / "progress", ignore_errors=True)
    problems = [(e["video_id"], e["status"], e["reason"])
                for e in entries if e["status"] != video_records.STATUS_OK]
    return Summary(len(entries), count[video_records.STATUS_OK],
                   count[video_records.STATUS_FAILED], count[video_records.STATUS_NO_FACE],
                   dict(records), str(path), shard_files, problems)


def _contract(config, items) -> contract.Contract:
    """The preprocessing contract of the faces written (max_faces: per subject, as tracked)."""
    return config.options.to_contract(max_faces=max((2 if it.face else 1 for it in items),
                                                    default=1))


class _Progress:
    """A tqdm bar of videos (and frames) done, fed by polling `.work/` from a thread."""

    def __init__(self, out_dir, keys, fingerprints: Dict[str, str], enabled: bool):
        self._out_dir, self._keys, self._fp = out_dir, keys, fingerprints
        self._enabled = enabled
        self._done: Dict[str, int] = {}  # key -> frames of videos seen finished
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        if self._enabled:
            self._thread.start()

    def stop(self):
        if self._enabled:
            self._stop.set()
            self._thread.join(timeout=5)

    def _poll(self):
        frames = 0
        for key in self._keys:
            if key not in self._done:
                entry = manifest.load_done_entry(self._out_dir, key, self._fp[key])
                if entry is not None:
                    self._done[key] = entry["frames"]
            if key in self._done:
                frames += self._done[key]
                continue
            try:
                frames += int(manifest.progress_path(self._out_dir, key).read_text() or 0)
            except (OSError, ValueError):
                pass
        return len(self._done), frames

    def _run(self):
        bar = progress_bar(total=len(self._keys), unit="video", desc="prepare_videos")
        while True:
            stopping = self._stop.wait(1.0)
            done, frames = self._poll()
            bar.n = done
            bar.set_postfix(frames=frames, refresh=False)
            bar.refresh()
            if stopping:
                break
        bar.close()
