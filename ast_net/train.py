"""`ast-net-train`: trains AST-Net's Siamese temporal network on feature TFRecords.

  ast-net-train --config=default --workdir=/tmp/ast \
      --config.data.data_dir=/tmp/syn [--config.train.num_steps=3000 ...]

Re-running the same command resumes from the newest intact checkpoint in --workdir (the latest
3 are kept, and the best one on the dev split in --workdir/checkpoints/best/). Bad config values
are one error line each, before anything is written. --config takes a
bundled config's name (default, paper, debug, ablation:<row>; see ast_net/configs/) or a config
file's path. Any config field can be overridden as --config.<field>=<value>; see the config
file's docstring for the result it should reach.
"""

from ast_net import startup

startup.quiet_tensorflow()  # First, before anything imports TensorFlow (binaries only).

import os  # noqa: E402

from absl import flags  # noqa: E402

from ast_net import (  # noqa: E402
    config_flag,
    errors,
    train_lib,
    training_run,  # noqa: E402
)

_CONFIG = config_flag.define(
    "A bundled config's name (e.g. default; ablation rows as ablation:la_t) or the path of an "
    "ml_collections config file. Override fields with --config.<field>=<value>.", cnn=False)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Directory for checkpoints, TensorBoard logs and run info; re-running with "
    "the same directory resumes training.")
flags.mark_flags_as_required(["config", "workdir"])


@errors.report_user_errors
def main(argv):
    if len(argv) > 1:
        raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    result = train_lib.train_and_evaluate(_CONFIG.value, _WORKDIR.value)
    dev = ", ".join(f"{k} {v:.4f}" for k, v in result["dev"].items())
    best = training_run.read_best(os.path.expanduser(_WORKDIR.value))
    best = f"; best: step {best['step']} ({best['metric']} {best['score']:.4f})" if best else ""
    print(f"finished at step {result['step']}; dev: {dev or 'n/a'}; "
          f"checkpoints in {_WORKDIR.value}/checkpoints{best}", flush=True)


def run():
    errors.run_app(main)


if __name__ == "__main__":
    run()
