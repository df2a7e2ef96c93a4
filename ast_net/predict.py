"""ast-net-predict: per-frame valence/arousal of every face in videos -> CSV, plot, annotated copy.

  ast-net-predict --video=clip.mp4 --out_dir=out/                    # zero-shot default
  ast-net-predict --video=videos/ --out_dir=out/ --workdir=/tmp/ast  # a trained AST-Net
  ast-net-predict --video='videos/*.mov' --out_dir=out/ --annotate

Writes out/<name>.csv (frame, timestamp_s, face_id, face_present, valence, arousal, box_x,
box_y, box_w, box_h), out/<name>.png and, with --annotate, out/<name>_annotated.mp4. Without a
checkpoint the values are a zero-shot baseline (FER2013 emotion probabilities mapped onto
Russell's circumplex), not a model trained on valence/arousal. See ast_net/predict_lib.py.
"""

from ast_net import startup

startup.quiet_tensorflow()  # First, before anything imports TensorFlow (binaries only).

from absl import flags  # noqa: E402

from ast_net import engine_flags, errors, flag_names, predict_lib  # noqa: E402
from ast_net.faces import video as video_lib  # noqa: E402

_VIDEO = flags.DEFINE_string(
    "video", None, "Video file, directory of videos, or glob pattern (quote it; ** matches "
    "folders at any depth: 'videos/**/*.mp4') to predict.")
_OUT = flags.DEFINE_string(
    "out_dir", None, "Output directory for the CSVs, JSON sidecars, plots and videos.")
_CHECKPOINT = flags.DEFINE_string(
    "workdir", None, "Work directory of ast-net-train (its latest checkpoint is used; see "
    "--step). Default: the zero-shot baseline of the embedded FER2013 CNN.")
flag_names.deprecated_alias("out", "out_dir")
flag_names.deprecated_alias("checkpoint", "workdir")
_ANNOTATE = flags.DEFINE_boolean(
    "annotate", False, "Also write <name>_annotated.mp4 with face boxes, track ids and values.")
_ENGINE = engine_flags.define(
    batch_size=32, batch_size_help="Frames whose faces go through the CNN together (more is "
    "faster, up to memory; results are written with this many frames of delay).")
_PROGRESS = flags.DEFINE_boolean(
    "progress", True, "Show a progress bar when stderr is a terminal (never in a log file).")


@errors.report_user_errors
def main(argv):
    video_lib.quiet_ffmpeg()
    if len(argv) > 1:
        raise errors.UserError(f"unexpected arguments {argv[1:]} (use --video=PATH)")
    if not _VIDEO.value or not _OUT.value:
        raise errors.UserError("--video and --out_dir are required (see --help)")
    options = _ENGINE.options(_CHECKPOINT.value)
    predict_lib.predict(
        [_VIDEO.value], _OUT.value, checkpoint=_CHECKPOINT.value, annotate=_ANNOTATE.value,
        progress=_PROGRESS.value, options=options)


def run():
    errors.run_app(main)


if __name__ == "__main__":
    run()
