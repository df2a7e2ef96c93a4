"""Binary `ast-net-synthetic`: writes the synthetic AST-Net benchmark (feature TFRecords).

  ast-net-synthetic --out_dir=/tmp/syn [--seed=0 --num_subjects=20 --feature_dim=128 ...]

Writes `{split}-0000i-of-0000k.tfrecord` SequenceExamples (per-frame features, valence, arousal,
label mask, face-present flag) and `manifest.json` into --out_dir; see
`ast_net/data/synthetic.py` for what the data are and docs/synthetic.md,
for timings.
"""

from ast_net import startup

startup.quiet_tensorflow()  # First, before anything imports TensorFlow (binaries only).

from absl import flags  # noqa: E402

from ast_net import errors  # noqa: E402
from ast_net.data import synthetic  # noqa: E402

_DEFAULTS = synthetic.Params()

_OUT_DIR = flags.DEFINE_string(
    "out_dir", None, "Directory to write the TFRecord shards and manifest.json into (created "
    "if missing; shards of an earlier run of this generator there are replaced).")
_SEED = flags.DEFINE_integer(
    "seed", _DEFAULTS.seed, "Random seed: the same seed and flags give byte-identical files.")
_NUM_SUBJECTS = flags.DEFINE_integer(
    "num_subjects", _DEFAULTS.num_subjects,
    "Number of synthetic subjects (identities), split by subject into the --splits.")
_VIDEOS_PER_SUBJECT = flags.DEFINE_string(
    "videos_per_subject", "{}-{}".format(*_DEFAULTS.videos_per_subject),
    "Videos per subject: N, or MIN-MAX to draw each subject's count in that range.")
_FEATURE_DIM = flags.DEFINE_integer(
    "feature_dim", _DEFAULTS.feature_dim, "D, the length of each frame's feature vector.")
_FPS = flags.DEFINE_float("fps", _DEFAULTS.fps, "Frame rate of the synthetic videos.")
_MIN_FRAMES = flags.DEFINE_integer(
    "min_frames", _DEFAULTS.min_frames, "Shortest video length in frames.")
_MAX_FRAMES = flags.DEFINE_integer(
    "max_frames", _DEFAULTS.max_frames, "Longest video length in frames.")
_SPLITS = flags.DEFINE_string(
    "splits", ",".join(f"{n}={w:g}" for n, w in _DEFAULTS.splits),
    "Splits and their share of the subjects, NAME=SHARE,...; every split gets >= 1 subject.")
_MIN_DELAY = flags.DEFINE_float(
    "min_delay_s", _DEFAULTS.min_delay_s,
    "Shortest annotator delay in seconds (labels lag the face by a per-video delay).")
_MAX_DELAY = flags.DEFINE_float(
    "max_delay_s", _DEFAULTS.max_delay_s, "Longest annotator delay in seconds.")
_FEATURE_NOISE = flags.DEFINE_float(
    "feature_noise", _DEFAULTS.feature_noise, "Std of the per-frame i.i.d. feature noise.")
_NUM_SHARDS = flags.DEFINE_integer(
    "num_shards", _DEFAULTS.num_shards,
    "TFRecord shards per split (fewer when a split has fewer videos).")


@errors.report_user_errors
def main(argv):
    if len(argv) > 1:
        raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not _OUT_DIR.value:
        raise errors.UserError("--out_dir is required (directory to write the benchmark into)")
    manifest = synthetic.write_benchmark(
        _OUT_DIR.value, show_progress=True, seed=_SEED.value,
        num_subjects=_NUM_SUBJECTS.value, videos_per_subject=_VIDEOS_PER_SUBJECT.value,
        feature_dim=_FEATURE_DIM.value, fps=_FPS.value, min_frames=_MIN_FRAMES.value,
        max_frames=_MAX_FRAMES.value, splits=_SPLITS.value, min_delay_s=_MIN_DELAY.value,
        max_delay_s=_MAX_DELAY.value, feature_noise=_FEATURE_NOISE.value,
        num_shards=_NUM_SHARDS.value)
    print(synthetic.summary(manifest, _OUT_DIR.value))


def run():
    errors.run_app(main)


if __name__ == "__main__":
    run()
