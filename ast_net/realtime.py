"""ast-net-realtime: live valence/arousal of every face from a camera, a stream or a video file.

  ast-net-realtime --source=0 --out=live/ --display          # first camera, on screen
  ast-net-realtime --source=rtsp://cam.local/stream --out=live/
  ast-net-realtime --source=clip.mp4 --out=live/ --nopace    # a file, every frame, full speed

Frames are dropped (not queued) when the source is faster than the model, so latency stays
bounded; fps and latency are printed once per second (and drawn with --display when OpenCV has
a GUI). Each session writes its own live/<source name>-<UTC start>.csv like ast-net-predict
(flushed every second; never overwriting an earlier session). Ctrl-C or SIGTERM stops cleanly
(CSV closed and renamed, exit status 0). See ast_net/realtime_lib.py.
"""

import signal
import sys

from absl import flags

from ast_net import errors, realtime_lib
from ast_net.faces import video as video_lib

_SOURCE = flags.DEFINE_string(
    "source", None, "Camera index (0, 1, ...), stream URL (rtsp://, http://, ...) or video file.")
_OUT = flags.DEFINE_string("out", "realtime_out", "Output directory for each session's "
                           "<source name>-<UTC start>.csv.")
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "Work directory of ast-net-train. Default: the zero-shot baseline of "
    "the embedded FER2013 CNN (emotion probabilities mapped onto Russell's circumplex).")
_STEP = flags.DEFINE_string(
    "step", None, "With --checkpoint: which of its checkpoints: latest (default; the newest "
    "intact one), best (best dev score, checkpoints/best/) or a step number.")
_PACE = flags.DEFINE_boolean(
    "pace", True, "Video files only: play at the file's frame rate, dropping frames when the "
    "model is slower (--pace, like a camera), or process every frame as fast as possible "
    "(--nopace / --no-pace).")
_DISPLAY = flags.DEFINE_boolean(
    "display", False, "Show the annotated frames in a window (needs an OpenCV build with a GUI; "
    "opencv-python-headless has none, then fps and latency stay in the log). q quits.")
_MAX_SECONDS = flags.DEFINE_float("max_seconds", 0.0, "Stop after this many seconds (0 = run "
                                  "until Ctrl-C or the end of the source).")
_DETECT_EVERY = flags.DEFINE_integer(
    "detect_every", None, "Frames between full MTCNN detections (default: the checkpoint's "
    "preprocessing contract, else 10 as ast-net-prepare-videos; new faces are found at the "
    "latest after this many frames).")
_REFINE_EVERY = flags.DEFINE_integer(
    "refine_every", None, "Frames between O-Net refinements of the tracked boxes (default: "
    "the checkpoint's contract, else 1 as ast-net-prepare-videos); the box is held in "
    "between (1 = every frame).")
_MIN_FACE = flags.DEFINE_integer(
    "min_face_size", None, "Smallest face side, in pixels, the detector looks for (default: "
    "the checkpoint's contract, else 40 as ast-net-prepare-videos).")
_BACKBONE = flags.DEFINE_enum(
    "backbone", None, ["mini_xception", "vgg16"], "Attribute CNN (zero-shot default: "
    "mini_xception; with --checkpoint: the backbone its training features came from).")
_BACKBONE_WEIGHTS = flags.DEFINE_string(
    "backbone_weights", None, "Weights file of the backbone (vgg16: the fine-tuned .h5).")
_FACE_SIZE = flags.DEFINE_integer(
    "face_size", 0, "Side of the aligned face crops (0 = the checkpoint's preprocessing "
    "contract, else the CNN's input size; a contradicting value is an error).")
_SMOOTHING = flags.DEFINE_float(
    "smoothing_s", None, "Zero-shot only: time constant in seconds of the causal moving "
    "average of each face's values (default 0.5; 0 = none).")
_MAX_FACES = flags.DEFINE_integer(
    "max_faces", None, "Track at most this many faces at once, largest first (default: all).")
_BATCH = flags.DEFINE_integer(
    "batch_size", 4, "Most frames whose faces go through the CNN together; the model takes "
    "whatever is ready up to this (larger = more throughput, more latency).")


@errors.report_user_errors
def main(argv):
    video_lib.quiet_ffmpeg()
    # SIGTERM (kill, systemd, docker stop) ends a session like Ctrl-C: CSV flushed and renamed.
    signal.signal(signal.SIGTERM, realtime_lib.on_sigterm)
    if len(argv) > 1:
        raise errors.UserError(f"unexpected arguments {argv[1:]} (use --source=...)")
    if _SOURCE.value is None:
        raise errors.UserError("--source is required (camera index, stream URL or video file)")
    for flag in (_DETECT_EVERY, _REFINE_EVERY, _BATCH):
        if flag.value is not None and flag.value < 1:
            raise errors.UserError(f"--{flag.name} must be >= 1, got {flag.value}")
    if _MIN_FACE.value is not None and _MIN_FACE.value < 12:
        raise errors.UserError(f"--min_face_size must be >= 12 px, got {_MIN_FACE.value}")
    if _STEP.value is not None and not _CHECKPOINT.value:
        raise errors.UserError("--step picks a checkpoint of --checkpoint; give --checkpoint")
    try:
        _run()
    except realtime_lib.Terminated:  # Before the session started: no file was written.
        print("terminated", file=sys.stderr, flush=True)
        sys.exit(128 + signal.SIGTERM)


def _run():
    realtime_lib.run_realtime(
        _SOURCE.value, _OUT.value, pace=_PACE.value, display=_DISPLAY.value,
        max_seconds=_MAX_SECONDS.value, checkpoint=_CHECKPOINT.value, step=_STEP.value,
        backbone=_BACKBONE.value,
        backbone_weights=_BACKBONE_WEIGHTS.value, smoothing_s=_SMOOTHING.value,
        detect_every=_DETECT_EVERY.value, refine_every=_REFINE_EVERY.value,
        min_face_size=_MIN_FACE.value, max_faces=_MAX_FACES.value, face_size=_FACE_SIZE.value,
        batch_frames=_BATCH.value)


def run():
    # absl spells a false boolean --nopace; accept the common --no-pace too.
    sys.argv = ["--nopace" if a == "--no-pace" else a for a in sys.argv]
    errors.run_app(main)


if __name__ == "__main__":
    run()
