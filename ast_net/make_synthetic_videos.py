"""`ast-net-synthetic-videos`: face videos with known valence/arousal, in the AVEC 2012 layout.

  ast-net-synthetic-videos --out_dir=/tmp/synvid
  ast-net-prepare-videos --dataset=avec2012 --root=/tmp/synvid ...

Animates the astronaut photo (valence -> mouth corners, arousal -> eyes, brows and head motion;
pose, light, noise and per-subject look as nuisances) and writes `{split}/videos/*.avi`, the
`FC_{split}_labels/*.dat` label files (delayed by a per-video annotator delay), the undelayed
truth `labels_truth.csv` and `synthetic_manifest.json`. The defaults (6/2/2 videos of 600
frames, 320x240 at 49.979 fps) take about 20 s on 2 CPU cores; see docs/synthetic.md,
section Synthetic face videos.
"""

from ast_net import startup

startup.quiet_tensorflow()  # First, before anything imports TensorFlow (binaries only).

from absl import flags  # noqa: E402

from ast_net import errors  # noqa: E402
from ast_net.data import synthetic_video, synthetic_video_io  # noqa: E402

_OUT_DIR = flags.DEFINE_string("out_dir", None, "Data set root to write (created if missing; "
                               "files of the same names are replaced).")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed: the same seed writes the same frames and "
                             "labels; each video depends only on (seed, split, number).")
_NUM_TRAIN = flags.DEFINE_integer("num_train", 6, "Videos in the train split (train001 ...), "
                                  "each a different synthetic subject.")
_NUM_DEV = flags.DEFINE_integer("num_dev", 2, "Videos in the development split (devel001 ...).")
_NUM_TEST = flags.DEFINE_integer("num_test", 2, "Videos in the test split (test001 ...).")
_FRAMES = flags.DEFINE_integer("frames", 600, "Frames per video. The default temporal model "
                               "needs more than 501 (a clip spans 50 x 10 frames plus 1).")
_FPS = flags.DEFINE_float("fps", synthetic_video.LABEL_FPS, "Video frame rate. Labels are "
                          "always written at AVEC 2012's 49.979 per second, so only at the "
                          "default is there one label line per video frame.")
_WIDTH = flags.DEFINE_integer("width", 320, "Frame width in pixels (even). The face scales "
                              "with min(width/320, height/240); at 320x240 it is ~110x140 px.")
_HEIGHT = flags.DEFINE_integer("height", 240, "Frame height in pixels (even).")
_CODEC = flags.DEFINE_enum("codec", "mjpg", sorted(synthetic_video_io.CODECS),
                           "Video codec: mjpg writes .avi (Motion JPEG, frame-exact seeking), "
                           "mp4v writes .mp4 (MPEG-4 part 2, about 4x smaller).")
flags.mark_flags_as_required(["out_dir"])


@errors.report_user_errors
def main(argv):
    if len(argv) > 1:
        raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    manifest = synthetic_video_io.generate(
        _OUT_DIR.value, seed=_SEED.value, num_train=_NUM_TRAIN.value, num_dev=_NUM_DEV.value,
        num_test=_NUM_TEST.value, num_frames=_FRAMES.value, fps=_FPS.value, width=_WIDTH.value,
        height=_HEIGHT.value, codec=_CODEC.value)
    print(f"wrote {len(manifest['videos'])} videos of {_FRAMES.value} frames "
          f"({_WIDTH.value}x{_HEIGHT.value}, {_FPS.value:g} fps) and their labels to "
          f"{_OUT_DIR.value}", flush=True)


def run():
    errors.run_app(main)


if __name__ == "__main__":
    run()
