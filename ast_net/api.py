"""The Python API (notebooks): per-frame valence/arousal of every face as a pandas DataFrame.

`predict_video(path)` runs one video; `Predictor` loads the models once (seconds) and then runs
any number of videos, or RGB frames from anywhere (`predict_frames`), one after the other.
Either returns a DataFrame with exactly the columns and values of the CSV that
`ast-net-predict` writes (`outputs.CSV_COLUMNS`, docs/outputs.md): one row per frame and face,
a frame without a face as one row with `face_present` 0. No file is written unless asked
(`out_dir=...` writes the binary's CSV and plot). TensorFlow is imported on first use, when a
`Predictor` loads its models.

    >>> import ast_net
    >>> from ast_net import sample_media
    >>> video = sample_media.path("WolfgangLanger_Pexels.mp4")
    >>> predictor = ast_net.Predictor()  # The zero-shot default (no checkpoint).
    >>> predictor.info.mode, predictor.info.backbone, predictor.info.face_size
    ('zero-shot', 'mini_xception', 64)
    >>> frame = predictor.predict_video(video)
    >>> len(frame), frame["frame"].nunique(), int(frame["face_present"].sum())
    (472, 472, 472)
    >>> frame.columns[:6].tolist()
    ['frame', 'timestamp_s', 'face_id', 'face_present', 'valence', 'arousal']
    >>> bool(frame["valence"].between(-1, 1).all() and frame["arousal"].between(-1, 1).all())
    True

Frames from another source (a camera, a decoded clip), here the first 30 of the same video:

    >>> from ast_net.faces import video as video_lib
    >>> with video_lib.iter_frames(video) as reader:
    ...     rgb = [image for index, _, image in reader if index < 30]
    >>> again = predictor.predict_frames(rgb, fps=reader.info.fps)
    >>> again.equals(frame[frame["frame"] < 30])  # Each call starts afresh, as a new video.
    True

Bad input is one `errors.UserError` line, as in the binaries:

    >>> predictor.predict_frames([rgb[0][:, :, 0]], fps=25.0)
    Traceback (most recent call last):
    ...
    ast_net.errors.UserError: frame 0: expected an RGB image, a uint8 array of shape (height, \
width, 3), got uint8 (360, 640)
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import warnings
from typing import Iterable, Optional

import numpy as np

from ast_net import engine_options, errors, outputs, predict_lib
from ast_net.faces import video as video_lib

OPTIONS = tuple(f.name for f in dataclasses.fields(engine_options.EngineOptions))


@dataclasses.dataclass(frozen=True)
class PredictorInfo:
    """Which model, preprocessing and sampling a `Predictor` uses.

    Attributes:
      mode: "zero-shot" (the backbone's FER2013 emotion probabilities mapped onto Russell's
        circumplex and smoothed: a baseline, not a model trained on valence/arousal) or
        "trained" (the stacked LSTM of an ast-net-train checkpoint).
      checkpoint: the work directory (None when zero-shot).
      backbone: the attribute CNN; weights: fingerprint of its weights file.
      face_size: side of the eye-aligned crops; min_face_size: smallest face (px) detected.
      detect_every, refine_every: frames between full detections / O-Net refinements.
      clip_length, frame_step: trained only: the LSTM's window of N frames, Δt apart.
      smoothing_s: zero-shot only: the EMA time constant in seconds.
      max_faces: at most this many faces tracked (None = all); batch_frames: CNN batch.
    """

    mode: str
    checkpoint: Optional[str]
    backbone: str
    weights: Optional[str]
    face_size: int
    min_face_size: int
    detect_every: int
    refine_every: int
    clip_length: Optional[int]
    frame_step: Optional[int]
    smoothing_s: Optional[float]
    max_faces: Optional[int]
    batch_frames: int

    def __str__(self) -> str:
        model = (f"AST-Net {self.checkpoint} (clip_length {self.clip_length}, frame_step "
                 f"{self.frame_step})" if self.mode == "trained" else
                 f"zero-shot {self.backbone} + Russell circumplex (smoothing "
                 f"{self.smoothing_s} s)")
        return (f"{model}; {self.backbone} on {self.face_size} px eye-aligned faces; MTCNN "
                f"min_face_size {self.min_face_size}, detect_every {self.detect_every}, "
                f"refine_every {self.refine_every}")


class _MemoryCsv:
    """The CSV of `outputs.CsvWriter`, in memory: the same rows (`outputs.csv_rows`), to the
    character."""

    def __init__(self):
        self._file = io.StringIO()
        self._csv = csv.writer(self._file)
        self._csv.writerow(outputs.CSV_COLUMNS)

    def write(self, pred) -> None:
        self._csv.writerows(outputs.csv_rows(pred))

    def frame(self):
        """The rows so far as the DataFrame `pandas.read_csv` makes of the CSV file."""
        import pandas as pd

        return pd.read_csv(io.StringIO(self._file.getvalue()))


def _check_options(options: dict) -> None:
    """Names and values of the options, before TensorFlow starts (`EngineOptions` checks)."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(f"unknown option(s) {', '.join(unknown)}; expected some of "
                        f"{', '.join(OPTIONS)}")
    engine_options.EngineOptions(**options)


class Predictor:
    """Loads the engine once; then `predict_video` / `predict_frames` as often as needed.

    Args:
      checkpoint: an ast-net-train work directory; None = the zero-shot default.
      **options: `engine_options.EngineOptions` fields, as the flags of ast-net-predict:
        backbone, backbone_weights, smoothing_s, step, face_size, detect_every, refine_every,
        min_face_size, max_faces, batch_frames.

    Raises:
      errors.UserError: a bad option or checkpoint (one line).
      TypeError: an unknown option name.
    """

    def __init__(self, checkpoint: Optional[str] = None, **options):
        _check_options(options)
        from ast_net import inference  # TensorFlow starts here.

        self.checkpoint = os.fspath(checkpoint) if checkpoint else None
        self.engine = inference.load_engine(self.checkpoint, **options)
        run, head = self.engine.contract, self.engine.head
        trained = self.checkpoint is not None
        self.info = PredictorInfo(
            mode="trained" if trained else "zero-shot", checkpoint=self.checkpoint,
            backbone=self.engine.backbone.name, weights=run.weights,
            face_size=self.engine.face_size, min_face_size=int(run.min_face_size),
            detect_every=self.engine.detect_every, refine_every=self.engine.refine_every,
            clip_length=head.clip_length if trained else None,
            frame_step=head.frame_step if trained else None,
            smoothing_s=None if trained else head.smoothing_s,
            max_faces=self.engine.max_faces, batch_frames=self.engine.batch_frames)

    def __repr__(self) -> str:
        return f"Predictor({self.info})"

    def predict_video(self, path, *, out_dir: Optional[str] = None, annotate: bool = False):
        """Valence/arousal of every face on every frame of the video `path`, as a DataFrame.

        Args:
          path: a video file.
          out_dir: also write ast-net-predict's `<name>.csv` and `<name>.png` there (and with
            `annotate`, `<name>_annotated.mp4`); None writes nothing.
          annotate: with `out_dir`, also write the annotated copy of the video.

        Raises:
          errors.UserError: the video cannot be opened.

        A truncated or damaged video gives the frames decoded and a warning, as a sideways
        looking one does (`predict_lib.SidewaysCheck`).
        """
        path = os.fspath(path)
        if out_dir is not None:
            result = predict_lib.predict_video(self.engine, path, os.fspath(out_dir),
                                               annotate=annotate, progress=False)
            if result.error:
                warnings.warn(result.error, stacklevel=2)
            import pandas as pd

            return pd.read_csv(result.csv_path)
        if annotate:
            raise ValueError("annotate=True writes a video: give out_dir too")
        reader = video_lib.iter_frames(path, prefetch=16)
        try:
            frame = self._run(reader, path)
        finally:
            reader.close()
        if reader.truncated:
            warnings.warn(f"{reader.error}; the DataFrame holds the frames decoded",
                          stacklevel=2)
        return frame

    def predict_frames(self, frames: Iterable[np.ndarray], fps: float):
        """Valence/arousal of every face on RGB frames (`timestamp_s = index / fps`).

        Args:
          frames: RGB images, uint8 arrays of shape (height, width, 3), in order; any iterable
            (a generator is read as the engine goes, never held whole in memory).
          fps: frames per second of the source.

        Raises:
          errors.UserError: a frame that is not an RGB uint8 image, or a bad fps.
        """
        fps = float(fps)
        if not math.isfinite(fps) or fps <= 0:
            raise errors.UserError(f"fps must be a positive number, got {fps}")
        return self._run(_indexed(frames, fps), "frames")

    def _run(self, frames, where: str):
        self.engine.reset()  # A new video: track ids from 0, no state from the last one.
        rows = _MemoryCsv()
        sideways = predict_lib.SidewaysCheck()
        results = self.engine.run(frames)
        try:
            for pred in results:
                rows.write(pred)
                if sideways.frames < predict_lib.FACE_CHECK_FRAMES:
                    sideways.add(pred)
        finally:
            results.close()  # Stops the face thread, also when the caller interrupts.
        warning = sideways.warning(where)
        if warning:
            warnings.warn(warning.removeprefix("warning: "), stacklevel=3)
        return rows.frame()


def _indexed(frames: Iterable[np.ndarray], fps: float):
    for index, rgb in enumerate(frames):
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise errors.UserError(
                f"frame {index}: expected an RGB image, a uint8 array of shape (height, width, "
                f"3), got {rgb.dtype} {rgb.shape}")
        yield index, index / fps, rgb


def predict_video(path, checkpoint: Optional[str] = None, *, out_dir: Optional[str] = None,
                  annotate: bool = False, **options):
    """`Predictor(checkpoint, **options).predict_video(path, out_dir=..., annotate=...)`.

    Loads the models for this one call (seconds); for several videos keep a `Predictor`.

    >>> import ast_net
    >>> from ast_net import sample_media
    >>> frame = ast_net.predict_video(sample_media.path("single_face.mp4"), detect_every=5)
    >>> frame[["frame", "face_present"]].iloc[0].tolist()
    [0, 1]
    """
    return Predictor(checkpoint, **options).predict_video(path, out_dir=out_dir,
                                                          annotate=annotate)
