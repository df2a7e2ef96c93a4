"""In-graph pieces of the exported signatures: input checks, JPEG decoding, the `metadata` answer.

`export_lib.build_archive` puts these into the SavedModel, so they run inside TF Serving (or a
`tf.saved_model.load`ed model) with no project code:
  `checked(x, name, expected, dims)`  the shape check every signature applies to its input: one
        InvalidArgumentError "<name>: expected <expected>, got shape [...]".
  `decode_faces_jpeg(jpegs, name, expected, dims)`  string `[batch, N]` of JPEG-encoded aligned
        RGB crops -> uint8 `[batch, N, H, W, 3]`; refuses (one InvalidArgumentError each) a wrong
        shape, strings that are not JPEG (checked on the JPEG start-of-image marker FF D8 FF:
        `tf.io.decode_jpeg` would silently decode PNG and GIF too), and crops of different sizes
        in one call. Decoding is `schema.decode_face_jpeg`'s, the accurate integer IDCT,
        the one of libjpeg's default that PIL, OpenCV and browsers use, so the signature sees the
        very pixels a client sees when it decodes its own JPEG, and the pixels the training
        features were extracted from (TF's default, the fast IDCT, differs by up to 14 grey
        levels on 64 px crops at quality 95).
  `metadata_outputs(fields)`  the constant tensors the `metadata` signature returns, so that a
        client reads N, Δt, face size, backbone and label range from the model itself.
"""

from __future__ import annotations

import json
from typing import Optional, Sequence

import tensorflow as tf

from ast_net.data import schema

JPEG_MAGIC = b"\xff\xd8\xff"  # Start-of-image marker + the first byte of the next marker.
# dtype of each `metadata` output (`metadata_fields` builds the values).
METADATA_DTYPES = {
    "backbone": tf.string, "backbone_weights": tf.string, "face_size": tf.int32,
    "feature_dim": tf.int32, "clip_length": tf.int32, "frame_step": tf.int32,
    "fixed_clip_length": tf.int32, "label_range": tf.float32, "merge_phases": tf.bool,
    "feature_scale": tf.float32, "step": tf.int64, "signatures": tf.string,
    "default_signature": tf.string, "outputs": tf.string, "contract": tf.string,
}


def checked(x, name: str, expected: str, dims):
    """`x` after an in-graph check of its shape: rank len(dims), each dim == dims[i] (or >= 1
    where dims[i] is None); else InvalidArgumentError "<name>: expected <expected>, got shape".

    A signature does not enforce its declared shape on what TF Serving (or a loaded SavedModel's
    `signatures[...]`) feeds it, and `tf.rank` of an input whose spec has a static rank is folded
    to that constant, so the rank is counted at run time from `tf.shape`.
    """
    rank = len(dims)
    shape = tf.shape(x)
    actual_rank = tf.reduce_sum(tf.cast(shape >= 0, tf.int32))
    padded = tf.concat([shape, tf.zeros([rank], tf.int32)], 0)[:rank]
    want = tf.constant([-1 if d is None else int(d) for d in dims], tf.int32)
    ok = tf.logical_and(tf.equal(actual_rank, rank),
                        tf.reduce_all(tf.where(want >= 0, tf.equal(padded, want), padded >= 1)))
    check = tf.debugging.Assert(ok, [f"{name}: expected {expected}, got shape", shape],
                                summarize=rank + 4)
    with tf.control_dependencies([check]):
        return tf.identity(x)


def decode_faces_jpeg(jpegs, name: str, expected: str, dims):
    """uint8 `[batch, N, H, W, 3]` from string `[batch, N]` JPEG crops, checked (module doc).

    Args:
      jpegs: string tensor, one JPEG per clip frame.
      name, expected, dims: for the shape check (`checked`); dims is (None, N or None).
    """
    jpegs = checked(jpegs, name, expected, dims)
    shape = tf.shape(jpegs)
    flat = tf.reshape(jpegs, [-1])
    is_jpeg = tf.equal(tf.strings.substr(flat, 0, len(JPEG_MAGIC)), JPEG_MAGIC)
    not_jpeg = tf.reshape(tf.where(tf.logical_not(is_jpeg)), [-1])
    jpeg_check = tf.debugging.Assert(
        tf.reduce_all(is_jpeg),
        [f"{name}: expected JPEG-encoded face crops (bytes starting FF D8 FF; PNG, raw pixels "
         f"and empty strings are refused), got other bytes at flat index (row * N + frame)",
         not_jpeg[:8]], summarize=8)
    with tf.control_dependencies([jpeg_check]):
        sizes = tf.map_fn(lambda s: tf.image.extract_jpeg_shape(s)[:2], flat,
                          fn_output_signature=tf.int32)  # [batch * N, 2], headers only.
    same = tf.reduce_all(tf.equal(sizes, sizes[:1]), axis=1)
    size_check = tf.debugging.Assert(
        tf.reduce_all(same),
        [f"{name}: expected crops of one size in a call (H x W as sent to the faces "
         f"signature), got [H W] of the first and of flat index", sizes[0],
         tf.argmin(tf.cast(same, tf.int32)), sizes[tf.argmin(tf.cast(same, tf.int32))]],
        summarize=4)
    with tf.control_dependencies([size_check]):
        frames = tf.map_fn(
            schema.decode_face_jpeg, flat,
            fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))
    return tf.reshape(frames, tf.concat([shape, tf.shape(frames)[1:]], 0))


def metadata_fields(*, backbone: Optional[str], weights: Optional[str], face_size: Optional[int],
                    feature_dim: int, clip_length: int, frame_step: int,
                    fixed_clip_length: Optional[int], label_range: Optional[Sequence[float]],
                    merge_phases: bool, feature_scale: float, step: int,
                    signatures: Sequence[str], default_signature: str,
                    outputs: Sequence[str], contract: dict) -> dict:
    """Python values of the `metadata` signature's outputs (None -> "none", 0 or an empty list).

    Args:
      backbone, weights: CNN of the faces signatures and its weights fingerprint (None: none).
      face_size: side S of the crops the CNN takes without resampling (None: no CNN -> 0).
      clip_length, frame_step: N and Δt of training.
      fixed_clip_length: N fixed in the input shapes (None: dynamic -> 0).
      label_range: [low, high] the outputs are clipped to (None: no clipping -> []).
      contract: the preprocessing contract (`contract.Contract.to_dict()`), as JSON text.
    """
    return {
        "backbone": backbone or "none", "backbone_weights": weights or "none",
        "face_size": int(face_size or 0), "feature_dim": int(feature_dim),
        "clip_length": int(clip_length), "frame_step": int(frame_step),
        "fixed_clip_length": int(fixed_clip_length or 0),
        "label_range": [float(v) for v in label_range] if label_range is not None else [],
        "merge_phases": bool(merge_phases), "feature_scale": float(feature_scale),
        "step": int(step), "signatures": list(signatures),
        "default_signature": default_signature, "outputs": list(outputs),
        "contract": json.dumps(contract, sort_keys=True),
    }


def metadata_outputs(fields: dict) -> dict:
    """The `metadata` signature's output tensors: one constant per field of `metadata_fields`."""
    return {key: tf.constant(fields[key], dtype) for key, dtype in METADATA_DTYPES.items()}
