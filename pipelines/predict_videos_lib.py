"""Batch prediction over a video archive as a Beam job: many videos, the same outputs per video.

`predict_videos(config)` expands the inputs as `ast-net-predict` does (files, folders, globs;
`predict_lib.expand_inputs`, `output_names`) and runs `predict_lib.predict_video` on each in an
Apache Beam pipeline (`beam_pipeline`: the runner flags of prepare-videos; the DirectRunner
with several worker processes uses several cores on one machine). Each worker loads the engine
once (`inference.load_engine`, in `setup`) and writes the video's CSV, JSON sidecar and plot
(and annotated copy) into `out_dir` exactly as `ast-net-predict` would, then its result file
`out_dir/.work/predict/<name>.json` (written atomically): ok, or failed and why. A re-run skips
every video whose result says ok for the same input (absolute path, size, mtime) and the same
settings (workdir, engine options, annotate) while its CSV is there; failed ones are tried
again. A video that fails (cannot be opened, damaged, truncated, an output that cannot be
written) is listed and the others go on; `predict_videos` then raises `errors.UserError`
naming them, so the binary ends with one `error:` line and exit 2.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from typing import List, Optional, Sequence, Tuple

import apache_beam as beam
from ast_net.pipelines import beam_pipeline, work_results

from ast_net import atomic, errors, predict_lib

WORK = work_results.WORK


@dataclasses.dataclass
class Config:
    """Everything the job needs; the binary fills it from flags."""

    inputs: Sequence[str]
    out_dir: str
    workdir: Optional[str] = None  # An ast-net-train work directory; None: zero-shot.
    options: object = None  # engine_options.EngineOptions (the engine flags), or None.
    annotate: bool = False
    runner: str = "DirectRunner"
    direct_num_workers: int = 0  # 0: one per CPU core, at most one per video.
    beam_args: Sequence[str] = ()


@dataclasses.dataclass
class Summary:
    videos: int
    predicted: int
    skipped: int
    failed: List[Tuple[str, str]]  # (path, reason)
    frames: int

    def line(self) -> str:
        return (f"done: {self.predicted} of {self.videos} videos predicted, {self.skipped} "
                f"already done" + (f", {len(self.failed)} failed" if self.failed else ""))


KIND = "predict"  # Results under .work/predict/ (`work_results`).


def result_path(out_dir: str, name: str) -> str:
    return work_results.result_path(out_dir, KIND, name)


def read_result(out_dir: str, name: str) -> Optional[dict]:
    return work_results.read_result(out_dir, KIND, name)


def _write_result(out_dir: str, name: str, result: dict) -> None:
    work_results.write_result(out_dir, KIND, name, result)


def _fingerprint(path: str, settings: str) -> str:
    """What a video's outputs depend on: the file (path, size, mtime) and the settings."""
    try:
        st = os.stat(path)
        ident = [os.path.abspath(path), st.st_size, st.st_mtime_ns]
    except OSError:
        ident = [os.path.abspath(path), None, None]
    return hashlib.sha1(json.dumps([ident, settings]).encode()).hexdigest()[:16]


class _PredictVideo(beam.DoFn):
    """(path, output name, fingerprint) -> the video's outputs and result file in out_dir."""

    def __init__(self, config: Config):
        self._config = config
        self._engine = self._mode = self._error = None
        self._counters = {s: beam.metrics.Metrics.counter("predict_videos", f"videos_{s}")
                          for s in ("ok", "failed")}

    def setup(self):
        from ast_net import inference
        from ast_net.faces import video as video_lib

        video_lib.quiet_ffmpeg()
        try:
            self._engine = inference.load_engine(self._config.workdir, self._config.options)
        except errors.UserError as e:  # A bad workdir or option: every video says so.
            self._error = str(e)
            return
        self._mode = predict_lib.model_title(self._engine, self._config.workdir)

    def process(self, element):
        path, name, fingerprint = element
        out_dir = self._config.out_dir
        result = {"path": path, "fingerprint": fingerprint, "status": "failed"}
        if self._error:
            result["reason"] = self._error
        else:
            try:
                video = predict_lib.predict_video(
                    self._engine, path, out_dir, name=name, annotate=self._config.annotate,
                    progress=False, mode=self._mode)
            except errors.UserError as e:
                result["reason"] = str(e)
            except OSError as e:
                result["reason"] = predict_lib._write_error(path, out_dir, e)  # noqa: SLF001
            else:
                result.update(frames=video.frames, frames_with_face=video.frames_with_face,
                              seconds=round(video.seconds, 3), csv=video.csv_path)
                if video.error:  # Truncated: the CSV holds the frames decoded.
                    result["reason"] = video.error
                else:
                    result["status"] = "ok"
        self._counters[result["status"]].inc()
        _write_result(out_dir, name, result)
        yield name


def num_workers(config: Config, videos: int) -> int:
    """`direct_num_workers`, or for 0 one per CPU core and at most one per video."""
    if config.direct_num_workers > 0:
        return config.direct_num_workers
    return max(1, min(os.cpu_count() or 1, videos))


def predict_videos(config: Config) -> Summary:
    """Runs the job; see the module docstring.

    Raises:
      errors.UserError: no video among the inputs, an output folder that cannot be written,
        or, after the job, any video that failed (all named).
    """
    skipped_outputs: list = []
    paths = [p for spec in config.inputs
             for p in predict_lib.expand_inputs(os.path.expanduser(spec), skipped_outputs)]
    names = predict_lib.output_names(paths)
    out_dir = os.path.expanduser(config.out_dir)
    config = dataclasses.replace(config, out_dir=out_dir)
    os.makedirs(out_dir, exist_ok=True)
    if not os.access(out_dir, os.W_OK):
        raise errors.UserError(f"{out_dir}: the output folder cannot be written")
    atomic.remove_leftovers(out_dir)  # Temporary files of a killed run.
    options = config.options
    settings = json.dumps([os.path.abspath(config.workdir) if config.workdir else None,
                           dataclasses.asdict(options) if dataclasses.is_dataclass(options)
                           else None, config.annotate], sort_keys=True, default=str)
    todo, skipped = [], 0
    for path, name in zip(paths, names):
        fingerprint = _fingerprint(path, settings)
        old = read_result(out_dir, name)
        if (old and old.get("status") == "ok" and old.get("fingerprint") == fingerprint
                and os.path.exists(os.path.join(out_dir, name + ".csv"))):
            skipped += 1
        else:
            todo.append((path, name, fingerprint))
    if todo:
        config = dataclasses.replace(config, direct_num_workers=num_workers(config, len(todo)))
        with beam_pipeline.pipeline(config.runner, config.direct_num_workers,
                                    config.beam_args) as p:
            _ = (p | "Videos" >> beam.Create(todo)
                 | "Spread" >> beam.Reshuffle()
                 | "Predict" >> beam.ParDo(_PredictVideo(config)))
    failed, frames = [], 0
    for path, name, fingerprint in todo:
        result = read_result(out_dir, name) or {}
        if result.get("fingerprint") != fingerprint:
            result = {"status": "failed", "reason": "the job gave no result"}
        if result.get("status") == "ok":
            frames += result.get("frames", 0)
        else:
            failed.append((path, result.get("reason", "?")))
            print(f"failed: {path}: {result.get('reason', '?')}", file=sys.stderr, flush=True)
    summary = Summary(len(paths), len(todo) - len(failed), skipped, failed, frames)
    print(summary.line(), flush=True)
    if failed:
        shown = "; ".join(p for p, _ in failed[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        raise errors.UserError(f"{len(failed)} of {len(paths)} videos failed: {shown}{more} "
                               f"(reasons above and in {os.path.join(out_dir, WORK, 'predict')})")
    return summary
