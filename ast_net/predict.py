"""ast-net-predict: per-frame valence/arousal of every face in videos -> CSV, plot, annotated copy.

  ast-net-predict --video=clip.mp4 --out=out/                      # zero-shot default
  ast-net-predict --video=videos/ --out=out/ --checkpoint=/tmp/ast  # a trained AST-Net
  ast-net-predict --video='videos/*.mov' --out=out/ --annotate

Writes out/<name>.csv (frame, timestamp_s, face_id, face_present, valence, arousal, box_x,
box_y, box_w, box_h), out/<name>.png and, with --annotate, out/<name>_annotated.mp4. Without a
checkpoint the values are a zero-shot baseline (FER2013 emotion probabilities mapped onto
Russell's circumplex), not a model trained on valence/arousal. See ast_net/predict_lib.py.
"""

from absl import flags

from ast_net import engine_flags, errors, predict_lib
from ast_net.faces import video as video_lib

_VIDEO = flags.DEFINE_string(
    "video", None, "Video file, directory of videos, or glob pattern (quote it) to predict.")
_OUT = flags.DEFINE_string("out", None, "Output directory for the CSVs, plots and videos.")
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "Work directory of ast-net-train (its latest checkpoint is used). "
    "Default: the zero-shot baseline of the embedded FER2013 CNN.")
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
        raise errors.UserError("--video and --out are required (see --help)")
    options = _ENGINE.options(_CHECKPOINT.value)
    predict_lib.predict(
        [_VIDEO.value], _OUT.value, checkpoint=_CHECKPOINT.value, annotate=_ANNOTATE.value,
        progress=_PROGRESS.value, options=options)


def run():
    errors.run_app(main)


if __name__ == "__main__":
    run()
