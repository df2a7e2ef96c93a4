"""Export of a trained work directory as a SavedModel for TF Serving: `export(workdir, export_dir)`.

Layout (what TF Serving's `--model_base_path` expects): `<export_dir>/<version>/saved_model.pb`,
`variables/`, `assets.extra/ast_net_export.json` (what was exported: workdir, step, backbone,
D, clip length, Δt) and `assets.extra/contract.json`: the preprocessing contract
(`ast_net/contract.py`: face size, eye template, detector and tracker settings, backbone and
weights fingerprint, D, N, Δt) a client must follow to make the `faces` it sends; a plain JSON
file that any client reads without this project. The version is the next integer after the
integer directories already in `<export_dir>` (1 for an empty one) unless given; an existing
version is never overwritten. The SavedModel is built in a hidden temporary directory inside
`<export_dir>` and renamed to its version number only when complete, so a server polling the
directory never sees half a model.

Signatures (all but `metadata` return `valence` and `arousal`, float32 `[batch, N]`, one value per
clip frame):
  `faces`     uint8 `faces [batch, N, H, W, 3]`: aligned RGB face crops of N frames Δt video frames
              apart; each frame goes through `Backbone.preprocess` (the same function used for
              feature extraction and CNN training, which resizes to the CNN's input) and the
              backbone's feature model, then the temporal network. H = W = the backbone's input
              size (64 mini_xception, 224 vgg16) avoids any resampling.
  `features`  float32 `features [batch, N, D]`: per-frame features as written in the feature
              TFRecords (the export applies `config.data.feature_scale` as training did).
  `faces_jpeg` string `faces_jpeg [batch, N]`: the same crops JPEG-encoded, one per frame, all of
              one size (REST clients send them as {"b64": ...}: about 1/18 of the JSON of
              uint8 pixels); decoded in the graph (`serving_signatures.decode_faces_jpeg`),
              then as `faces`. Given the pixels a client's own decoder (PIL, OpenCV) makes of
              its JPEGs, `faces` answers the same to float precision.
  `serving_default` is `faces`, or `features` when the workdir was trained on features of no CNN
  this project knows (e.g. the synthetic benchmark) and no `backbone` is forced.
  `metadata`  int32 scalar `request` (ignored: TF Serving's REST API refuses a signature without
              inputs) -> the export's constants, read by a client from the model itself: N
              (`clip_length`) and Δt (`frame_step`) of training, `fixed_clip_length` (0: any N),
              `face_size` S, `backbone`, `backbone_weights` (fingerprint), `feature_dim`,
              `label_range`, `merge_phases`, `feature_scale`, `step`, `signatures`,
              `default_signature`, `outputs` and `contract` (contract.json as JSON text); see
              `serving_signatures.METADATA_DTYPES` and `serving_client.metadata`.
N is dynamic unless `clip_length` fixes it; the model was trained on `config.data.clip_length`.
Per-frame signatures (`valence`, `arousal` float32 `[batch, T]`, one value per video frame):
  `video_faces`     uint8 `[batch, T, H, W, 3]`: aligned faces of T CONSECUTIVE video frames
                    of one face (each row a track from its first frame), through the CNN as above.
  `video_features`  float32 `[batch, T, D]`: the same from features.
  Frame t gets what ast-net-predict / ast-net-realtime give it (`inference_heads.TemporalHead`):
  the network's last output over frames t - (N-1)Δt, ..., t - Δt, t (those >= 0; N, Δt of
  training), then the phases merged (`windows.merge_phases_tf`, mirroring `merge_phases`).
  Memory grows as T·N·D floats per row (the N-frame window of every frame is gathered).
Every signature clips its outputs to `config.output.label_range` ([-1, 1] by default), and
checks its input's shape in the graph (one InvalidArgumentError "<input>: expected <dtype>
<shape>, got shape [...]" instead of a reshape or batch-norm error deep inside); `faces_jpeg`
also refuses strings that are not JPEG and crops of different sizes in one call. Clients:
`ast_net/serving_client.py` and docs/serving.md.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from typing import List, Optional, Sequence, Tuple

import keras
import tensorflow as tf
from absl import logging

from ast_net import atomic, errors, serving_signatures, training_run, windows
from ast_net import contract as contract_lib
from ast_net.models import backbones

FACES = "faces"                    # Signature key and input name of the face-clip signature.
FEATURES = "features"              # Signature key and input name of the feature-clip signature.
VIDEO_FACES = "video_faces"        # Per-frame signature of T consecutive aligned faces.
VIDEO_FEATURES = "video_features"  # Per-frame signature of T consecutive frames' features.
FACES_JPEG = "faces_jpeg"          # Face-clip signature taking JPEG-encoded crops.
METADATA_SIGNATURE = "metadata"    # Signature returning the export's metadata (N, Δt, S, ...).
METADATA_INPUT = "request"         # Its one input: an ignored int32 scalar (REST needs one).
DEFAULT_SIGNATURE = "serving_default"
OUTPUTS = ("valence", "arousal")   # Output names, in the temporal model's output order.
NO_BACKBONE = "none"               # `backbone` value that exports the features signature only.
METADATA = os.path.join("assets.extra", "ast_net_export.json")
CONTRACT = os.path.join("assets.extra", contract_lib.FILE)  # The preprocessing contract.
_TMP_PREFIX = ".export-"           # Not an integer: TF Serving ignores it.


@dataclasses.dataclass
class ExportResult:
    """What `export` wrote."""
    path: str                      # <export_dir>/<version>
    version: int
    step: int                      # Training step of the exported checkpoint.
    backbone: Optional[str]        # CNN of the faces signature; None: features signature only.
    signatures: tuple              # Signature keys, serving_default first.
    default_signature: str         # The signature serving_default is an alias of.


def list_versions(export_dir: str) -> List[int]:
    """Sorted integer version directories of `export_dir` (empty if it does not exist)."""
    if not os.path.isdir(export_dir):
        return []
    return sorted(int(name) for name in os.listdir(export_dir)
                  if name.isdigit() and os.path.isdir(os.path.join(export_dir, name)))


def next_version(export_dir: str) -> int:
    """1 for a new export directory, else one more than the highest version in it."""
    versions = list_versions(export_dir)
    return versions[-1] + 1 if versions else 1


def resolve_backbone(info: dict, backbone: Optional[str] = None,
                     backbone_weights: Optional[str] = None) -> Optional[backbones.Backbone]:
    """The CNN for the faces signature, or None when only features can be served.

    Args:
      info: model_info of the workdir (`backbone` that made the training features, `feature_dim`,
        the preprocessing `contract`).
      backbone: force a backbone name (a key of `backbones.BACKBONES`), or "none" for features
        only; None: the workdir's own backbone when this project knows it, else features only.
      backbone_weights: weights file of the backbone (required when its module NEEDS_WEIGHTS,
        vgg16: the file the features were extracted with; the mini_xception defaults to the
        embedded fer model).

    Raises:
      errors.UserError: see `resolve`.
    """
    return resolve(info, None, backbone, backbone_weights)[0]


def resolve(info: dict, config=None, backbone: Optional[str] = None,
            backbone_weights: Optional[str] = None, where: str = "the workdir"):
    """(CNN of the faces signature or None, the export's preprocessing contract).

    The checks are those of predict and realtime (`contract.resolve`, `contract.load_backbone`).

    Raises:
      errors.UserError: unknown name, vgg16 without weights, a missing or wrong weights file,
        a backbone whose feature size is not the workdir's D, a backbone or weights other than
        the ones that made the training features.
    """
    expected = contract_lib.of_model_info(info, config)
    trained_on = expected.backbone or ""
    if backbone == NO_BACKBONE:
        if backbone_weights:
            raise errors.UserError("--backbone_weights given with --backbone=none")
        return None, expected
    if backbone is None:
        if trained_on not in backbones.NAMES:
            if backbone_weights:
                raise errors.UserError(
                    f"--backbone_weights given, but the workdir was trained on '{trained_on}' "
                    f"features, not a CNN's: say which CNN with --backbone "
                    f"({'|'.join(backbones.NAMES)})")
            logging.warning("the workdir was trained on '%s' features, not those of a known "
                            "CNN: exporting the features signature only (the faces signature "
                            "needs --backbone=%s)", trained_on, "|".join(backbones.NAMES))
            return None, expected
        backbone = trained_on
    if backbone not in backbones.NAMES:
        raise errors.UserError(f"unknown backbone {backbone!r}; expected one of "
                               f"{backbones.NAMES + (NO_BACKBONE,)}")
    if trained_on not in backbones.NAMES:  # Features of no known CNN, a CNN forced: D only.
        expected = expected.replace(backbone=backbone, weights=None)
    run = contract_lib.resolve(expected, where, backbone=backbone, weights=backbone_weights)
    return contract_lib.load_backbone(run, backbone_weights, where), run


def build_archive(temporal: keras.Model, feature_scale: float,
                  backbone: Optional[backbones.Backbone],
                  clip_length: Optional[int] = None, *,
                  window: Optional[Tuple[int, int]] = None, merge: bool = True,
                  value_range: Optional[Sequence[float]] = windows.DEFAULT_LABEL_RANGE,
                  metadata: Optional[dict] = None) -> keras.export.ExportArchive:
    """An ExportArchive with the `features` and (given a backbone) `faces`, `faces_jpeg` signatures.

    Args:
      temporal, feature_scale, backbone, clip_length: see the module docstring.
      window: (N, Δt) the network was trained with: adds the per-frame `video_features` (and,
        given a backbone, `video_faces`) signatures; None: clip signatures only.
      merge: the video signatures merge the phases (`windows.merge_phases_tf` over Δt frames).
      value_range: every signature clips its outputs to it (None: no clipping).
      metadata: adds the `metadata` signature returning these fields
        (`serving_signatures.metadata_fields`); None: no metadata signature.
    """
    feature_dim = int(temporal.input_shape[-1])
    scale = float(feature_scale)
    check = serving_signatures.checked
    n_text = "N" if clip_length is None else str(int(clip_length))

    def outputs(va):
        return {name: va[..., i] for i, name in enumerate(OUTPUTS)}

    def head(features):  # Clip frames are Δt apart (one phase): clipped, nothing to merge.
        va = temporal(features * scale, training=False)
        return outputs(windows.merge_phases_tf(va, 1, value_range))

    def face_features(faces):  # [batch, n, H, W, 3] uint8 -> [batch, n, D] float32.
        shape = tf.shape(faces)
        frames = tf.reshape(faces, [-1, shape[2], shape[3], 3])
        feats = backbone.feature_model(backbone.preprocess(frames), training=False)
        return tf.reshape(tf.cast(feats, tf.float32), [shape[0], shape[1], feature_dim])

    def from_features(features):
        return head(check(features, FEATURES, f"float32 [batch, {n_text}, {feature_dim}] "
                          f"(batch, N >= 1)", (None, clip_length, feature_dim)))

    def from_faces(faces):
        faces = check(faces, FACES, f"uint8 [batch, {n_text}, H, W, 3] (aligned RGB face "
                      f"crops; batch, N, H, W >= 1)", (None, clip_length, None, None, 3))
        return head(face_features(faces))

    def from_faces_jpeg(faces_jpeg):
        faces = serving_signatures.decode_faces_jpeg(
            faces_jpeg, FACES_JPEG, f"string [batch, {n_text}] (one JPEG-encoded aligned RGB "
            f"face crop per frame, all of one size; batch, N >= 1)", (None, clip_length))
        return head(face_features(faces))

    def from_request(request):  # TF Serving's REST API needs a signature with an input.
        del request
        return serving_signatures.metadata_outputs(metadata)

    def streaming(features):
        """Per-frame values of T consecutive frames, as `inference_heads.TemporalHead` gives."""
        n, step = (int(v) for v in window)
        span = n * step
        shape = tf.shape(features)
        batch, num_frames = shape[0], shape[1]
        x = features * scale
        # Frames t < NΔt (phase position j < N): the window is the phase from its first frame
        # to t, i.e. output j of the network run on the phase's first N frames (it is causal).
        head_len = tf.minimum(num_frames, span)
        first = tf.pad(x[:, :head_len], [[0, 0], [0, span - head_len], [0, 0]])
        phases = tf.reshape(tf.transpose(tf.reshape(first, [batch, n, step, feature_dim]),
                                         [0, 2, 1, 3]), [batch * step, n, feature_dim])
        early = temporal(phases, training=False)
        early = tf.reshape(tf.transpose(tf.reshape(early, [batch, step, n, 2]), [0, 2, 1, 3]),
                           [batch, span, 2])[:, :head_len]
        # Frames t >= NΔt: the last output over frames t - (N - 1)Δt, ..., t - Δt, t.
        ends = tf.range(span, tf.maximum(num_frames, span))
        idx = ends[:, None] - step * tf.range(n - 1, -1, -1)[None, :]
        clips = tf.reshape(tf.gather(x, idx, axis=1), [-1, n, feature_dim])
        late = tf.reshape(temporal(clips, training=False)[:, -1], [batch, -1, 2])
        raw = tf.concat([early, late], axis=1)
        return outputs(windows.merge_phases_tf(raw, step if merge else 1, value_range))

    def from_video_features(video_features):
        return streaming(check(video_features, VIDEO_FEATURES,
                               f"float32 [batch, T, {feature_dim}] (T consecutive video "
                               f"frames of one face; batch, T >= 1)", (None, None, feature_dim)))

    def from_video_faces(video_faces):
        faces = check(video_faces, VIDEO_FACES, "uint8 [batch, T, H, W, 3] (aligned RGB face "
                      "crops of T consecutive video frames; batch, T, H, W >= 1)",
                      (None, None, None, None, 3))
        return streaming(face_features(faces))

    archive = keras.export.ExportArchive()
    archive.track(temporal)
    if backbone is not None:  # First endpoint = serving_default.
        archive.track(backbone.feature_model)
        archive.add_endpoint(FACES, from_faces, input_signature=[
            tf.TensorSpec([None, clip_length, None, None, 3], tf.uint8, name=FACES)])
    archive.add_endpoint(FEATURES, from_features, input_signature=[
        tf.TensorSpec([None, clip_length, feature_dim], tf.float32, name=FEATURES)])
    if window is not None:
        if backbone is not None:
            archive.add_endpoint(VIDEO_FACES, from_video_faces, input_signature=[
                tf.TensorSpec([None, None, None, None, 3], tf.uint8, name=VIDEO_FACES)])
        archive.add_endpoint(VIDEO_FEATURES, from_video_features, input_signature=[
            tf.TensorSpec([None, None, feature_dim], tf.float32, name=VIDEO_FEATURES)])
    if backbone is not None:
        archive.add_endpoint(FACES_JPEG, from_faces_jpeg, input_signature=[
            tf.TensorSpec([None, clip_length], tf.string, name=FACES_JPEG)])
    if metadata is not None:
        archive.add_endpoint(METADATA_SIGNATURE, from_request, input_signature=[
            tf.TensorSpec([], tf.int32, name=METADATA_INPUT)])
    return archive


def _check_version_free(export_dir: str, version: int) -> None:
    if version < 1:
        raise errors.UserError(f"--version must be >= 1, got {version}")
    if os.path.exists(os.path.join(export_dir, str(version))):
        raise errors.UserError(
            f"{os.path.join(export_dir, str(version))}: version {version} exists already; "
            f"versions are never overwritten (omit --version to write version "
            f"{next_version(export_dir)})")


def export(workdir: str, export_dir: str, *, version: Optional[int] = None,
           backbone: Optional[str] = None, backbone_weights: Optional[str] = None,
           clip_length: Optional[int] = None, step=None) -> ExportResult:
    """Exports a checkpoint of `workdir` as `<export_dir>/<version>/` (see module doc).

    Args:
      workdir: a work directory written by ast-net-train.
      export_dir: TF Serving model base path; created if missing.
      version: version number; None: `next_version(export_dir)`.
      backbone, backbone_weights: see `resolve_backbone`.
      clip_length: fix N in both signatures; None leaves it dynamic.
      step: the checkpoint: "latest" (None), "best" or a step number
        (`workdir.resolve_checkpoint`).

    Raises:
      errors.UserError: not a workdir / no checkpoint, an existing version, a bad clip length,
        the backbone problems of `resolve_backbone`.
    """
    temporal, config, info, step = training_run.load_temporal(workdir, step)
    if clip_length is not None and clip_length < 1:
        raise errors.UserError(f"--clip_length must be >= 1, got {clip_length}")
    if os.path.exists(export_dir) and not os.path.isdir(export_dir):
        raise errors.UserError(f"{export_dir}: exists and is not a directory")
    version = next_version(export_dir) if version is None else int(version)
    _check_version_free(export_dir, version)
    net, run_contract = resolve(info, config, backbone, backbone_weights, where=workdir)
    os.makedirs(export_dir, exist_ok=True)
    for name in sorted(os.listdir(export_dir)):
        if name.startswith(_TMP_PREFIX):
            logging.warning("%s is left from an interrupted export (TF Serving ignores it; "
                            "remove it once no export is running)", os.path.join(export_dir, name))

    merge, value_range = windows.output_options(config)  # config.output, as in evaluate.
    default = FACES if net is not None else FEATURES
    signatures = (DEFAULT_SIGNATURE,) + ((FACES,) if net is not None else ()) + (FEATURES,) + (
        (VIDEO_FACES,) if net is not None else ()) + (VIDEO_FEATURES,) + (
        (FACES_JPEG,) if net is not None else ()) + (METADATA_SIGNATURE,)
    served = serving_signatures.metadata_fields(
        backbone=net.name if net is not None else None,
        weights=run_contract.weights if net is not None else None,
        face_size=net.input_size if net is not None else None,
        feature_dim=int(info["feature_dim"]), clip_length=int(config.data.clip_length),
        frame_step=int(config.data.frame_step), fixed_clip_length=clip_length,
        label_range=value_range, merge_phases=merge,
        feature_scale=float(config.data.feature_scale), step=step, signatures=signatures,
        default_signature=default, outputs=OUTPUTS, contract=run_contract.to_dict())
    archive = build_archive(temporal, float(config.data.feature_scale), net, clip_length,
                            window=(int(config.data.clip_length), int(config.data.frame_step)),
                            merge=merge, value_range=value_range, metadata=served)
    final = os.path.join(export_dir, str(version))
    tmp = tempfile.mkdtemp(prefix=f"{_TMP_PREFIX}{version}-{os.getpid()}-", dir=export_dir)
    try:
        archive.write_out(tmp, verbose=False)
        metadata = {
            "workdir": os.path.abspath(workdir), "step": step, "version": version,
            "backbone": net.name if net is not None else None,
            "backbone_weights": os.path.abspath(backbone_weights) if backbone_weights else None,
            "trained_on_features_of": info.get("backbone"),
            "feature_dim": int(info["feature_dim"]),
            "face_size": net.input_size if net is not None else None,
            "feature_scale": float(config.data.feature_scale),
            "clip_length": clip_length, "trained_clip_length": int(config.data.clip_length),
            "frame_step": int(config.data.frame_step),
            "signatures": list(signatures), "default_signature": default,
            "outputs": list(OUTPUTS),
            "merge_phases": merge,
            "label_range": list(value_range) if value_range is not None else None,
        }
        metadata[contract_lib.KEY] = run_contract.to_dict()
        os.makedirs(os.path.dirname(os.path.join(tmp, METADATA)))
        atomic.write_json(os.path.join(tmp, CONTRACT), run_contract.to_dict())
        with open(os.path.join(tmp, METADATA), "w") as f:
            json.dump(metadata, f, indent=2, sort_keys=True)
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; a server under another user must read it.
        try:
            os.rename(tmp, final)
        except OSError:  # Another export took this version meanwhile.
            raise errors.UserError(f"{final}: appeared while exporting; not overwritten") from None
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    logging.info("exported step %d of %s to %s (serving_default = %s)", step, workdir, final,
                 default)
    return ExportResult(path=final, version=version, step=step,
                        backbone=net.name if net is not None else None,
                        signatures=signatures, default_signature=default)
