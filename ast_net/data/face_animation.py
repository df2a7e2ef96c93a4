"""Animates one real face photo: expression warps driven by valence/arousal, then pose and light.

The face is `skimage.data.astronaut()` (NASA portrait, public domain). Its landmarks are fixed
constants measured once on the 512x512 photo (MTCNN gives eyes at (204, 100) and (245, 102),
mouth corners at (202, 139) and (244, 140); brows and eye/mouth centres were read off a zoomed
grid; a test checks them against MTCNN). Each frame is made in two warps:

1. expression: `cv2.remap` of the face region with a smooth backward displacement field that is
   a weighted sum of fixed Gaussian basis fields (precomputed once): mouth corners up/down
   (valence), mouth opening (valence), a vertical stretch/squeeze around each eye (arousal) and a
   brow lift (arousal);
2. pose and framing: one `cv2.warpAffine` (rotation, scale, translation, per-subject aspect)
   into the output frame, then lighting (gain and gamma through a lookup table), sensor noise
   (`NoiseBank`) and an optional horizontal flip.

`Expression` maps (valence, arousal) in [-1, 1] to warp amplitudes; `FaceRig.render` turns an
expression, a `Pose` and a `Look` into one BGR uint8 frame.
"""

from __future__ import annotations

import dataclasses
import functools

import cv2
import numpy as np

# Landmarks of skimage.data.astronaut() in its own 512x512 pixel coordinates (x, y).
LEFT_EYE = (203.5, 100.0)      # Eye on the image's left.
RIGHT_EYE = (246.0, 102.0)
LEFT_BROW = (201.0, 89.0)
RIGHT_BROW = (249.0, 92.0)
MOUTH_LEFT = (201.5, 139.5)
MOUTH_RIGHT = (244.0, 140.0)
MOUTH_CENTRE = (222.5, 143.5)
EYE_MIDPOINT = ((LEFT_EYE[0] + RIGHT_EYE[0]) / 2, (LEFT_EYE[1] + RIGHT_EYE[1]) / 2)
INTEROCULAR = float(np.hypot(RIGHT_EYE[0] - LEFT_EYE[0], RIGHT_EYE[1] - LEFT_EYE[1]))

# Region of the photo that the expression warp touches (x0, y0, x1, y1); the fields are ~0 at
# its border, so the warped region pastes back without a seam.
_ROI = (150, 50, 300, 200)


@dataclasses.dataclass(frozen=True)
class Expression:
    """Warp amplitudes in photo pixels (see `from_emotion` for how emotion sets them)."""

    mouth_corner_down: float = 0.0   # > 0 pulls both mouth corners down (frown).
    mouth_squeeze: float = 0.0       # > 0 closes the mouth vertically, < 0 opens it.
    eye_squeeze: float = 0.0         # > 0 narrows the eyes, < 0 widens them (in (-1, 2)).
    brow_lift: float = 0.0           # > 0 raises the brows.

    @classmethod
    def from_emotion(cls, valence: float, arousal: float, gain: float = 1.0) -> "Expression":
        """The emotion code: valence -> mouth, arousal -> eyes and brows.

        Args:
          valence: in [-1, 1]; +1 lifts the mouth corners 3 px (a broad smile), -1 pulls them
            8 px down and partly closes the mouth (the photo already smiles, hence the asymmetry).
          arousal: in [-1, 1]; +1 opens the eyes to about 1.4x and lifts the brows 3 px, -1
            narrows the eyes to about 0.6x and lowers the brows 3 px.
          gain: a subject's expressiveness, multiplies the emotion before mapping.
        """
        v = float(np.clip(valence * gain, -1.0, 1.0))
        a = float(np.clip(arousal * gain, -1.0, 1.0))
        return cls(mouth_corner_down=2.5 - 5.5 * v,
                   mouth_squeeze=0.1 - 0.3 * v,
                   eye_squeeze=0.15 - 0.45 * a,
                   brow_lift=3.0 * a)


@dataclasses.dataclass(frozen=True)
class Pose:
    """Head pose in the output frame: rotation (degrees, about the eye midpoint), scale, shift."""

    angle_deg: float = 0.0
    scale: float = 1.0               # Multiplies the subject's base scale.
    shift_x: float = 0.0             # Output pixels.
    shift_y: float = 0.0


@dataclasses.dataclass(frozen=True)
class Look:
    """Per-frame lighting plus the per-subject framing of the face."""

    width: int = 320
    height: int = 240
    base_scale: float = 1.3          # Output pixels per photo pixel (inter-ocular ~55 px).
    aspect: float = 1.0              # Horizontal stretch of the face (subject variation).
    centre_x: float = 0.5            # Where the eye midpoint lands, as a fraction of the frame.
    centre_y: float = 0.4
    gain: float = 1.0                # Lighting gain.
    gamma: float = 1.0               # Lighting gamma (> 1 darkens mid-tones).
    flip: bool = False               # Horizontal flip (subject variation).


def _gaussian(xx, yy, centre, sx, sy):
    return np.exp(-((xx - centre[0]) ** 2 / (2 * sx * sx) + (yy - centre[1]) ** 2 / (2 * sy * sy)))


@functools.lru_cache(maxsize=1)
def astronaut_bgr() -> np.ndarray:
    """The 512x512 astronaut photo as BGR uint8 (read-only)."""
    from skimage import data  # Imported here: scikit-image is only needed by this function.

    img = np.ascontiguousarray(data.astronaut()[:, :, ::-1])
    img.setflags(write=False)
    return img


class FaceRig:
    """Precomputed basis fields for one photo; renders frames from expression, pose and look."""

    def __init__(self, photo_bgr: np.ndarray | None = None):
        self.photo = astronaut_bgr() if photo_bgr is None else photo_bgr
        x0, y0, x1, y1 = _ROI
        xx, yy = np.meshgrid(np.arange(x0, x1, dtype=np.float32),
                             np.arange(y0, y1, dtype=np.float32))
        self._grid = (xx, yy)
        corners = (_gaussian(xx, yy, MOUTH_LEFT, 6.0, 7.0)
                   + _gaussian(xx, yy, MOUTH_RIGHT, 6.0, 7.0))
        mouth = _gaussian(xx, yy, MOUTH_CENTRE, 14.0, 7.0)
        eyes = sum((yy - c[1]) * _gaussian(xx, yy, c, 9.0, 5.0) for c in (LEFT_EYE, RIGHT_EYE))
        brows = _gaussian(xx, yy, LEFT_BROW, 11.0, 5.0) + _gaussian(xx, yy, RIGHT_BROW, 11.0, 5.0)
        # Backward fields (where each output pixel samples the photo), y component only:
        # content moves down by d where the field is -d; a field k*(y - c) shrinks content by
        # 1 + k at c.
        self._basis_y = {
            "mouth_corner_down": -corners,
            "mouth_squeeze": (yy - MOUTH_CENTRE[1]) * mouth,
            "eye_squeeze": eyes,
            "brow_lift": brows,
        }

    def express(self, expression: Expression) -> np.ndarray:
        """The photo with the expression warp applied (BGR uint8, photo size)."""
        xx, yy = self._grid
        map_y = yy.copy()
        for name, field in self._basis_y.items():
            amplitude = getattr(expression, name)
            if amplitude:
                map_y += np.float32(amplitude) * field
        x0, y0, x1, y1 = _ROI
        out = self.photo.copy()
        out[y0:y1, x0:x1] = cv2.remap(self.photo, xx, map_y, cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_REFLECT)
        return out

    @staticmethod
    def affine(pose: Pose, look: Look) -> np.ndarray:
        """2x3 matrix from photo pixels to output pixels (eye midpoint -> look centre)."""
        s = look.base_scale * pose.scale
        theta = np.deg2rad(pose.angle_deg)
        c, si = np.cos(theta), np.sin(theta)
        linear = s * np.array([[c, -si], [si, c]]) @ np.diag([look.aspect, 1.0])
        target = np.array([look.centre_x * look.width + pose.shift_x,
                           look.centre_y * look.height + pose.shift_y])
        offset = target - linear @ np.asarray(EYE_MIDPOINT)
        return np.hstack([linear, offset[:, None]]).astype(np.float64)

    def render(self, expression: Expression, pose: Pose, look: Look,
               noise: np.ndarray | None = None, tint=(1.0, 1.0, 1.0)) -> np.ndarray:
        """One output frame, BGR uint8 `[look.height, look.width, 3]`.

        Args:
          expression: the face's expression warp.
          pose: head pose for this frame.
          look: framing, lighting and flip.
          noise: int16 sensor noise `[look.height, look.width, 3]` added with saturation (for
            example a window of a `NoiseBank`), or None.
          tint: per-channel (B, G, R) gains of the subject's colour cast.
        """
        face = self.express(expression)
        frame = cv2.warpAffine(face, self.affine(pose, look), (look.width, look.height),
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        frame = _light(frame, look.gain, look.gamma, tint)
        if noise is not None:
            frame = cv2.add(frame, noise, dtype=cv2.CV_8U)
        if look.flip:
            frame = cv2.flip(frame, 1)
        return frame


class NoiseBank:
    """Gaussian sensor noise, fast: random windows of a few precomputed noise fields.

    Drawing fresh normal noise for every 320x240 frame costs more than rendering the frame; a
    window at a random offset of one of `num_fields` larger fields looks the same and costs a
    slice.
    """

    def __init__(self, rng: np.random.Generator, height: int, width: int, sigma: float,
                 num_fields: int = 4, margin: int = 32):
        self.height, self.width, self.margin = height, width, margin
        shape = (num_fields, height + margin, width + margin, 3)
        self.fields = np.rint(rng.standard_normal(shape, dtype=np.float32) * sigma).astype(
            np.int16)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        k = int(rng.integers(len(self.fields)))
        dy, dx = (int(v) for v in rng.integers(self.margin, size=2))
        return self.fields[k, dy:dy + self.height, dx:dx + self.width]


def _light(frame: np.ndarray, gain: float, gamma: float, tint) -> np.ndarray:
    """Per-channel lookup tables: 255 * tint_c * gain * (x / 255) ** gamma, clipped."""
    x = np.arange(256, dtype=np.float64) / 255.0
    base = 255.0 * gain * x ** gamma
    lut = np.stack([np.clip(base * t, 0, 255) for t in tint], axis=-1)
    return cv2.LUT(frame, lut.astype(np.uint8)[:, None, :])
