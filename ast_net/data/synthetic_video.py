"""Synthetic face videos with known emotion, written in the AVEC 2012 layout.

Each video animates the astronaut photo (`face_animation`): a latent valence and arousal, smooth
random curves in (-1, 1), drive the expression frame by frame (valence -> mouth corners and
mouth opening; arousal -> eye opening, brow height and how much the head moves), over nuisances
that carry no emotion: a slow pose drift (rotation, scale, shift), lighting gain/gamma drift and
sensor noise; and a per-video "subject" (colour tint, horizontal flip, face size, aspect,
position in the frame, expressiveness, noise level, base lighting). The labels written are what
an annotator would give: the latent delayed by a per-video annotator delay (1-3 s) plus a slow
rater drift and white noise. Every number comes from `numpy.random.default_rng([seed, split,
index, stream])`, so a video depends only on the seed, its split and its number.

`video_spec` draws one video's parameters, `frames` renders it, `emotion` and `label_tracks`
give its latent and its labels; `synthetic_video_io.generate` writes a whole data set.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Iterator, Tuple

import numpy as np

from ast_net.data import face_animation

LABEL_FPS = 49.979  # AVEC 2012 label rate: one .dat line per video frame at 49.979 fps.
SPLITS = ("train", "devel", "test")  # AVEC 2012 split words, in file names.
DIMENSIONS = ("arousal", "expectancy", "power", "valence")  # One .dat file each.
_STREAM_SPEC, _STREAM_RENDER, _STREAM_LABELS = 0, 1, 2
_REFERENCE_SIZE = (320, 240)  # Frame size at which the subject's base_scale is given.


@dataclasses.dataclass(frozen=True)
class Curve:
    """A smooth random function of time: a sum of sinusoids with unit RMS (peaks ~ +-2)."""

    freqs_hz: Tuple[float, ...]
    phases: Tuple[float, ...]
    amps: Tuple[float, ...]

    @classmethod
    def random(cls, rng: np.random.Generator, min_period_s: float, max_period_s: float,
               num_terms: int = 4) -> "Curve":
        periods = np.exp(rng.uniform(np.log(min_period_s), np.log(max_period_s), num_terms))
        amps = rng.uniform(0.3, 1.0, num_terms)
        amps = amps / np.sqrt(np.sum(amps ** 2) / 2.0)  # Unit RMS over a long time.
        return cls(tuple(float(f) for f in 1.0 / periods),
                   tuple(float(p) for p in rng.uniform(0, 2 * np.pi, num_terms)),
                   tuple(float(a) for a in amps))

    def __call__(self, t) -> np.ndarray:
        t = np.asarray(t, np.float64)[..., None]
        waves = np.sin(2 * np.pi * np.asarray(self.freqs_hz) * t + np.asarray(self.phases))
        return waves @ np.asarray(self.amps)


@dataclasses.dataclass(frozen=True)
class Subject:
    """What makes one video's person look different from another's (fixed over the video)."""

    tint_bgr: Tuple[float, float, float]
    flip: bool
    base_scale: float        # Output px per photo px at 320x240 (inter-ocular ~ 49-62 px).
    aspect: float
    centre_x: float
    centre_y: float
    expressiveness: float    # Multiplies valence/arousal before they drive the face.
    noise_sigma: float       # Sensor noise, grey levels.
    light: float             # Base lighting gain.
    gamma: float             # Base lighting gamma.


@dataclasses.dataclass(frozen=True)
class VideoSpec:
    """Everything that defines one synthetic video and its labels."""

    session: str             # e.g. "train003": the AVEC 2012 session name.
    split: str               # "train" | "devel" | "test".
    index: int               # NNN.
    seed: int
    num_frames: int
    fps: float
    width: int
    height: int
    subject: Subject
    emotion_scale: Tuple[float, float]    # (valence, arousal) gain before tanh.
    emotion_offset: Tuple[float, float]
    valence: Curve
    arousal: Curve
    expectancy: Curve                     # Not rendered: labels only, as in the real files.
    power: Curve
    annotator_delay_s: float
    label_drift_sd: float
    label_noise_sd: float
    label_drift: Curve
    pose_drift: Tuple[Curve, Curve, Curve, Curve]   # angle, scale, shift x, shift y.
    pose_jitter: Tuple[Curve, Curve, Curve]         # angle, shift x, shift y (x arousal).
    lighting: Tuple[Curve, Curve]                   # gain, gamma.


def session_name(split: str, index: int) -> str:
    return f"{split}{index:03d}"


def _rng(seed: int, split: str, index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, SPLITS.index(split), index, stream])


def video_spec(seed: int, split: str, index: int, num_frames: int, fps: float = LABEL_FPS,
               width: int = 320, height: int = 240) -> VideoSpec:
    """Draws one video's subject, emotion curves, delay and nuisances (deterministic)."""
    rng = _rng(seed, split, index, _STREAM_SPEC)
    subject = Subject(
        tint_bgr=tuple(float(v) for v in rng.uniform(0.85, 1.15, 3)),
        flip=bool(rng.random() < 0.5),
        base_scale=float(rng.uniform(1.15, 1.45)),
        aspect=float(rng.uniform(0.92, 1.08)),
        centre_x=float(rng.uniform(0.44, 0.56)),
        centre_y=float(rng.uniform(0.36, 0.46)),
        expressiveness=float(rng.uniform(0.8, 1.0)),
        noise_sigma=float(rng.uniform(1.0, 4.0)),
        light=float(rng.uniform(0.85, 1.1)),
        gamma=float(rng.uniform(0.85, 1.15)),
    )

    def curve(lo, hi):
        return Curve.random(rng, lo, hi)

    return VideoSpec(
        session=session_name(split, index), split=split, index=index, seed=seed,
        num_frames=num_frames, fps=float(fps), width=width, height=height, subject=subject,
        emotion_scale=tuple(float(v) for v in rng.uniform(0.9, 1.3, 2)),
        emotion_offset=tuple(float(v) for v in rng.uniform(-0.3, 0.3, 2)),
        valence=curve(3.0, 15.0), arousal=curve(3.0, 15.0),
        expectancy=curve(3.0, 15.0), power=curve(3.0, 15.0),
        annotator_delay_s=float(rng.uniform(1.0, 3.0)),
        label_drift_sd=float(rng.uniform(0.02, 0.06)),
        label_noise_sd=float(rng.uniform(0.01, 0.03)),
        label_drift=curve(1.0, 5.0),
        pose_drift=(curve(4.0, 20.0), curve(4.0, 20.0), curve(4.0, 20.0), curve(4.0, 20.0)),
        pose_jitter=(curve(0.3, 1.5), curve(0.3, 1.5), curve(0.3, 1.5)),
        lighting=(curve(3.0, 20.0), curve(3.0, 20.0)),
    )


def emotion(spec: VideoSpec, times_s) -> Tuple[np.ndarray, np.ndarray]:
    """The latent (undelayed) valence and arousal at the given times, each in (-1, 1)."""
    (sv, sa), (ov, oa) = spec.emotion_scale, spec.emotion_offset
    return (np.tanh(sv * spec.valence(times_s) * 0.7 + ov),
            np.tanh(sa * spec.arousal(times_s) * 0.7 + oa))


def frame_times(spec: VideoSpec) -> np.ndarray:
    return np.arange(spec.num_frames) / spec.fps


def num_label_lines(spec: VideoSpec) -> int:
    """Label lines covering the video at LABEL_FPS (= num_frames when fps is LABEL_FPS)."""
    return int(round(spec.num_frames * LABEL_FPS / spec.fps))


def label_tracks(spec: VideoSpec) -> Dict[str, np.ndarray]:
    """Per-dimension labels at LABEL_FPS: latent delayed by the annotator, plus noise, in [-1, 1].

    Line k is time k / LABEL_FPS and holds latent(t - delay) + drift(t) + white noise; the
    expectancy and power dimensions are delayed noisy curves that the face does not show.
    """
    rng = _rng(spec.seed, spec.split, spec.index, _STREAM_LABELS)
    t = np.arange(num_label_lines(spec)) / LABEL_FPS
    seen = t - spec.annotator_delay_s
    valence, arousal = emotion(spec, seen)
    latent = {"valence": valence, "arousal": arousal,
              "expectancy": np.tanh(0.7 * spec.expectancy(seen)),
              "power": np.tanh(0.7 * spec.power(seen))}
    out = {}
    for k, dim in enumerate(DIMENSIONS):
        # One drift curve, read 7 s apart per dimension, so each dimension drifts differently.
        noisy = (latent[dim] + spec.label_drift_sd * spec.label_drift(t + 7.0 * k)
                 + spec.label_noise_sd * rng.standard_normal(len(t)))
        out[dim] = np.clip(noisy, -1.0, 1.0)
    return out


def poses(spec: VideoSpec, arousal: np.ndarray) -> Iterator[face_animation.Pose]:
    """Pose per frame: slow drift plus jitter whose amplitude grows with arousal."""
    t = frame_times(spec)
    energy = 0.2 + 0.8 * (arousal + 1.0) / 2.0
    size = min(spec.width / _REFERENCE_SIZE[0], spec.height / _REFERENCE_SIZE[1])
    angle = 2.5 * spec.pose_drift[0](t) + 2.0 * energy * spec.pose_jitter[0](t)
    scale = np.exp(0.03 * spec.pose_drift[1](t))
    shift_x = size * (5.0 * spec.pose_drift[2](t) + 3.0 * energy * spec.pose_jitter[1](t))
    shift_y = size * (4.0 * spec.pose_drift[3](t) + 2.5 * energy * spec.pose_jitter[2](t))
    for k in range(spec.num_frames):
        yield face_animation.Pose(float(angle[k]), float(scale[k]), float(shift_x[k]),
                                  float(shift_y[k]))


def frames(spec: VideoSpec, rig: face_animation.FaceRig | None = None
           ) -> Iterator[np.ndarray]:
    """Renders the video: `spec.num_frames` BGR uint8 frames `[height, width, 3]`."""
    rig = rig or face_animation.FaceRig()
    rng = _rng(spec.seed, spec.split, spec.index, _STREAM_RENDER)
    sub = spec.subject
    t = frame_times(spec)
    valence, arousal = emotion(spec, t)
    gain = sub.light * (1.0 + 0.08 * spec.lighting[0](t))
    gamma = sub.gamma * np.exp(0.08 * spec.lighting[1](t))
    size = min(spec.width / _REFERENCE_SIZE[0], spec.height / _REFERENCE_SIZE[1])
    noise = face_animation.NoiseBank(rng, spec.height, spec.width, sub.noise_sigma)
    for k, pose in enumerate(poses(spec, arousal)):
        look = face_animation.Look(
            width=spec.width, height=spec.height, base_scale=sub.base_scale * size,
            aspect=sub.aspect, centre_x=sub.centre_x, centre_y=sub.centre_y,
            gain=float(gain[k]), gamma=float(gamma[k]), flip=sub.flip)
        expression = face_animation.Expression.from_emotion(
            float(valence[k]), float(arousal[k]), sub.expressiveness)
        yield rig.render(expression, pose, look, noise.sample(rng), sub.tint_bgr)
