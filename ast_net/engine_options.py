"""`EngineOptions`: what a user can set on the streaming engine, validated once, in one place.

ast-net-predict and ast-net-realtime build it from their flags (`ast_net/engine_flags.py`);
`inference.load_engine` builds it from its keyword arguments. Either way a bad value is one
`errors.UserError` line naming the flag (`--batch_size` for `batch_frames`, the only field whose
flag has another name). None (and 0 for `face_size`) means "not given": the checkpoint's
preprocessing contract, else the defaults of `ast_net.contract`, decide (`contract.resolve`).

This module imports no TensorFlow: the binaries validate their flags before TF starts.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from ast_net import errors

MIN_FACE_SIZE = 12  # MTCNN finds nothing below 12 px (its smallest pyramid level).


@dataclasses.dataclass(frozen=True)
class EngineOptions:
    """Engine settings a user chooses (see the flags of ast-net-predict for each meaning).

    Attributes:
      backbone: CNN name (a key of `backbones.BACKBONES`); None = the checkpoint's, or the
        zero-shot default.
      backbone_weights: weights file of the backbone.
      smoothing_s: zero-shot EMA time constant in seconds (None = 0.5; 0 = none).
      step: the checkpoint's step: "latest" (None), "best" or a number.
      face_size: side of the aligned crops (0 = the contract's / the CNN's input size).
      detect_every: frames between full detections (None = the contract's).
      refine_every: frames between O-Net refinements (None = the contract's).
      min_face_size: smallest face in pixels (None = the contract's).
      max_faces: at most this many faces tracked at once (None = all).
      batch_frames: frames whose faces go through the CNN together (flag --batch_size).
    """

    backbone: Optional[str] = None
    backbone_weights: Optional[str] = None
    smoothing_s: Optional[float] = None
    step: Optional[str] = None
    face_size: int = 0
    detect_every: Optional[int] = None
    refine_every: Optional[int] = None
    min_face_size: Optional[int] = None
    max_faces: Optional[int] = None
    batch_frames: int = dataclasses.field(default=32, metadata={"flag": "batch_size"})

    def __post_init__(self):
        for name in ("max_faces", "detect_every", "refine_every", "batch_frames",
                     "min_face_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise errors.UserError(f"--{flag_name(name)} must be >= 1, got {value}")
        if self.min_face_size is not None and self.min_face_size < MIN_FACE_SIZE:
            raise errors.UserError(f"--min_face_size must be >= {MIN_FACE_SIZE} px, got "
                                   f"{self.min_face_size}")

    @classmethod
    def split(cls, base: Optional["EngineOptions"], kwargs: dict) -> "EngineOptions":
        """`base` (or the defaults) with the fields found in `kwargs` (removed from it)."""
        names = [f.name for f in dataclasses.fields(cls) if f.name in kwargs]
        return dataclasses.replace(base or cls(), **{n: kwargs.pop(n) for n in names})


def flag_name(field: str) -> str:
    """The command-line flag of an `EngineOptions` field."""
    for f in dataclasses.fields(EngineOptions):
        if f.name == field:
            return f.metadata.get("flag", field)
    raise KeyError(field)
