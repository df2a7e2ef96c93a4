"""`ast-net-ablation`: trains each row of the paper's Table 1 over several seeds; writes the table.

  ast-net-synthetic --out_dir=/tmp/syn
  ast-net-ablation --data_dir=/tmp/syn --workdir=/tmp/abl [--num_steps=1500] [--split=test] \
      [--seeds=3] [--seed=0] [--base=default|paper]

Runs seeds `--seed` .. `--seed + --seeds - 1` of every row. Writes <workdir>/ablation.csv (one
line per row and seed, plus a "mean" and an "sd" line per row) and <workdir>/ablation.md (mean
± sd, and each seed's mean CC); a re-run skips (row, seed) runs already finished.
"""

from ast_net import startup

startup.quiet_tensorflow()  # First, before anything imports TensorFlow (binaries only).

from absl import flags  # noqa: E402

from ast_net import ablation_lib, errors  # noqa: E402
from ast_net.configs import ablation  # noqa: E402

_DATA_DIR = flags.DEFINE_string("data_dir", None, "Feature TFRecord directory (train/dev/test).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Runs go to <workdir>/<row>/seed_<s>.")
_SPLIT = flags.DEFINE_string("split", "test", "Split the table is computed on.")
_ROWS = flags.DEFINE_list("rows", None, f"Rows to run (default all): {', '.join(ablation.ROWS)}.")
_NUM_STEPS = flags.DEFINE_integer("num_steps", None, "Training steps per row (default: the "
                                  "config's num_steps).")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds per row: each row is trained and scored once "
                               "per seed, and the table gives mean ± sd over them.", lower_bound=1)
_SEED = flags.DEFINE_integer("seed", 0, "First seed (the runs use seed .. seed + seeds - 1).")
_BASE = flags.DEFINE_enum("base", "default", list(ablation.BASES),
                          "Config the rows are built on: the stabilised default (label warm-up, "
                          "input LayerNorm) or the paper's exact setting.")
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
                                      seeds=range(_SEED.value, _SEED.value + _SEEDS.value),
                                      base=_BASE.value)
    print(ablation_lib.to_markdown(table))


def run():
    errors.run_app(main)


if __name__ == "__main__":
    run()
