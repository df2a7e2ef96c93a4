"""MTCNN face detection (boxes + 5 landmarks) on the `mtcnn` 1.0.0 networks, fixed and fast.

We reuse the P-Net / R-Net / O-Net Keras models and weights shipped in the `mtcnn` wheel but
drive them ourselves, for two reasons:

* **The bug.** `mtcnn.MTCNN.detect_faces(..., min_face_size=40)` finds nothing. Its
  `build_scale_pyramid` counts pyramid levels from the image size alone
  (`log(min_dim / 12) / log(0.709)`) but starts at `12 / min_face_size`, so with a minimum face
  above 20 px the last levels are smaller than P-Net's 12 px window; P-Net then yields empty maps,
  a later op raises `InvalidArgumentError` and `detect_faces` swallows it as "no faces" for the
  whole image. Here the pyramid is `12 / min_face_size * 0.709**k` for every k whose shorter
  side is still >= 12 px, which is what the MTCNN paper and the original code do.
* **Speed.** The whole cascade is one traced graph call (`mtcnn_graph.py`, any image size),
  and the refinement is one traced O-Net call on patches cut with OpenCV; no per-call Keras
  machinery is involved. Only the final threshold, landmark decoding and "min" NMS are numpy.

`MtcnnDetector.detect` is the full three-stage cascade; `refine` / `refine_many` run only O-Net
on a previous box (squared), a few ms, which is what the tracker uses between full detections.
Landmarks are averaged over O-Net runs on a few framings of the box (`extra_landmark_views`),
which steadies them. Landmark keys follow mtcnn: `left_eye` / `right_eye` are the eyes on the
image's left / right. Boxes are not clipped to the image (a face cut by the border keeps its
full extent).
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import tensorflow as tf

from ast_net.faces import boxes as box_lib
from ast_net.faces import mtcnn_graph

LANDMARK_KEYS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
_PNET_CELL = mtcnn_graph.PNET_CELL


@dataclasses.dataclass
class Face:
    """One detected face: box (x, y, w, h), O-Net confidence and the five landmarks (x, y)."""

    box: tuple[float, float, float, float]
    confidence: float
    landmarks: dict[str, tuple[float, float]]

    @property
    def corners(self) -> np.ndarray:
        return box_lib.xywh_to_corners(self.box)


def pyramid_scales(height: int, width: int, min_face_size: float,
                   scale_factor: float = 0.709) -> list[float]:
    """Scales of the image pyramid: 12/min_face_size * f**k while the short side stays >= 12."""
    scales = []
    scale = _PNET_CELL / float(min_face_size)
    while min(height, width) * scale >= _PNET_CELL:
        scales.append(scale)
        scale *= scale_factor
    return scales


def _check_image(rgb) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 image H x W x 3, got {rgb.dtype} {rgb.shape}")
    return np.ascontiguousarray(rgb)


class MtcnnDetector:
    """MTCNN face detector (full cascade) with a cheap O-Net-only refinement for tracking.

    Args:
      min_face_size: smallest face side, in pixels, the pyramid looks for (any value works,
        unlike `mtcnn.MTCNN`, see the module docstring).
      confidence_threshold: O-Net face probability a detection must exceed.
      scale_factor: ratio between pyramid levels.
      pnet_threshold / rnet_threshold: thresholds of the first two stages (mtcnn's defaults).
      refine_threshold: O-Net probability `refine` needs to keep a face (defaults to
        `confidence_threshold`).
      refine_scale: the previous box is squared and scaled by this factor before O-Net. 1.0
        (the previous O-Net box as is) tracked best on WolfgangLanger_Pexels.mp4: fewer lost
        tracks and less landmark jitter than 1.1 or 1.2 (see docs/faces.md).
      extra_landmark_views: O-Net also runs on the face's square box scaled by each of these
        factors (same batch) and the landmarks are the mean over all framings. O-Net's
        landmarks move by about one pixel of its 48 px input when the framing changes; the
        mean steadies them (frame-to-frame eye jitter 2.2 -> 1.8 px with (0.93,), and a fresh
        detection on the aligned crops agrees better) for ~40% more O-Net time. () = off.
    """

    def __init__(self, min_face_size=40, confidence_threshold=0.9, *, scale_factor=0.709,
                 pnet_threshold=0.6, rnet_threshold=0.7, refine_threshold=None,
                 refine_scale=1.0, extra_landmark_views=(0.93,)):
        if min_face_size < _PNET_CELL:
            raise ValueError(f"min_face_size must be >= {_PNET_CELL} px, got {min_face_size}")
        self.min_face_size = float(min_face_size)
        self.confidence_threshold = float(confidence_threshold)
        self.scale_factor = float(scale_factor)
        self.pnet_threshold = float(pnet_threshold)
        self.rnet_threshold = float(rnet_threshold)
        self.refine_threshold = float(
            confidence_threshold if refine_threshold is None else refine_threshold)
        self.refine_scale = float(refine_scale)
        self.extra_landmark_views = tuple(float(v) for v in extra_landmark_views or ())
        self._nets = mtcnn_graph.networks()
        self._cascade = self._nets.cascade_fn(self.pnet_threshold, self.rnet_threshold)

    # ----- full cascade -------------------------------------------------------------------

    def detect(self, rgb) -> list[Face]:
        """All faces of an RGB uint8 image, highest confidence first."""
        rgb = _check_image(rgb)
        height, width = rgb.shape[:2]
        scales = pyramid_scales(height, width, self.min_face_size, self.scale_factor)
        if not scales:  # Image smaller than min_face_size: nothing to look at.
            return []
        outputs = self._cascade(tf.constant(rgb), tf.constant(scales, tf.float32))
        corners, offsets, landmarks, prob = (t.numpy() for t in outputs)
        faces = self._decode(corners, offsets, landmarks, prob, self.confidence_threshold)
        faces = self._final_nms([f for f in faces if f is not None])
        if faces and self.extra_landmark_views:
            square = box_lib.to_square(np.stack([f.corners for f in faces]))
            views = self._onet(rgb, np.concatenate(
                [box_lib.to_square(square, v) for v in self.extra_landmark_views]), -1.0)
            n = len(faces)
            for i, face in enumerate(faces):
                face.landmarks = _mean_landmarks(
                    [face] + [views[i + j * n] for j in range(len(self.extra_landmark_views))])
        return faces

    def _onet(self, rgb, corners, threshold) -> list[Face | None]:
        outputs = self._nets.run_onet(tf.constant(onet_patches(rgb, corners)))
        reg, landmarks, prob = (t.numpy() for t in outputs)
        return self._decode(corners, reg, landmarks, prob, threshold)

    @staticmethod
    def _decode(corners, reg, landmarks, prob, threshold) -> list[Face | None]:
        """Faces from O-Net's outputs on square boxes; None where prob is not above threshold."""
        corners = corners.astype(np.float64)
        # mtcnn's landmark convention: fractions of the (w + 1, h + 1) input box, minus 1 px.
        w = corners[:, 2:3] - corners[:, 0:1] + 1.0
        h = corners[:, 3:4] - corners[:, 1:2] + 1.0
        xs = w * landmarks[:, 0:5] + corners[:, 0:1] - 1.0
        ys = h * landmarks[:, 5:10] + corners[:, 1:2] - 1.0
        refined = box_lib.apply_regression(corners, reg)
        faces: list[Face | None] = []
        for i in range(len(corners)):
            if not prob[i] > threshold:
                faces.append(None)
                continue
            faces.append(Face(
                box=box_lib.corners_to_xywh(refined[i]),
                confidence=float(prob[i]),
                landmarks={k: (float(xs[i, j]), float(ys[i, j]))
                           for j, k in enumerate(LANDMARK_KEYS)}))
        return faces

    def _final_nms(self, faces: list[Face]) -> list[Face]:
        if len(faces) < 2:
            return faces
        corners = np.stack([f.corners for f in faces])
        keep = box_lib.nms(corners, np.array([f.confidence for f in faces]), 0.7, "min")
        return [faces[i] for i in keep]

    # ----- refinement ---------------------------------------------------------------------

    def refine(self, rgb, box) -> Face | None:
        """O-Net alone on `box` (x, y, w, h) of a previous frame; None if no face is there."""
        return self.refine_many(rgb, [box])[0]

    def refine_many(self, rgb, boxes_xywh) -> list[Face | None]:
        """`refine` for several boxes in one O-Net call (one entry per box, in order).

        Box and confidence come from O-Net on the squared box; landmarks are averaged with the
        `extra_landmark_views` framings, which run in the same batch.
        """
        if not len(boxes_xywh):
            return []
        rgb = _check_image(rgb)
        corners = np.stack([box_lib.xywh_to_corners(b) for b in boxes_xywh])
        corners = box_lib.to_square(corners, self.refine_scale)
        batch = np.concatenate(
            [corners] + [box_lib.to_square(corners, v) for v in self.extra_landmark_views])
        decoded = self._onet(rgb, batch, -1.0)
        n, views = len(corners), 1 + len(self.extra_landmark_views)
        faces: list[Face | None] = []
        for i in range(n):
            face = decoded[i]
            if not face.confidence > self.refine_threshold:
                faces.append(None)
                continue
            if views > 1:
                face.landmarks = _mean_landmarks([decoded[i + j * n] for j in range(views)])
            faces.append(face)
        return faces


def onet_patches(rgb: np.ndarray, corners: np.ndarray, size: int = 48) -> np.ndarray:
    """uint8 patches [N, size, size, 3] of square boxes, sampled like tf.image.crop_and_resize.

    Sample i of a box runs from x1 to x2 in `size` steps (corners on pixel centres), bilinear,
    black outside the image: the same patches as the cascade's crop_and_resize, cut by OpenCV.
    """
    out = np.empty((len(corners), size, size, 3), np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(corners, dtype=np.float64)):
        inverse = np.array([[(x2 - x1) / (size - 1), 0.0, x1],
                            [0.0, (y2 - y1) / (size - 1), y1]])
        cv2.warpAffine(rgb, inverse, (size, size), dst=out[i],
                       flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return out


def _mean_landmarks(faces: list[Face]) -> dict[str, tuple[float, float]]:
    return {k: (float(np.mean([f.landmarks[k][0] for f in faces])),
                float(np.mean([f.landmarks[k][1] for f in faces]))) for k in LANDMARK_KEYS}
