"""Turns a data set of videos + valence/arousal labels into sharded aligned-face TFRecords.

    ast-net-prepare-videos --dataset=avec2012 --root=/data/AVEC2012 --out_dir=/data/avec_faces
    # Beam options after `--`, e.g. two local worker processes or another runner:
    ast-net-prepare-videos --dataset=recola --root=... --out_dir=... -- \
        --direct_num_workers=2 --direct_running_mode=multi_processing

Writes `{split}-00000-of-000NN.tfrecord` shards (one SequenceExample per video chunk, schema in
`ast_net/data/schema.py`) and `manifest.json` (per video: status, frames, faces, labels,
length mismatches; and the preprocessing contract, `ast_net/contract.py`, that later stages
carry and check). With no flags the faces suit the default backbone (64 px mini_xception).
Re-running resumes: videos finished from the same inputs with the same options are skipped
(an edited label file, a replaced video or another --root is redone); each video that failed
or has no face is listed with its reason. Layouts, flags and figures: BUILD.md, section
Preparing videos. The work itself is `prepare_videos_lib.prepare_videos`.
"""


from ast_net import startup

startup.quiet_tensorflow()  # First, before anything imports TensorFlow (binaries only).

from absl import flags  # noqa: E402

from ast_net import beam_flags, contract, errors  # noqa: E402
from ast_net.data import layouts  # noqa: E402
from ast_net.models import backbones  # noqa: E402

_DATASET = flags.DEFINE_enum(
    "dataset", None, list(layouts.DATASETS),
    "Layout of --root: avec2012, recola, affwild2, sewa or csv (see "
    "BUILD.md, section Preparing videos for each folder tree).")
_ROOT = flags.DEFINE_string("root", None, "Folder holding the data set's videos and labels.")
_OUT_DIR = flags.DEFINE_string(
    "out_dir", None, "Output folder for the TFRecord shards, manifest.json and the .work/ "
    "folder of per-video parts (kept so a re-run skips finished videos).")
_SPLITS = flags.DEFINE_list(
    "splits", [], "Only these splits (train, dev, test, all; 'devel' is accepted for dev). "
    "Empty: every split found.")
_BACKBONE = flags.DEFINE_enum(
    "backbone", backbones.DEFAULT, list(backbones.BACKBONES),
    "Attribute CNN the faces are prepared for: it sets the default --face_size (its input "
    "size: 64 for mini_xception, 224 for vgg16); ast-net-extract-features refuses faces of "
    "another size than its backbone's input.")
_FACE_SIZE = flags.DEFINE_integer(
    "face_size", 0, "Side S of the S x S aligned face crops; 0: the --backbone's input size "
    "(64 for the default FER2013 mini-Xception, 224 for VGG16).")
_DETECT_EVERY = flags.DEFINE_integer(
    "detect_every", contract.DEFAULT_DETECT_EVERY, "Run full MTCNN detection every k frames "
    "(and whenever the face is lost); frames in between are tracked by refining the previous "
    "box. 1: detect on every frame.")
_REFINE_EVERY = flags.DEFINE_integer(
    "refine_every", contract.DEFAULT_REFINE_EVERY, "Track (O-Net refinement) every k-th "
    "frame and hold the boxes in between (1: every frame). Recorded in the preprocessing "
    "contract; ast-net-predict uses the same value.")
_MIN_FACE_SIZE = flags.DEFINE_integer(
    "min_face_size", contract.DEFAULT_MIN_FACE_SIZE,
    "Smallest face, in pixels, the detector looks for.")
_CHUNK_FRAMES = flags.DEFINE_integer(
    "chunk_frames", 3000, "Frames per record: longer videos are written as several records "
    "of this many frames, which keeps memory bounded on hour-long videos.")
_JPEG_QUALITY = flags.DEFINE_integer(
    "jpeg_quality", 90, "JPEG quality (1-100) of the stored aligned faces.")
_RESAMPLE = flags.DEFINE_enum(
    "resample", "linear", ["linear", "nearest"],
    "How labels are put on frame timestamps: linear interpolation between the two label "
    "samples around each frame, or the nearest sample. Frames outside the labels or in an "
    "unlabelled gap are masked either way.")
_MAX_GAP_S = flags.DEFINE_float(
    "max_gap_s", None, "Label samples further apart than this many seconds are not "
    "interpolated across (frames between are masked). Default: 1.5 label steps.")
_NUM_SHARDS = flags.DEFINE_integer(
    "num_shards", 0, "Shards per split. 0: one per 10 videos of the split (at least 1).")
_BEAM = beam_flags.define(workers_default=1, each_worker="each with its own face detector")
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar of videos and frames.")


@errors.report_user_errors
def main(argv):
    beam = _BEAM.kwargs(argv)
    startup.quiet_beam_logs()  # Keeps the progress bar readable.
    for name, flag in (("dataset", _DATASET), ("root", _ROOT), ("out_dir", _OUT_DIR)):
        if not flag.value:
            raise errors.UserError(f"--{name} is required")
    # A bad --root or an empty layout is reported before TensorFlow and Beam are imported.
    # `--root=~/data` (the shell leaves `~` after `--flag=` alone): find_items and
    # prepare_videos expand it.
    layouts.find_items(_DATASET.value, _ROOT.value, _SPLITS.value or None)
    with startup.quiet_beam_import():
        from ast_net.pipelines import prepare_videos_lib, video_records
    config = prepare_videos_lib.Config(
        dataset=_DATASET.value, root=_ROOT.value, out_dir=_OUT_DIR.value,
        splits=tuple(_SPLITS.value),
        options=video_records.Options(
            face_size=_FACE_SIZE.value, detect_every=_DETECT_EVERY.value,
            min_face_size=_MIN_FACE_SIZE.value, chunk_frames=_CHUNK_FRAMES.value,
            jpeg_quality=_JPEG_QUALITY.value, resample=_RESAMPLE.value,
            max_gap_s=_MAX_GAP_S.value, refine_every=_REFINE_EVERY.value,
            backbone=_BACKBONE.value),
        num_shards=_NUM_SHARDS.value, progress=_PROGRESS.value, **beam)
    summary = prepare_videos_lib.prepare_videos(config)
    print(summary.line(), flush=True)
    for video_id, status, reason in summary.problems:  # Cached results of a re-run too.
        print(f"{status}: {video_id}: {reason}", flush=True)
    if summary.videos and not summary.ok:
        raise errors.UserError(
            f"none of the {summary.videos} videos could be processed ({summary.failed} failed, "
            f"{summary.no_face} with no face): reasons above and in {summary.manifest_path}")


def run():
    errors.run_app(main)


if __name__ == "__main__":
    run()
