"""The measurements of `benchmarks/gpu_check.sh`: VGG16 and the Siamese model on a GPU.

  .venv-gpu/bin/python benchmarks/gpu_check.py [--budget_s=420] [--seconds=3]
  .venv/bin/python benchmarks/gpu_check.py --cpu_smoke     # every path, tiny, on a CPU

Rows (one Markdown table at the end; every cell is timed for about --seconds after a warm-up
call that traces / compiles it, and a cell that would start past --budget_s is skipped):

1. VGG16 fc6 features/s (uint8 faces -> preprocess -> fc6, `Backbone.features_function`) at
   batch 1 and 64, XLA off and on. Random weights (no model hub here; the speed is the same).
2. Siamese training step (fit, 32 twin clips of N = 50, LSTM 50/40, composite loss) at
   D = 4096, XLA off and on: ms per step.
3. End-to-end predict: a synthetic 640x360 video of a real face (the scikit-image astronaut,
   drifting) -> decode -> MTCNN + tracking -> eye alignment -> VGG16 fc6 -> stacked LSTM
   (`inference.Engine`, as ast-net-predict runs it): frames/s.
4. SavedModel serving latency: a workdir trained 2 steps on 4096-d records, exported by
   `export_lib.export` with the VGG16 in the graph, reloaded with `tf.saved_model.load`:
   mean ms per call of the `faces` signature (one clip of N aligned faces) and `features`.

The paper reports 40.1 frames/s for its whole VGG16 pipeline on a GPU; the goal here is >= 400
frames/s for batched VGG16 features. Without a GPU (and without --cpu_smoke) it says so and
exits 0. --cpu_smoke runs every row with a tiny VGG16 (32 px, fc6 of 64), batch 2, N = 10 and
a few frames, to prove the script works; its figures mean nothing.
"""

import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

_SMOKE = flags.DEFINE_boolean("cpu_smoke", False, "Tiny settings on any device (a CPU check of "
                              "the script, not a measurement).")
_BUDGET = flags.DEFINE_float("budget_s", 420.0, "Cells that would start after this many "
                             "seconds are skipped (gpu_check.sh allows 8 minutes in all).")
_SECONDS = flags.DEFINE_float("seconds", 3.0, "Timed seconds per cell, after its warm-up.")

START = time.perf_counter()


class Settings:
    """GPU settings, or the tiny --cpu_smoke ones."""

    def __init__(self, smoke):
        self.smoke = smoke
        self.vgg = {"input_size": 32, "fc_width": 64} if smoke else {}
        self.batches = (1, 2) if smoke else (1, 64)
        self.clip_length, self.frame_step = (10, 3) if smoke else (50, 10)
        self.train_batch = 4 if smoke else 32
        self.video_frames = 12 if smoke else 300
        self.seconds = 0.2 if smoke else _SECONDS.value


def _timed(fn, seconds, per_call):
    """(calls per second, ms per call) of fn() after one warm-up call (trace / compile)."""
    fn()
    calls, t0 = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds and calls >= 2:
            return per_call * calls / elapsed, 1000.0 * elapsed / calls


def vgg_rows(s, weights):
    """The VGG16 rows; random weights, saved to `weights` (the export reads them from there)."""
    from ast_net.models import backbones, vgg_face

    random = vgg_face.build_vgg16(num_classes=len(backbones.EMOTIONS), **s.vgg)
    vgg_face.save(random, weights, mean_bgr=vgg_face.MEAN_BGR_VGGFACE,
                  class_names=backbones.EMOTIONS)
    net = backbones.load_backbone("vgg16", weights)
    rows = []
    for batch in s.batches:
        faces = np.random.default_rng(0).integers(
            0, 256, (batch, net.input_size, net.input_size, 3), dtype=np.uint8)
        for xla in (False, True):
            if _late():
                rows.append((f"VGG16 fc6 batch {batch}, XLA {'on' if xla else 'off'}",
                             "skipped (time budget)", ""))
                continue
            fn = net.features_function(jit_compile=xla)
            fps, ms = _timed(lambda: fn(faces).numpy(), s.seconds, batch)
            goal = "" if s.smoke or batch == 1 else (
                "; goal >= 400 frames/s " + ("met" if fps >= 400 else "NOT met"))
            rows.append((f"VGG16 fc6 features, batch {batch}, XLA {'on' if xla else 'off'}",
                         f"{fps:.1f} frames/s", f"{ms:.2f} ms/call{goal}"))
            _progress(rows[-1])
    return rows, net


def train_rows(s, dim):
    import keras
    import tensorflow as tf

    from ast_net.configs import default
    from ast_net.models import siamese, temporal

    config = default.get_config()
    rng = np.random.default_rng(0)
    shape = (s.train_batch, s.clip_length)
    batch = {}
    for t in ("a", "b"):
        batch[f"features_{t}"] = rng.normal(size=shape + (dim,)).astype(np.float32)
        batch[f"labels_{t}"] = rng.uniform(-1, 1, size=shape + (2,)).astype(np.float32)
        batch[f"mask_{t}"] = np.ones(shape, np.float32)
    data = tf.data.Dataset.from_tensors(batch).repeat().prefetch(2)
    rows = []
    for xla in (False, True):
        if _late():
            rows.append((f"Siamese train step D = {dim}, XLA {'on' if xla else 'off'}",
                         "skipped (time budget)", ""))
            continue
        keras.backend.clear_session()
        model = siamese.SiameseTemporalModel(temporal.from_config(config.model, dim),
                                             config.loss)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=xla)
        steps = 2 if s.smoke else 20
        fit = lambda: model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)  # noqa: E731
        per_s, ms = _timed(fit, s.seconds, steps)
        rows.append((f"Siamese train step, {s.train_batch} pairs, N = {s.clip_length}, "
                     f"D = {dim}, XLA {'on' if xla else 'off'}",
                     f"{1000.0 / per_s:.2f} ms/step", f"{per_s:.1f} steps/s"))
        _progress(rows[-1])
    return rows


def _astronaut_video(path, frames):
    """A 640x360 mp4 of the astronaut's face drifting a few pixels per frame."""
    import cv2
    import skimage.data

    face = skimage.data.astronaut()[0:300, 100:360]  # RGB, the face and shoulders
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (640, 360))
    for i in range(frames):
        canvas = np.full((360, 640, 3), 90, np.uint8)
        x, y = 150 + int(40 * np.sin(i / 25.0)), 30 + int(10 * np.cos(i / 30.0))
        canvas[y:y + 300, x:x + 260] = face
        writer.write(canvas[..., ::-1])
    writer.release()


def predict_row(s, net, tmp):
    from ast_net import inference, inference_heads
    from ast_net.configs import default
    from ast_net.faces import video
    from ast_net.models import temporal

    path = os.path.join(tmp, "astronaut.mp4")
    _astronaut_video(path, s.video_frames)
    config = default.get_config()
    head = inference_heads.TemporalHead(temporal.from_config(config.model, net.feature_dim),
                                        s.clip_length, s.frame_step, jit_compile=True)
    engine = inference.Engine(net, head, batch_frames=32)
    engine.warmup()

    def run():
        engine.reset()
        reader = video.iter_frames(path, prefetch=32)
        present = [p.face_present for p in engine.run(reader, threaded=True)]
        reader.close()
        return len(present), sum(present)

    run()  # traces every batch size once
    t0 = time.perf_counter()
    n, with_face = run()
    fps = n / (time.perf_counter() - t0)
    paper = "" if s.smoke else "; the paper: 40.1 frames/s"
    return [(f"end-to-end predict, VGG16 + LSTM, {n} frames 640x360", f"{fps:.1f} frames/s",
             f"decode + MTCNN/track + align + fc6 + LSTM; a face in {with_face} of {n} "
             f"frames{paper}")]


def _feature_records(folder, dim, frames):
    import tensorflow as tf

    from ast_net.data import schema

    os.makedirs(folder)
    rng = np.random.default_rng(0)
    t = np.arange(frames)
    for split in ("train",):
        with tf.io.TFRecordWriter(os.path.join(folder, f"{split}-00000-of-00001.tfrecord")) as w:
            w.write(schema.make_sequence_example(
                video_id=f"{split}0", fps=25.0, subject="s0", split=split,
                timestamps=t / 25.0, face_present=np.ones(frames, int),
                valence=np.sin(t / 17.0), arousal=np.cos(t / 23.0),
                label_mask=np.ones(frames, int),
                features=rng.normal(size=(frames, dim)).astype(np.float32),
                first_frame=0, backbone="gpu_check").SerializeToString())


def serving_rows(s, net, weights, tmp):
    import tensorflow as tf

    from ast_net import export_lib, train_lib
    from ast_net.configs import default

    config = default.get_config()
    config.data.data_dir = os.path.join(tmp, "features")
    config.data.eval_split = ""
    config.data.clip_length, config.data.frame_step = s.clip_length, s.frame_step
    config.train.batch_size, config.train.num_steps = 2, 2
    config.train.steps_per_loop = config.train.checkpoint_every = 2
    _feature_records(config.data.data_dir, net.feature_dim,
                     (s.clip_length - 1) * s.frame_step + 40)
    workdir = os.path.join(tmp, "workdir")
    train_lib.train_and_evaluate(config, workdir)
    result = export_lib.export(workdir, os.path.join(tmp, "export"), backbone="vgg16",
                               backbone_weights=weights, clip_length=s.clip_length)
    loaded = tf.saved_model.load(result.path)
    n, size = s.clip_length, net.input_size
    rng = np.random.default_rng(0)
    inputs = {"faces": rng.integers(0, 256, (1, n, size, size, 3), dtype=np.uint8),
              "features": rng.normal(size=(1, n, net.feature_dim)).astype(np.float32)}
    rows = []
    for name, value in inputs.items():
        if name not in loaded.signatures or _late():
            continue
        fn, arg = loaded.signatures[name], tf.constant(value)

        def call(fn=fn, name=name, arg=arg):
            for out in fn(**{name: arg}).values():
                out.numpy()

        calls, ms = _timed(call, s.seconds, 1)
        rows.append((f"SavedModel `{name}` signature, 1 clip of {n} frames", f"{ms:.1f} ms/call",
                     f"{n * calls:.0f} frames/s"))
        _progress(rows[-1])
    return rows


def _late():
    return time.perf_counter() - START > _BUDGET.value


def _progress(row):
    print(f"  [{time.perf_counter() - START:5.0f} s] {row[0]}: {row[1]}", flush=True)


def _guarded(rows, label, fn, *args):
    """Runs one group of rows; a failure becomes a row naming the error, not a lost table."""
    if _late():
        rows.append((label, "skipped (time budget)", ""))
        return None
    try:
        out = fn(*args)
    except Exception as e:  # noqa: BLE001 - reported in the table, the other rows still run
        rows.append((label, "FAILED", f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"))
        return None
    if isinstance(out, tuple):
        rows.extend(out[0])
        return out[1]
    rows.extend(out)
    return None


def main(argv):
    del argv
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and not _SMOKE.value:
        print("gpu_check: no GPU found by TensorFlow: nothing to measure (use --cpu_smoke to "
              "check the script on a CPU)")
        return 0
    s = Settings(_SMOKE.value)
    device = ", ".join(tf.config.experimental.get_device_details(g).get("device_name", g.name)
                       for g in gpus) or "CPU only"
    print(f"gpu_check: TensorFlow {tf.__version__}, device: {device}"
          f"{' (--cpu_smoke: tiny settings, figures mean nothing)' if s.smoke else ''}",
          flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        weights = os.path.join(tmp, "vgg16_random.h5")
        net = _guarded(rows, "VGG16 fc6 features", vgg_rows, s, weights)
        _guarded(rows, "Siamese train step", train_rows, s, net.feature_dim if net else 4096)
        if net is not None:
            _guarded(rows, "end-to-end predict", predict_row, s, net, tmp)
            _guarded(rows, "SavedModel serving", serving_rows, s, net, weights, tmp)
    print(f"\ngpu_check summary ({device}; {time.perf_counter() - START:.0f} s; goal >= 400 "
          f"frames/s for batched VGG16 features, paper 40.1 frames/s end to end)")
    print("| measurement | result | detail |")
    print("| --- | --- | --- |")
    for name, result, detail in rows:
        print(f"| {name} | {result} | {detail} |")
    failed = [r for r in rows if r[1] == "FAILED"]
    return 1 if failed else 0


if __name__ == "__main__":
    app.run(main)
