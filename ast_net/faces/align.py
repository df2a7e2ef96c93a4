"""Eye alignment: a similarity transform putting both eye centres on fixed points of an S x S crop.

Given the image-left and image-right eye centres (as MTCNN's `left_eye` / `right_eye`), the one
similarity transform (rotation + uniform scale + translation, 4 degrees of freedom) that maps
them exactly onto the template points is solved in closed form: with points as complex numbers,
`a = (t_r - t_l) / (e_r - e_l)` holds the scale and rotation and `b = t_l - a * e_l` the
translation, so `z -> a * z + b`. The crop is `cv2.warpAffine` with that 2x3 matrix (bilinear,
black outside the image). When the face is much larger than the crop (scale below 1/2, e.g. a
close-up in 1080p into 64 x 64), the face region is first reduced with `cv2.pyrDown` so the
bilinear warp does not alias; the returned matrix is always the plain image -> crop map.

Template: the eyes sit on a horizontal line at 40% of the crop height, at 35% and 65% of its
width (inter-ocular distance 0.3 S). That leaves room for brows and forehead above and mouth and
chin below, a loose face crop in the spirit of VGG-Face / FER2013, and keeps the same
proportions for every S (224 for VGG16, 64 for the mini-Xception, ...).
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

EYE_Y = 0.40  # Template eye height, fraction of S.
EYE_X = (0.35, 0.65)  # Template x of the image-left and image-right eye, fractions of S.


def eye_template(size: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """Template (x, y) of the image-left and image-right eye centres in a `size` x `size` crop."""
    size = float(size)
    return (EYE_X[0] * size, EYE_Y * size), (EYE_X[1] * size, EYE_Y * size)


@dataclasses.dataclass
class AlignedFace:
    """An aligned S x S RGB crop and the 2x3 matrix that maps image points to crop points."""

    crop: np.ndarray
    matrix: np.ndarray
    size: int


def similarity_matrix(src_left, src_right, dst_left, dst_right) -> np.ndarray:
    """2x3 similarity matrix mapping `src_left -> dst_left` and `src_right -> dst_right`.

    Raises ValueError when the two source points coincide (no scale or angle is defined).
    """
    s_l, s_r = complex(*src_left), complex(*src_right)
    d_l, d_r = complex(*dst_left), complex(*dst_right)
    if abs(s_r - s_l) < 1e-9:
        raise ValueError(f"eye centres coincide at {src_left}: cannot align")
    a = (d_r - d_l) / (s_r - s_l)
    b = d_l - a * s_l
    return np.array([[a.real, -a.imag, b.real],
                     [a.imag, a.real, b.imag]], dtype=np.float64)


def transform_points(matrix: np.ndarray, points) -> np.ndarray:
    """Applies a 2x3 affine matrix to points `[N, 2]` (or one point) -> `[N, 2]`."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return points @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]


def invert(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix (crop -> image)."""
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def align_face(rgb, left_eye, right_eye, size: int) -> AlignedFace:
    """Warps `rgb` so that `left_eye` / `right_eye` (image x, y) land on `eye_template(size)`.

    Args:
      rgb: H x W x 3 uint8 image.
      left_eye, right_eye: eye centres as MTCNN names them (image-left, image-right).
      size: side S of the square crop.

    Returns:
      AlignedFace with the S x S x 3 uint8 crop and the image -> crop matrix.
    """
    size = int(size)
    if size <= 0:
        raise ValueError(f"crop size must be positive, got {size}")
    rgb = np.asarray(rgb)
    t_left, t_right = eye_template(size)
    matrix = similarity_matrix(left_eye, right_eye, t_left, t_right)
    source, warp = _reduced_source(rgb, matrix, size)
    crop = cv2.warpAffine(source, warp, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return AlignedFace(crop=crop, matrix=matrix, size=size)


def _reduced_source(rgb: np.ndarray, matrix: np.ndarray, size: int):
    """(image, matrix) to warp from: the image itself, or a pyrDown-ed region for small scales."""
    scale = float(np.hypot(matrix[0, 0], matrix[1, 0]))
    if scale >= 0.5 or scale <= 0:
        return rgb, matrix
    levels = int(np.ceil(np.log2(0.5 / scale)))
    # The image region the crop sees, plus a margin for the Gaussian of pyrDown.
    corners = transform_points(invert(matrix), [[0, 0], [size, 0], [0, size], [size, size]])
    margin = 2 ** (levels + 2)
    height, width = rgb.shape[:2]
    x0 = int(np.clip(np.floor(corners[:, 0].min()) - margin, 0, width))
    y0 = int(np.clip(np.floor(corners[:, 1].min()) - margin, 0, height))
    x1 = int(np.clip(np.ceil(corners[:, 0].max()) + margin, 0, width))
    y1 = int(np.clip(np.ceil(corners[:, 1].max()) + margin, 0, height))
    if x1 - x0 < 2 ** levels or y1 - y0 < 2 ** levels:  # The crop sees (almost) no image.
        return rgb, matrix
    region = rgb[y0:y1, x0:x1]
    for _ in range(levels):  # pyrDown: reduced pixel q sits at region pixel 2 q.
        region = cv2.pyrDown(region)
    factor = 2.0 ** levels
    warp = np.empty_like(matrix)
    warp[:, :2] = matrix[:, :2] * factor
    warp[:, 2] = matrix[:, :2] @ np.array([x0, y0], dtype=np.float64) + matrix[:, 2]
    return region, warp
