"""`ast-net-train`: trains AST-Net's Siamese temporal network on feature TFRecords.

  ast-net-train --config=ast_net/configs/default.py --workdir=/tmp/ast \
      --config.data.data_dir=/tmp/syn [--config.train.num_steps=3000 ...]

Re-running the same command resumes from the latest checkpoint in --workdir. Any config field
can be overridden as --config.<field>=<value>; see the config file's docstring for the result it
should reach.
"""

from absl import flags
from ml_collections import config_flags

from ast_net import errors, train_lib

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Path to an ml_collections config file (e.g. ast_net/configs/default.py; "
    "ablation rows as ast_net/configs/ablation.py:la_t). Override fields with "
    "--config.<field>=<value>.", lock_config=True)
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
    print(f"finished at step {result['step']}; dev: {dev or 'n/a'}; "
          f"checkpoints in {_WORKDIR.value}/checkpoints", flush=True)


def run():
    errors.run_app(main)


if __name__ == "__main__":
    run()
