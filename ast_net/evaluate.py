"""`ast-net-evaluate`: scores a checkpoint of a work directory on one split.

  ast-net-evaluate --workdir=/tmp/ast --split=test [--step=latest|best|N]

Writes <workdir>/eval/<split>_per_video.csv (video, dimension, CC, CCC, RMSE, frames), a summary
CSV, per-frame prediction CSVs and a plot, and prints Max / Min / Mean CC per dimension as in
the paper's tables.
"""

from ast_net import startup

startup.quiet_tensorflow()  # First, before anything imports TensorFlow (binaries only).

from absl import flags  # noqa: E402

from ast_net import errors, evaluate_lib  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "Work directory written by ast-net-train.")
_SPLIT = flags.DEFINE_string("split", "dev", "Split to evaluate: the {split}-*.tfrecord files "
                             "of the data directory (train, dev, test, ...).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "Feature TFRecord directory; default: the "
                                "data_dir the model was trained with.")
_OUT_DIR = flags.DEFINE_string("out_dir", None, "Where the CSVs and plots go; default "
                               "<workdir>/eval.")
_MERGE_PHASES = flags.DEFINE_bool(
    "merge_phases", None, "Merge the Δt phase predictions into one per-frame sequence (causal "
    "mean of the last Δt frames, ast_net/windows.py); default: the workdir's "
    "config.output.merge_phases (on). --nomerge_phases scores the raw window values.")
_STEP = flags.DEFINE_string(
    "step", "latest", "Checkpoint to score: latest (the newest intact one; a damaged newer one "
    "is skipped with a warning), best (best dev score during training, checkpoints/best/) or "
    "a step number.")
flags.mark_flags_as_required(["workdir"])


@errors.report_user_errors
def main(argv):
    if len(argv) > 1:
        raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    _, summary, csv_path = evaluate_lib.evaluate_workdir(  # Expands `~` in the paths.
        _WORKDIR.value, _SPLIT.value, data_dir=_DATA_DIR.value, out_dir=_OUT_DIR.value,
        merge_phases=_MERGE_PHASES.value, step=_STEP.value)
    print(evaluate_lib.format_table(summary, title=f"AST-Net on split '{_SPLIT.value}'"))
    print(f"per-video scores: {csv_path}", flush=True)


def run():
    errors.run_app(main)


if __name__ == "__main__":
    run()
