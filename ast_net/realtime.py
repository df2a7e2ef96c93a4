"""ast-net-realtime: live valence/arousal of every face from a camera, a stream or a video file.

  ast-net-realtime --source=0 --out_dir=live/ --display      # first camera, on screen
  ast-net-realtime --source=rtsp://cam.local/stream --out_dir=live/
  ast-net-realtime --source=clip.mp4 --out_dir=live/ --nopace    # a file, every frame, full speed

Frames are dropped (not queued) when the source is faster than the model, so latency stays
bounded; fps and latency are printed once per second (and drawn with --display when OpenCV has
a GUI). Each session writes its own live/<source name>-<UTC start>.csv like ast-net-predict
(flushed every second; never overwriting an earlier session). Ctrl-C or SIGTERM stops cleanly
(CSV closed and renamed, exit status 0). See ast_net/realtime_lib.py.
"""

from ast_net import startup

startup.quiet_tensorflow()  # First, before anything imports TensorFlow (binaries only).

import signal  # noqa: E402
import sys  # noqa: E402

from absl import flags  # noqa: E402

from ast_net import engine_flags, errors, flag_names, realtime_lib  # noqa: E402
from ast_net.faces import video as video_lib  # noqa: E402

_SOURCE = flags.DEFINE_string(
    "source", None, "Camera index (0, 1, ...), stream URL (rtsp://, http://, ...) or video file.")
_OUT = flags.DEFINE_string("out_dir", "realtime_out", "Output directory for each session's "
                           "<source name>-<UTC start>.csv.")
_CHECKPOINT = flags.DEFINE_string(
    "workdir", None, "Work directory of ast-net-train. Default: the zero-shot baseline of "
    "the embedded FER2013 CNN (emotion probabilities mapped onto Russell's circumplex).")
flag_names.deprecated_alias("out", "out_dir")
flag_names.deprecated_alias("checkpoint", "workdir")
_PACE = flags.DEFINE_boolean(
    "pace", True, "Video files only: play at the file's frame rate, dropping frames when the "
    "model is slower (--pace, like a camera), or process every frame as fast as possible "
    "(--nopace / --no-pace).")
_DISPLAY = flags.DEFINE_boolean(
    "display", False, "Show the annotated frames in a window (needs an OpenCV build with a GUI; "
    "opencv-python-headless has none, then fps and latency stay in the log). q quits.")
_MAX_SECONDS = flags.DEFINE_float("max_seconds", 0.0, "Stop after this many seconds (0 = run "
                                  "until Ctrl-C or the end of the source).")
_ENGINE = engine_flags.define(
    batch_size=4, batch_size_help="Most frames whose faces go through the CNN together; the "
    "model takes whatever is ready up to this (larger = more throughput, more latency).")


@errors.report_user_errors
def main(argv):
    video_lib.quiet_ffmpeg()
    # SIGTERM (kill, systemd, docker stop) ends a session like Ctrl-C: CSV flushed and renamed.
    signal.signal(signal.SIGTERM, realtime_lib.on_sigterm)
    if len(argv) > 1:
        raise errors.UserError(f"unexpected arguments {argv[1:]} (use --source=...)")
    if _SOURCE.value is None:
        raise errors.UserError("--source is required (camera index, stream URL or video file)")
    options = _ENGINE.options(_CHECKPOINT.value)
    try:
        _run(options)
    except realtime_lib.Terminated:  # Before the session started: no file was written.
        print("terminated", file=sys.stderr, flush=True)
        sys.exit(128 + signal.SIGTERM)


def _run(options):
    realtime_lib.run_realtime(
        _SOURCE.value, _OUT.value, pace=_PACE.value, display=_DISPLAY.value,
        max_seconds=_MAX_SECONDS.value, checkpoint=_CHECKPOINT.value, options=options)


def run():
    # absl spells a false boolean --nopace; accept the common --no-pace too.
    sys.argv = ["--nopace" if a == "--no-pace" else a for a in sys.argv]
    errors.run_app(main)


if __name__ == "__main__":
    run()
