"""The runner flags of the Beam binaries, defined once (binaries only).

ast-net-prepare-videos, ast-net-extract-features and ast-net-predict-videos each call
`define(...)` at import time (the worker default and what each worker holds are their own) and
`BeamFlags.kwargs(argv)` in `main()`: `runner`, `direct_num_workers` and `beam_args` (the
pipeline options after `--`, checked by `startup.beam_args`) for the binary's `*_lib` call.
A new runner option is one flag here.
"""

from __future__ import annotations

import dataclasses

from absl import flags

from ast_net import startup

RUNNERS_HELP = ("Apache Beam runner (DirectRunner, DataflowRunner, FlinkRunner, SparkRunner, "
                "...). Further Beam pipeline options go after `--` (docs/beam.md).")


@dataclasses.dataclass(frozen=True)
class BeamFlags:
    """The FlagHolders `define` made."""

    runner: flags.FlagHolder
    direct_num_workers: flags.FlagHolder

    def kwargs(self, argv) -> dict:
        """runner, direct_num_workers and beam_args (after `--` in `argv`) for a `*_lib` call.

        Raises:
          errors.UserError: an argument after `--` that is not a `--name=value` option.
        """
        return {"runner": self.runner.value,
                "direct_num_workers": self.direct_num_workers.value,
                "beam_args": startup.beam_args(argv)}


def define(*, workers_default: int, each_worker: str) -> BeamFlags:
    """Defines --runner and --direct_num_workers; `each_worker` ends the workers' help, e.g.
    "each with its own face detector"."""
    zero = " 0: one per CPU core." if workers_default == 0 else ""
    return BeamFlags(
        runner=flags.DEFINE_string("runner", "DirectRunner", RUNNERS_HELP),
        direct_num_workers=flags.DEFINE_integer(
            "direct_num_workers", workers_default,
            f"Parallel workers of the DirectRunner (>1 runs worker processes, {each_worker})."
            + zero))
