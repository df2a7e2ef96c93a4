"""Training and evaluation speed of the Siamese temporal network, with and without XLA.

  .venv/bin/python benchmarks/train_speed.py [--feature_dims=128,4096] [--steps=60]

Measures, side by side in one process: Siamese fit steps/s (batch 32 twin clips of N = 50,
paper model LSTM 50/40, composite loss) with jit_compile off and on, and evaluation clips/s
(forward pass over batches of 64 clips of 50 frames). Data are random in-memory batches so the
figure is the model's, not the input pipeline's. Prints a Markdown table.
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ast_net import startup  # noqa: E402

startup.quiet_tensorflow()  # Before TensorFlow: its start-up lines filtered.

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from ast_net.configs import default  # noqa: E402
from ast_net.models import siamese, temporal  # noqa: E402

_DIMS = flags.DEFINE_list("feature_dims", ["128", "4096"], "Feature sizes D to measure "
                          "(128 = embedded mini-Xception, 4096 = VGG16 fc6).")
_STEPS = flags.DEFINE_integer("steps", 60, "Timed training steps per setting (after warm-up).")
_BATCH = flags.DEFINE_integer("batch_size", 32, "Twin-clip pairs per training step.")


def _batches(dim, batch, n, count=4):
    rng = np.random.default_rng(0)
    out = []
    for _ in range(count):
        b = {}
        for s in ("a", "b"):
            b[f"features_{s}"] = rng.normal(size=(batch, n, dim)).astype(np.float32)
            b[f"labels_{s}"] = rng.uniform(-1, 1, size=(batch, n, 2)).astype(np.float32)
            b[f"mask_{s}"] = np.ones((batch, n), np.float32)
        out.append(b)
    return out


def train_steps_per_second(dim, jit, steps, batch):
    config = default.get_config()
    n = config.data.clip_length
    keras.backend.clear_session()
    net = temporal.from_config(config.model, dim)
    model = siamese.SiameseTemporalModel(net, config.loss)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit)
    data = tf.data.Dataset.from_tensor_slices(
        {k: np.stack([b[k] for b in _batches(dim, batch, n)]) for k in _batches(dim, 1, 1)[0]}
    ).cache().repeat()
    model.fit(data, steps_per_epoch=10, epochs=1, verbose=0)  # warm-up and compile
    t0 = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps / (time.perf_counter() - t0)


def eval_clips_per_second(dim, jit, batches=20, batch=64):
    config = default.get_config()
    n = config.data.clip_length
    keras.backend.clear_session()
    net = temporal.from_config(config.model, dim)
    fwd = tf.function(lambda x: net(x, training=False), jit_compile=jit)
    x = tf.constant(np.random.default_rng(0).normal(size=(batch, n, dim)).astype(np.float32))
    fwd(x).numpy()
    t0 = time.perf_counter()
    for _ in range(batches):
        fwd(x).numpy()
    return batches * batch / (time.perf_counter() - t0)


def main(argv):
    del argv
    print(f"TF {tf.__version__}, Keras {keras.__version__}, devices: "
          f"{[d.device_type for d in tf.config.list_logical_devices()]}, cores: {os.cpu_count()}")
    print("| D | XLA | train steps/s (batch 32 pairs) | ms/step | eval clips/s (batch 64) |")
    print("| --- | --- | --- | --- | --- |")
    for dim in [int(d) for d in _DIMS.value]:
        for jit in (False, True):
            sps = train_steps_per_second(dim, jit, _STEPS.value, _BATCH.value)
            cps = eval_clips_per_second(dim, jit)
            print(f"| {dim} | {'on' if jit else 'off'} | {sps:.1f} | {1000 / sps:.1f} | "
                  f"{cps:.0f} |", flush=True)


if __name__ == "__main__":
    app.run(main)
