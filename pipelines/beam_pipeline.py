"""A `beam.Pipeline` for a job's runner flags, the way prepare-videos makes its own.

`pipeline(runner, direct_num_workers, beam_args)` builds the pipeline options exactly as
`prepare_videos_lib` does (`--runner`, `--direct_num_workers`, Beam's own options after `--`;
several DirectRunner workers run in multi_processing mode) and, for the DirectRunner, the
in-process FnApiRunner whose worker processes are `prepare_videos_lib.worker_command` (they die
with the driver, print only errors). extract-features and batch prediction use it, so the
three jobs take the same runner flags and launch workers the same way.
"""

from __future__ import annotations

import types
from typing import Sequence

import apache_beam as beam
from ast_net.pipelines import prepare_videos_lib


def pipeline(runner: str = "DirectRunner", direct_num_workers: int = 1,
             beam_args: Sequence[str] = ()) -> beam.Pipeline:
    """A pipeline to use as `with pipeline(...) as p:` (it runs when the block ends)."""
    config = types.SimpleNamespace(runner=runner, direct_num_workers=int(direct_num_workers),
                                   beam_args=tuple(beam_args))
    # The option and runner logic of prepare-videos, shared rather than copied.
    options = prepare_videos_lib._beam_options(config)  # noqa: SLF001
    return beam.Pipeline(runner=prepare_videos_lib._runner(config, options),  # noqa: SLF001
                         options=options)
