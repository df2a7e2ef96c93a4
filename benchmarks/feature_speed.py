"""Attribute-CNN feature extraction speed: frames/s per backbone, batch size and XLA on/off.

  .venv/bin/python benchmarks/feature_speed.py [--backbones=mini_xception,vgg16]
      [--batch_sizes=1,32] [--seconds=5] [--vgg_weights=PATH] [--pipeline_frames=512]

Each cell times `Backbone.features_function(jit_compile=...)` (uint8 faces at the backbone's
input size -> preprocess -> features, the call ast-net-extract-features and the predictors
make) after a warm-up call that traces / compiles it, for at least `--seconds`. VGG16 runs with
random weights unless `--vgg_weights` is given (the speed is the same). Rows: wall-clock
frames/s, and CPU ms per frame (process CPU time, all threads), which other jobs on the machine
disturb much less than the wall clock; the 1-minute load average is printed with the table.
`--pipeline_frames=N` adds a row for the whole extractor on N frames of 64x64 JPEG face records
(TFRecord read + JPEG decode + mini-Xception + record write), the `make demo` path.
"""

import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ast_net import startup  # noqa: E402

startup.quiet_tensorflow()  # Before TensorFlow: its start-up lines filtered.

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

_BACKBONES = flags.DEFINE_list("backbones", ["mini_xception", "vgg16"], "Backbones to time.")
_BATCH_SIZES = flags.DEFINE_list("batch_sizes", ["1", "32"], "Batch sizes to time.")
_XLA = flags.DEFINE_list("xla", ["off", "on"], "XLA settings to time: off (plain tf.function) "
                         "and/or on (jit_compile=True).")
_SECONDS = flags.DEFINE_float("seconds", 5.0, "Minimum timed seconds per cell (after warm-up).")
_VGG_WEIGHTS = flags.DEFINE_string("vgg_weights", None, "Optional VGG16 weights .h5; random "
                                   "weights otherwise (same speed).")
_PIPELINE_FRAMES = flags.DEFINE_integer("pipeline_frames", 512, "Frames for the whole-extractor "
                                        "row (0 skips it).")


def time_cell(fn, faces, min_seconds):
    """Returns (frames/s, CPU ms per frame) of fn(faces) after one warm-up call."""
    fn(faces).numpy()
    calls, start, cpu = 0, time.perf_counter(), time.process_time()
    while True:
        fn(faces).numpy()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and calls >= 2:
            break
    frames = calls * len(faces)
    return frames / elapsed, 1000.0 * (time.process_time() - cpu) / frames


def pipeline_row(frames):
    """(faces/s, CPU ms per frame) of extract_features on `frames` 64x64 JPEG faces."""
    import cv2
    import skimage.data
    import tensorflow as tf
    from ast_net.pipelines import extract_features_lib

    from ast_net.data import schema

    face = cv2.resize(skimage.data.astronaut()[60:200, 150:290], (64, 64))
    jpeg = cv2.imencode(".jpg", face[..., ::-1])[1].tobytes()
    with tempfile.TemporaryDirectory() as tmp:
        in_dir = os.path.join(tmp, "faces")
        os.makedirs(in_dir)
        with tf.io.TFRecordWriter(os.path.join(in_dir, "bench-00000-of-00001.tfrecord")) as w:
            for start in range(0, frames, 256):
                n = min(256, frames - start)
                w.write(schema.make_sequence_example(
                    video_id=f"v{start}", fps=25.0, timestamps=np.arange(n) / 25.0,
                    face_present=[1] * n, valence=[0.0] * n, arousal=[0.0] * n,
                    label_mask=[1] * n, face_jpegs=[jpeg] * n, face_size=64).SerializeToString())
        cpu = time.process_time()
        summary = extract_features_lib.extract_features(
            in_dir, os.path.join(tmp, "out"), batch_size=32, progress=False)
        cpu = time.process_time() - cpu
    return summary.faces / summary.seconds, 1000.0 * cpu / summary.faces


def main(argv):
    del argv
    from ast_net.models import backbones

    rows = []
    for name in _BACKBONES.value:
        weights = _VGG_WEIGHTS.value if name == "vgg16" else None
        net = backbones.load_backbone(name, weights)
        for batch in (int(b) for b in _BATCH_SIZES.value):
            faces = np.random.default_rng(0).integers(
                0, 256, (batch, net.input_size, net.input_size, 3), dtype=np.uint8)
            for xla in _XLA.value:
                fn = net.features_function(jit_compile=xla == "on")
                fps, cpu_ms = time_cell(fn, faces, _SECONDS.value)
                rows.append((name, f"{net.input_size}px -> {net.feature_dim}", batch, xla,
                             fps, cpu_ms))
                print(f"  {rows[-1][0]} batch {batch} xla {xla}: {fps:.1f} frames/s", flush=True)
    if _PIPELINE_FRAMES.value:
        fps, cpu_ms = pipeline_row(_PIPELINE_FRAMES.value)
        rows.append(("extract_features (mini_xception, JPEG records)", "64px -> 128", 32, "off",
                     fps, cpu_ms))
    print(f"\nload average (1 min): {os.getloadavg()[0]:.2f}; cores: {os.cpu_count()}")
    print("| backbone | input -> D | batch | XLA | frames/s | CPU ms/frame |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, io, batch, xla, fps, cpu_ms in rows:
        print(f"| {name} | {io} | {batch} | {xla} | {fps:.1f} | {cpu_ms:.2f} |")


if __name__ == "__main__":
    app.run(main)
