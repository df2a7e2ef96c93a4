"""The preprocessing contract: every setting that changes what the network sees, in one record.

A model only predicts well on inputs made the way its training inputs were made. `Contract`
holds those settings; each stage fills in what it decides and passes the rest on:

    ast-net-prepare-videos   face_size, eye template, colour, detector/tracker settings,
                             JPEG quality               -> <faces>/manifest.json "contract"
    ast-net-extract-features + backbone, weights fingerprint, feature_dim; refuses faces of
                             another size than the backbone's input (never a silent resize)
                                                        -> <features>/manifest.json "contract"
    ast-net-train            + clip_length N, frame_step Δt
                                                        -> <workdir>/model_info.json "contract"
    ast-net-export           the workdir's contract     -> <version>/assets.extra/contract.json
    ast-net-predict/realtime `resolve(...)`: the engine's face size, detector and tracker
                             settings come from the checkpoint's contract; a flag that
                             contradicts it is one error line naming each differing field.

Fields that a stage has not decided yet are None and are never compared (`check`). Flag-free
runs of every stage land on the same contract: the `DEFAULT_*` detector/tracker settings are
the defaults of both prepare-videos and the predictor, and prepare-videos' face size defaults
to the input size of the backbone (`INPUT_SIZES`, 64 px for the default mini_xception).

Everything that differs between backbones (input size, default weights, whether a weights file
is needed) is an attribute of its module in `backbones.BACKBONES`, looked up here by name.
Importing this module imports neither TensorFlow nor Keras (prepare-videos reads it before TF
starts; the backbone modules import them on first use, `ast_net/lazy.py`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Optional

from ast_net import errors
from ast_net.faces import align
from ast_net.models import backbones

DEFAULT_BACKBONE = backbones.DEFAULT
# Input side of each backbone as built by `backbones.load_backbone` with default weights.
INPUT_SIZES = {name: module.INPUT_SIZE for name, module in backbones.BACKBONES.items()}
# The detector/tracker settings of both prepare-videos and the predictor when no flag is given:
# full MTCNN every 10 frames (and when the face is lost), O-Net refinement on every frame
# between, faces of at least 40 px.
DEFAULT_DETECT_EVERY = 10
DEFAULT_REFINE_EVERY = 1
DEFAULT_MIN_FACE_SIZE = 40
COLOUR = "rgb-uint8"  # Crops are RGB uint8; each backbone's `preprocess` does gray / BGR itself.
DETECTOR = "mtcnn-1.0.0"
TRACKED = ("face_size", "min_face_size", "detect_every", "refine_every")  # Engine settings.
KEY = "contract"  # Its key in manifest.json and model_info.json.
FILE = "contract.json"  # Its file name in a SavedModel's assets.extra/.


@dataclasses.dataclass(frozen=True)
class Contract:
    """What the network sees; None = not decided (yet) by any stage, never compared.

    Attributes:
      face_size: side S of the aligned square crops fed to the CNN.
      eye_template: template eye centres as fractions of S, "x_left,x_right,y".
      colour: how crops are handed to the CNN (COLOUR).
      detector: face detector (DETECTOR).
      min_face_size: smallest face (px) the detector looks for.
      detect_every: frames between full detections.
      refine_every: frames between O-Net refinements (boxes held in between).
      max_faces: faces tracked per video in training (1 single-subject, 2 Aff-Wild2 left/right);
        recorded, not enforced: the predictor tracks every face (see docs/contract.md).
      jpeg_quality: quality of the stored training crops (serving feeds raw crops; recorded).
      backbone: attribute CNN whose features the temporal net was trained on.
      weights: fingerprint of the CNN's weights (`weights_fingerprint`).
      feature_dim: D.
      clip_length: N.
      frame_step: Δt.
    """

    face_size: Optional[int] = None
    eye_template: Optional[str] = None
    colour: Optional[str] = None
    detector: Optional[str] = None
    min_face_size: Optional[int] = None
    detect_every: Optional[int] = None
    refine_every: Optional[int] = None
    max_faces: Optional[int] = None
    jpeg_quality: Optional[int] = None
    backbone: Optional[str] = None
    weights: Optional[str] = None
    feature_dim: Optional[int] = None
    clip_length: Optional[int] = None
    frame_step: Optional[int] = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Optional[dict]) -> "Contract":
        """The contract of a JSON dict (unknown keys ignored; None or {} = nothing known)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in (data or {}).items() if k in names})

    def replace(self, **changes) -> "Contract":
        return dataclasses.replace(self, **changes)

    def merged(self, later: "Contract") -> "Contract":
        """This contract with every field `later` has decided (not None) taken from it."""
        return self.replace(**{k: v for k, v in later.to_dict().items() if v is not None})


def eye_template() -> str:
    """The alignment template of `ast_net.faces.align` as recorded in a contract."""
    return f"{align.EYE_X[0]:g},{align.EYE_X[1]:g},{align.EYE_Y:g}"


def faces_contract(face_size: int, *, min_face_size: int = DEFAULT_MIN_FACE_SIZE,
                   detect_every: int = DEFAULT_DETECT_EVERY,
                   refine_every: int = DEFAULT_REFINE_EVERY, max_faces: Optional[int] = None,
                   jpeg_quality: Optional[int] = None) -> Contract:
    """The face part of a contract (what prepare-videos or the predictor's face stage does)."""
    return Contract(face_size=int(face_size), eye_template=eye_template(), colour=COLOUR,
                    detector=DETECTOR, min_face_size=int(min_face_size),
                    detect_every=int(detect_every), refine_every=int(refine_every),
                    max_faces=max_faces, jpeg_quality=jpeg_quality)


def default_face_size(backbone: str = DEFAULT_BACKBONE) -> int:
    """The input side of `backbone` (64 mini_xception, 224 vgg16); UserError if unknown."""
    if backbone not in INPUT_SIZES:
        raise errors.UserError(f"unknown backbone {backbone!r}; expected one of "
                               f"{tuple(INPUT_SIZES)}")
    return INPUT_SIZES[backbone]


def weights_fingerprint(backbone: str, weights_path: Optional[str]) -> str:
    """What identifies a backbone's weights: without a file its module's `weights_id()`
    ("embedded-fer-<version>" for mini_xception, "random" for vgg16), else "sha1:<16 hex>" of
    the file."""
    if not weights_path:
        return backbones.get(backbone).weights_id()
    digest = hashlib.sha1()
    try:
        with open(weights_path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as e:
        raise errors.UserError(f"{weights_path}: cannot read the weights file "
                               f"({e.strerror or e})") from None
    return f"sha1:{digest.hexdigest()[:16]}"


def differences(expected: Contract, actual: Contract) -> list[str]:
    """One phrase per field both sides have decided and that differs."""
    out = []
    for name, want in expected.to_dict().items():
        got = getattr(actual, name)
        if want is None or got is None or want == got:
            continue
        if name == "backbone":
            out.append(f"trained on {want} features, not {got}")
        else:
            out.append(f"{name} {want!r} there, {got!r} here")
    return out


def check(expected: Contract, actual: Contract, where: str, hint: str = "",
          what: str = "preprocessing contract mismatch") -> None:
    """UserError, one line naming `where` and every differing field, unless they agree.

    Args:
      expected: the contract of what was made earlier (records, checkpoint).
      actual: what this stage is about to do.
      where: the file or directory `expected` comes from.
      hint: what to do about it (appended in parentheses).
      what: the kind of mismatch, after `where`.
    """
    diffs = differences(expected, actual)
    if diffs:
        raise errors.UserError(f"{where}: {what}: {'; '.join(diffs)}"
                               + (f" ({hint})" if hint else ""))


def read_manifest(directory: str) -> Optional[Contract]:
    """The contract in `<directory>/manifest.json`, or None (no manifest or none recorded)."""
    path = os.path.join(directory, "manifest.json")
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get(KEY), dict):
        return None
    return Contract.from_dict(data[KEY])


def of_model_info(info: dict, config=None) -> Contract:
    """A workdir's contract: model_info.json's "contract", with backbone and feature_dim of
    model_info.json itself (all that older workdirs recorded) and N, Δt of the config: the
    values the temporal network is rebuilt from."""
    found = Contract.from_dict(info.get(KEY))
    backbone = str(info.get("backbone") or "") or None
    known = Contract(backbone=backbone,
                     feature_dim=int(info["feature_dim"]) if "feature_dim" in info else None)
    if config is not None:
        known = known.replace(clip_length=int(config.data.clip_length),
                              frame_step=int(config.data.frame_step))
    return found.merged(known)  # What the model is built from (feature_dim, N, Δt) wins.


def of_workdir(workdir: str) -> Contract:
    """The contract of an ast-net-train work directory (UserError if it is not one)."""
    from ast_net import training_run  # TensorFlow: only when a workdir is read.

    config, info = training_run.load_run_info(workdir)
    return of_model_info(info, config)


def resolve(expected: Contract, where: str, *, backbone: Optional[str] = None,
            weights: Optional[str] = None, **engine) -> Contract:
    """The one compatibility resolver of predict, realtime and export (before any model loads).

    Takes the checkpoint's contract and what the user asked for (None = not asked) and
    returns the contract to run with: every field the user left open comes from the
    checkpoint, or, for a contract without face settings (older workdirs, zero-shot), from the
    defaults (the DEFAULT_* tracker settings, face size = the backbone's input size).
    `load_backbone` then checks the loaded CNN against it.

    Args:
      expected: the checkpoint's contract (`of_model_info`), or Contract() for zero-shot.
      where: the checkpoint path, for messages.
      backbone: a --backbone flag value.
      weights: a --backbone_weights path (its fingerprint is compared with the checkpoint's).
      **engine: face_size, min_face_size, detect_every, refine_every flag values (None or 0 =
        not given).

    Raises:
      errors.UserError: one line naming every field where a flag contradicts the checkpoint,
        or a checkpoint whose features no known backbone computes.
    """
    unknown = set(engine) - set(TRACKED)
    if unknown:
        raise TypeError(f"unknown engine settings {sorted(unknown)}")
    if expected.feature_dim is not None and expected.backbone not in INPUT_SIZES:
        raise errors.UserError(
            f"{where}: checkpoint from another config: trained on {expected.feature_dim}-d "
            f"features of backbone {expected.backbone or 'unknown'!r}, which the predictor "
            f"cannot compute (expected features of one of {tuple(INPUT_SIZES)})")
    name = backbone or expected.backbone or DEFAULT_BACKBONE
    if name not in INPUT_SIZES:
        raise errors.UserError(f"unknown backbone {name!r}; expected one of "
                               f"{tuple(INPUT_SIZES)}")
    asked = Contract(backbone=backbone,
                     **{k: (int(v) if v else None) for k, v in engine.items()})
    if weights or not backbones.get(name).NEEDS_WEIGHTS:  # Else `load_backbone` says so.
        asked = asked.replace(weights=weights_fingerprint(name, weights))
    check(expected, asked, where, what="checkpoint from another config (preprocessing contract)",
          hint="drop these flags to use the checkpoint's values, or prepare, extract and train "
               "again with them")
    defaults = faces_contract(expected.face_size or asked.face_size or default_face_size(name))
    return defaults.merged(expected).merged(asked).replace(backbone=name)


def load_backbone(run: Contract, weights: Optional[str], where: str):
    """Loads the CNN `run` names and checks it gives the contract's features.

    Returns:
      a `backbones.Backbone`.

    Raises:
      errors.UserError: vgg16 without weights for a checkpoint, a missing / wrong weights
        file, another feature size than the checkpoint's D.
    """
    module = backbones.get(run.backbone)
    if module.NEEDS_WEIGHTS and not weights and run.feature_dim is not None:
        raise errors.UserError(
            f"{where}: trained on {run.backbone} features: the {run.backbone} backbone needs "
            f"--backbone_weights, the {os.path.splitext(module.EXPORT_NAME)[1]} file the "
            "training features were extracted with")
    net = backbones.load_backbone(run.backbone, weights)
    if run.feature_dim is not None and net.feature_dim != run.feature_dim:
        raise errors.UserError(
            f"{where}: checkpoint from another config: the {run.backbone} backbone"
            f"{' in ' + weights if weights else ''} gives {net.feature_dim}-d features but the "
            f"workdir was trained on {run.feature_dim}-d features")
    return net
