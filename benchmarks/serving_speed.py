"""Latency of an exported AST-Net SavedModel, called as TF Serving would call it, and the size of
the REST bodies that carry its faces.

  .venv/bin/python benchmarks/serving_speed.py --model_dir=/tmp/ast_serving/1 [--clip_length=50]

Loads the SavedModel with TensorFlow only (Keras blocked from importing; the project's client
module `ast_net.serving_client` only builds the JPEGs and JSON bodies), then times each
signature on clips of N frames at batch 1 and 8: `faces` (uint8 aligned faces at the size in
the model's `metadata` signature), `faces_jpeg` (the same crops as JPEG, quality
--jpeg_quality, decoded in the graph) and `features` (float32 [B, N, D]). The faces are jittered
aligned crops of the scikit-image astronaut (real JPEG sizes; the CNN's cost does not depend on
the pixels), the features random. Prints a Markdown table: median ms per call and frames/s
(B * N / median), then the REST body of --body_faces faces (one clip) in both formats: uint8
pixels as JSON numbers for `faces`, base64 JPEG for `faces_jpeg`.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ast_net import startup  # noqa: E402

startup.quiet_tensorflow()  # Before TensorFlow: its start-up lines filtered.
sys.modules["keras"] = None  # The SavedModel must not need Keras.

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

_MODEL_DIR = flags.DEFINE_string("model_dir", None, "A version directory written by "
                                 "ast-net-export (<export_dir>/<version>).")
_CLIP_LENGTH = flags.DEFINE_integer("clip_length", 50, "Frames N per clip.")
_BATCHES = flags.DEFINE_list("batch_sizes", ["1", "8"], "Clip batch sizes to time.")
_REPEATS = flags.DEFINE_integer("repeats", 20, "Timed calls per setting (after 2 warm-up calls; "
                                "the signatures are called in turn).")
_JPEG_QUALITY = flags.DEFINE_integer("jpeg_quality", 90, "JPEG quality of the faces_jpeg crops.")
_BODY_FACES = flags.DEFINE_integer("body_faces", 40, "Faces in the measured REST bodies.")
flags.mark_flags_as_required(["model_dir"])


def _median_ms(calls, repeats):
    """Median ms per call of each (fn, kwargs) in `calls`, timed in turn (interleaved, so a
    change of machine load hits all of them alike)."""
    for fn, kwargs in calls:
        for _ in range(2):
            fn(**kwargs)
    times = [[] for _ in calls]
    for _ in range(repeats):
        for i, (fn, kwargs) in enumerate(calls):
            t0 = time.perf_counter()
            fn(**kwargs)["valence"].numpy()
            times[i].append(time.perf_counter() - t0)
    return [1000 * float(np.median(t)) for t in times]


def _astronaut_faces(count, size):
    """`count` aligned astronaut crops of side `size`, eyes jittered by about 2 px."""
    import skimage.data

    from ast_net.faces import align

    image = skimage.data.astronaut()
    rng = np.random.default_rng(0)
    faces = []
    for _ in range(count):
        j = rng.normal(scale=2.0, size=4)
        faces.append(align.align_face(image, (204 + j[0], 100 + j[1]), (245 + j[2], 102 + j[3]),
                                      size).crop)
    return np.stack(faces)


def main(argv):
    del argv
    from ast_net import serving_client

    model = tf.saved_model.load(_MODEL_DIR.value)
    meta = serving_client.metadata(model.signatures["metadata"](request=tf.constant(0))) \
        if "metadata" in model.signatures else None
    if meta is None:  # An export older than the metadata signature.
        with open(os.path.join(_MODEL_DIR.value, "assets.extra", "ast_net_export.json")) as f:
            meta = json.load(f)
    n = _CLIP_LENGTH.value
    rng = np.random.default_rng(0)
    print(f"model {_MODEL_DIR.value}: backbone {meta['backbone']}, D = {meta['feature_dim']}, "
          f"N = {n}, step {meta['step']}")
    print("| signature | batch | ms per call (median) | frames/s |")
    print("| --- | --- | --- | --- |")
    size = meta["face_size"]
    faces = _astronaut_faces(max(map(int, _BATCHES.value)) * n, size) if size else None
    for batch in map(int, _BATCHES.value):
        inputs = {"features": rng.normal(size=(batch, n, meta["feature_dim"])).astype(np.float32)}
        if size:
            clips = faces[:batch * n].reshape(batch, n, size, size, 3)
            inputs["faces"] = clips
            inputs["faces_jpeg"] = serving_client.encode_jpeg(clips, _JPEG_QUALITY.value).astype(
                bytes)
        names = [k for k in ("faces", "faces_jpeg", "features") if k in model.signatures]
        medians = _median_ms([(model.signatures[k], {k: tf.constant(inputs[k])}) for k in names],
                             _REPEATS.value)
        for signature, ms in zip(names, medians):
            print(f"| {signature} | {batch} | {ms:.1f} | {batch * n / ms * 1000:.0f} |")
    if size:
        clip = _astronaut_faces(_BODY_FACES.value, size)[None]
        pixels = serving_client.rest_body("faces", {"faces": clip})
        jpegs = serving_client.rest_body(
            "faces_jpeg", {"faces_jpeg": serving_client.encode_jpeg(clip, _JPEG_QUALITY.value)})
        print(f"\nREST body of {_BODY_FACES.value} faces ({size} x {size}, one clip): "
              f"faces (uint8 JSON) {len(pixels):,} bytes, faces_jpeg (base64 JPEG, quality "
              f"{_JPEG_QUALITY.value}) {len(jpegs):,} bytes, ratio {len(pixels) / len(jpegs):.1f}")


if __name__ == "__main__":
    app.run(main)
