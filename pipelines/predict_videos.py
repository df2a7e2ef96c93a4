"""`ast-net-predict-videos`: ast-net-predict over a video archive as an Apache Beam job.

  ast-net-predict-videos --video=videos/ --out_dir=out/            # every core of this machine
  ast-net-predict-videos --video='archive/**/*.mp4' --out_dir=out/ --workdir=/tmp/ast \
      --direct_num_workers=2
  # Another runner, its options after `--` (docs/beam.md):
  ast-net-predict-videos --video=/mnt/shared/videos --out_dir=/mnt/shared/out \
      --runner=FlinkRunner -- --flink_master=host:8081 --environment_type=DOCKER ...

Writes per video what ast-net-predict writes (<name>.csv, <name>.json, <name>.png and with
--annotate <name>_annotated.mp4), the same values; re-running skips the videos already done
from the same file with the same settings; each failed video is listed (`failed: ...`) and the
command ends with one `error:` line and exit 2 when any failed. See
pipelines/predict_videos_lib.py.
"""

from ast_net import startup

startup.quiet_tensorflow()  # First, before anything imports TensorFlow (binaries only).


from absl import flags  # noqa: E402

from ast_net import beam_flags, engine_flags, errors  # noqa: E402

_VIDEO = flags.DEFINE_list(
    "video", None, "Video files, directories of videos or glob patterns (quote them; ** "
    "matches folders at any depth), comma-separated.")
_OUT = flags.DEFINE_string(
    "out_dir", None, "Output directory for the CSVs, JSON sidecars, plots and videos; "
    ".work/predict/ in it holds each video's result (what a re-run skips).")
_CHECKPOINT = flags.DEFINE_string(
    "workdir", None, "Work directory of ast-net-train (as ast-net-predict). Default: the "
    "zero-shot baseline of the embedded FER2013 CNN.")
_ANNOTATE = flags.DEFINE_boolean(
    "annotate", False, "Also write <name>_annotated.mp4 with face boxes, track ids and values.")
_ENGINE = engine_flags.define(
    batch_size=32, batch_size_help="Frames whose faces go through the CNN together.")
_BEAM = beam_flags.define(workers_default=0, each_worker="each with its own engine; at most "
                          "one per video")


@errors.report_user_errors
def main(argv):
    beam = _BEAM.kwargs(argv)
    if not _VIDEO.value or not _OUT.value:
        raise errors.UserError("--video and --out_dir are required (see --help)")
    options = _ENGINE.options(_CHECKPOINT.value)
    startup.quiet_beam_logs()
    with startup.quiet_beam_import():  # Here: `--help` and a bad flag need neither Beam nor TF.
        from ast_net.pipelines import predict_videos_lib
    predict_videos_lib.predict_videos(predict_videos_lib.Config(
        inputs=_VIDEO.value, out_dir=_OUT.value, workdir=_CHECKPOINT.value, options=options,
        annotate=_ANNOTATE.value, **beam))


def run():
    errors.run_app(main)


if __name__ == "__main__":
    run()
