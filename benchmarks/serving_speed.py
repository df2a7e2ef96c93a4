"""Latency of an exported AST-Net SavedModel, called as TF Serving would call it.

  .venv/bin/python benchmarks/serving_speed.py --model_dir=/tmp/ast_serving/1 [--clip_length=50]

Loads the SavedModel with TensorFlow only (no project code, Keras blocked from importing), then
times each signature on clips of N frames at batch 1 and 8: `faces` (uint8 aligned faces at the
size given by the export's assets.extra/ast_net_export.json) and `features` (float32 [B, N, D]).
Prints a Markdown table: median ms per call and frames/s (B * N / median). The inputs are random:
the figure is the model's, not the data's.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.modules["keras"] = None  # The SavedModel must not need Keras.

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

_MODEL_DIR = flags.DEFINE_string("model_dir", None, "A version directory written by "
                                 "ast-net-export (<export_dir>/<version>).")
_CLIP_LENGTH = flags.DEFINE_integer("clip_length", 50, "Frames N per clip.")
_BATCHES = flags.DEFINE_list("batch_sizes", ["1", "8"], "Clip batch sizes to time.")
_REPEATS = flags.DEFINE_integer("repeats", 20, "Timed calls per setting (after 2 warm-up calls).")
flags.mark_flags_as_required(["model_dir"])


def _median_ms(fn, kwargs, repeats):
    for _ in range(2):
        fn(**kwargs)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(**kwargs)["valence"].numpy()
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def main(argv):
    del argv
    with open(os.path.join(_MODEL_DIR.value, "assets.extra", "ast_net_export.json")) as f:
        meta = json.load(f)
    model = tf.saved_model.load(_MODEL_DIR.value)
    n = _CLIP_LENGTH.value
    rng = np.random.default_rng(0)
    print(f"model {_MODEL_DIR.value}: backbone {meta['backbone']}, D = {meta['feature_dim']}, "
          f"N = {n}, step {meta['step']}")
    print("| signature | batch | ms per call (median) | frames/s |")
    print("| --- | --- | --- | --- |")
    for signature in ("faces", "features"):
        if signature not in model.signatures:
            continue
        for batch in map(int, _BATCHES.value):
            if signature == "faces":
                s = meta["face_size"]
                x = rng.integers(0, 256, size=(batch, n, s, s, 3), dtype=np.uint8)
            else:
                x = rng.normal(size=(batch, n, meta["feature_dim"])).astype(np.float32)
            ms = _median_ms(model.signatures[signature], {signature: tf.constant(x)},
                            _REPEATS.value)
            print(f"| {signature} | {batch} | {ms:.1f} | {batch * n / ms * 1000:.0f} |")


if __name__ == "__main__":
    app.run(main)
