"""Train/serve consistency on a real video: ast-net-evaluate vs ast-net-predict, frame by frame.

  .venv/bin/python benchmarks/train_serve_consistency.py [--work_dir=/tmp/tsc] [--recipe_steps=100]

1. the README recipe at a small scale (`ast_net.demo.run_demo`: synthetic face videos ->
   prepare-videos -> extract-features -> train with the paper's N = 50, Δt = 10 -> export);
2. WolfgangLanger_Pexels.mp4 (472 frames, a real face) as a generic-CSV data set, prepared
   and extracted with NO flags (the preprocessing contract's defaults), evaluated offline;
3. the same video through ast-net-predict with the trained checkpoint and no flags.
Prints: the contracts, how many stored crops equal the predictor's crops (JPEG bytes), the
feature cosine similarity raw crop vs stored JPEG crop, and |evaluate - predict| / prediction
spread per dimension over all frames with a face and over the frames whose windows the two
share (`windows.streaming_equivalent`), plus the streaming-vs-offline window effect alone
(the streaming head fed the stored features). Every step skips work already in --work_dir.
"""

import os
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ast_net import startup  # noqa: E402

startup.quiet_tensorflow()  # Before TensorFlow: its start-up lines filtered.

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from absl import app, flags, logging  # noqa: E402

# Names unlike ast_net.demo's flags (imported below, it defines --out_dir, --num_steps, ...).
_OUT = flags.DEFINE_string("work_dir", "/tmp/tsc", "Working folder (reused: steps resume).")
_STEPS = flags.DEFINE_integer("recipe_steps", 100, "Training steps of the recipe.")
_FRAMES = flags.DEFINE_integer("recipe_frames", 600, "Frames per synthetic training video.")
_VIDEO = "WolfgangLanger_Pexels.mp4"


def _spread_diff(a, b, spread):
    d = np.abs(a - b) / spread
    return (f"mean {d[:, 0].mean():.4f} / {d[:, 1].mean():.4f}, "
            f"max {d[:, 0].max():.4f} / {d[:, 1].max():.4f}")


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    from ast_net.pipelines import extract_features_lib, prepare_videos_lib

    from ast_net import (
        contract,
        demo,
        evaluate_lib,
        inference,
        predict_lib,
        sample_media,
        training_run,
        windows,
    )
    from ast_net.data import records
    from ast_net.faces import video as video_lib
    from ast_net.faces import video_faces

    out = os.path.abspath(_OUT.value)
    paths = demo.run_demo(os.path.join(out, "recipe"), num_steps=_STEPS.value,
                          frames=_FRAMES.value, train_videos=2, dev_videos=1, test_videos=1)
    workdir = paths["workdir"]
    _, config, _, _ = training_run.load_temporal(workdir)
    n, step = int(config.data.clip_length), int(config.data.frame_step)

    root = os.path.join(out, "wolf", "test")
    os.makedirs(root, exist_ok=True)
    video = os.path.join(root, _VIDEO)
    if not os.path.exists(video):
        shutil.copy(sample_media.path(_VIDEO), video)
        t = np.arange(472)
        pd.DataFrame({"frame": t, "valence": np.sin(t / 40), "arousal": np.cos(t / 60)}).to_csv(
            os.path.splitext(video)[0] + ".csv", index=False)
    faces, features = os.path.join(out, "wolf_faces"), os.path.join(out, "wolf_features")
    prepare_videos_lib.prepare_videos(prepare_videos_lib.Config(
        dataset="csv", root=os.path.dirname(root), out_dir=faces, progress=False))
    extract_features_lib.extract_features(faces, features, progress=False)
    evaluate_lib.evaluate_workdir(workdir, "test", data_dir=features,
                                  out_dir=os.path.join(out, "wolf_eval"))
    folder = os.path.join(out, "wolf_eval", "test_predictions")
    (name,) = os.listdir(folder)
    offline = pd.read_csv(os.path.join(folder, name))[["valence", "arousal"]].to_numpy()

    print("faces contract:   ", contract.read_manifest(faces).to_dict())
    print("workdir contract: ", contract.of_workdir(workdir).to_dict())

    engine = inference.load_engine(workdir, keep_features=True)
    engine.reset()
    frames = [engine.faces(i, ts, rgb) for i, ts, rgb in video_lib.iter_frames(video)]
    preds = [p for k in range(0, len(frames), 32) for p in engine.predict_batch(frames[k:k + 32])]
    (result,) = predict_lib.predict([video], os.path.join(out, "wolf_predict"),
                                    checkpoint=workdir, progress=False)
    csv = pd.read_csv(result.csv_path)

    files = [os.path.join(features, f) for f in os.listdir(features) if f.endswith(".tfrecord")]
    (rec,) = list(records.iter_videos(files, engine.backbone.feature_dim))
    import tensorflow as tf
    face_files = [os.path.join(faces, f) for f in sorted(os.listdir(faces))
                  if f.endswith(".tfrecord")]
    raws = [r for f in face_files for r in tf.data.TFRecordDataset(f).as_numpy_iterator()]
    ex = tf.train.SequenceExample.FromString(raws[0])
    stored = [f.bytes_list.value[0] for f in ex.feature_lists.feature_list["frame/face_jpeg"]
              .feature]
    present = np.array([f.int64_list.value[0] for f in ex.feature_lists.feature_list[
        "frame/face_present"].feature]) > 0
    primary = 0
    both = np.array([present[p.index] and any(f.track_id == primary for f in p.faces)
                     for p in preds])
    same = sum(stored[p.index] == video_faces.encode_jpeg(
        next(f for f in frames[p.index].faces if f.track_id == primary).crop, 90)
        for p in preds if both[p.index])
    print(f"frames {len(preds)}, with the face in both paths {both.sum()}, identical stored "
          f"crops {same} of {both.sum()}")
    raw = np.stack([next(f for f in p.faces if f.track_id == primary).feature
                    for p in preds if both[p.index]])
    cos = np.sum(raw * rec.features[both], 1) / (
        np.linalg.norm(raw, axis=1) * np.linalg.norm(rec.features[both], axis=1))
    print(f"feature cosine raw crop vs stored JPEG crop: mean {cos.mean():.4f}, "
          f"min {cos.min():.4f}")
    online = np.array([[f.valence, f.arousal] for p in preds for f in p.faces
                       if f.track_id == primary and both[p.index]])
    rows = csv[csv["face_id"] == primary].set_index("frame")
    from_csv = rows.loc[np.flatnonzero(both), ["valence", "arousal"]].to_numpy()
    print(f"ast-net-predict CSV vs the engine above: max |diff| "
          f"{np.abs(from_csv - online).max():.2e}")
    spread = offline[both].max(0) - offline[both].min(0)
    shared = windows.streaming_equivalent(len(preds), n, step, merge_width=step)[both]
    print(f"N={n} Δt={step}; |evaluate - predict| / spread (valence / arousal): all frames "
          f"{_spread_diff(offline[both], online, spread)}; {shared.sum()} shared frames "
          f"{_spread_diff(offline[both][shared], online[shared], spread)}")
    head, _ = inference.load_head(workdir)

    def streamed(video):  # The streaming head over a record's stored features, one track.
        head.reset()
        return np.array([head.step_batch([(i, i / video.fps, [0], video.features[i:i + 1])])[0][0]
                         for i in range(len(video.features))])

    print("streaming head on the stored features vs evaluate (window history alone), "
          f"{_VIDEO}: {_spread_diff(offline, streamed(rec), offline.max(0) - offline.min(0))}")
    # The recipe's held-out synthetic test videos (longer than N x Δt, so windows differ).
    recipe_features = os.path.join(out, "recipe", "features")
    files = [os.path.join(recipe_features, f) for f in os.listdir(recipe_features)
             if f.startswith("test") and f.endswith(".tfrecord")]
    for video in records.iter_videos(files, engine.backbone.feature_dim):
        safe = video.video_id.replace("/", "_")
        evaluated = pd.read_csv(os.path.join(workdir, "eval", "test_predictions", f"{safe}.csv"))
        evaluated = evaluated[["valence", "arousal"]].to_numpy()
        shared = windows.streaming_equivalent(len(evaluated), n, step, merge_width=step)
        spread = evaluated.max(0) - evaluated.min(0)
        online = streamed(video)
        print(f"{video.video_id} ({len(evaluated)} frames, {shared.sum()} shared): window "
              f"history alone, all frames {_spread_diff(evaluated, online, spread)}; shared "
              f"frames {_spread_diff(evaluated[shared], online[shared], spread)}; other "
              f"frames {_spread_diff(evaluated[~shared], online[~shared], spread)}")


if __name__ == "__main__":
    app.run(main)
