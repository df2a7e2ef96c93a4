"""`ast-net-train-cnn`: fine-tunes the attribute CNN (VGG16 or mini-Xception) on FER2013.

  ast-net-train-cnn --config=cnn_vgg16 --workdir=/tmp/cnn_vgg16 \
      --manual_dir=~/data/fer2013 \
      --config.model.init_weights=~/weights/rcmalli_vggface_tf_vgg16.h5

`--manual_dir` holds the Kaggle `fer2013.csv`; TFDS prepares it once under `--tfds_dir`.
Re-running the same command resumes after the last finished loop. The fine-tuned network is
written to the workdir as the file `load_backbone` / `ast-net-extract-features
--backbone_weights` read.
"""

from ast_net import startup

startup.quiet_tensorflow()  # First, before anything imports TensorFlow (binaries only).

from absl import flags  # noqa: E402

from ast_net import config_flag, errors, flag_names, train_cnn_lib  # noqa: E402

_CONFIG = config_flag.define(
    "A bundled config's name (cnn_vgg16: the paper) or the path of an ml_collections config "
    "file. Override fields with --config.<field>=<value>, e.g. "
    "--config.train.mixed_precision=True.", cnn=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Directory for checkpoints, TensorBoard logs, metrics.json and the "
    "fine-tuned weights; re-running with the same directory resumes training.")
_TFDS_DIR = flags.DEFINE_string(
    "tfds_dir", None, "TFDS data directory where FER2013 is prepared once (overrides "
    "config.data.data_dir; default ~/tensorflow_datasets).")
_MANUAL_DIR = flags.DEFINE_string(
    "manual_dir", None, "Directory holding the Kaggle fer2013.csv (overrides "
    "config.data.manual_dir); only needed until the dataset has been prepared.")
flag_names.deprecated_alias("data_dir", "tfds_dir")  # --data_dir: feature records elsewhere.
flags.mark_flags_as_required(["config", "workdir"])


@errors.report_user_errors
def main(argv):
    if len(argv) > 1:
        raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    config = _CONFIG.value
    if _TFDS_DIR.value is not None:
        config.data.data_dir = _TFDS_DIR.value
    if _MANUAL_DIR.value is not None:
        config.data.manual_dir = _MANUAL_DIR.value
    metrics = train_cnn_lib.train_and_evaluate(config, _WORKDIR.value)
    split = config.data.eval_split
    print(f"{split} accuracy {metrics[f'{split}_accuracy']:.4f}; fine-tuned weights: "
          f"{metrics['export']}", flush=True)


def run():
    errors.run_app(main)  # A bad flag or --config.<field> is one error line too.


if __name__ == "__main__":
    run()
