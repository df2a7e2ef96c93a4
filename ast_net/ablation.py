"""`ast-net-ablation`: trains every row of the paper's Table 1 and writes the table.

  ast-net-synthetic --out_dir=/tmp/syn
  ast-net-ablation --data_dir=/tmp/syn --workdir=/tmp/abl [--num_steps=1500] [--split=test]

Writes <workdir>/ablation.csv and <workdir>/ablation.md; a re-run skips rows already trained.
"""

from absl import flags

from ast_net import ablation_lib, errors
from ast_net.configs import ablation

_DATA_DIR = flags.DEFINE_string("data_dir", None, "Feature TFRecord directory (train/dev/test).")
_WORKDIR = flags.DEFINE_string("workdir", None, "One sub-directory per row goes here.")
_SPLIT = flags.DEFINE_string("split", "test", "Split the table is computed on.")
_ROWS = flags.DEFINE_list("rows", None, f"Rows to run (default all): {', '.join(ablation.ROWS)}.")
_NUM_STEPS = flags.DEFINE_integer("num_steps", None, "Training steps per row (default: the "
                                  "config's num_steps).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of every row's training run.")
flags.mark_flags_as_required(["data_dir", "workdir"])


@errors.report_user_errors
def main(argv):
    if len(argv) > 1:
        raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    for row in _ROWS.value or []:
        if row not in ablation.ROWS:
            raise errors.UserError(f"--rows: unknown row {row!r}; expected {list(ablation.ROWS)}")
    # The library expands `~` in both paths (`--workdir=~/abl`: no shell expands it).
    table = ablation_lib.run_ablation(_DATA_DIR.value, _WORKDIR.value, split=_SPLIT.value,
                                      rows=_ROWS.value, num_steps=_NUM_STEPS.value,
                                      seed=_SEED.value)
    print(ablation_lib.to_markdown(table))


def run():
    errors.run_app(main)


if __name__ == "__main__":
    run()
