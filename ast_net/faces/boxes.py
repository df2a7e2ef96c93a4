"""Box arithmetic shared by the MTCNN detector and the tracker: IoU, NMS, squaring, scaling.

Boxes here are float arrays of corners `[x1, y1, x2, y2]` (one row per box) unless a function
says otherwise; the public `Face.box` is `(x, y, w, h)` and `xywh_to_corners` /
`corners_to_xywh` convert. All functions are plain numpy, cheap enough to run per frame.
"""

from __future__ import annotations

import numpy as np


def xywh_to_corners(box) -> np.ndarray:
    """(x, y, w, h) -> [x1, y1, x2, y2] as float64."""
    x, y, w, h = (float(v) for v in box)
    return np.array([x, y, x + w, y + h], dtype=np.float64)


def corners_to_xywh(corners) -> tuple[float, float, float, float]:
    """[x1, y1, x2, y2] -> (x, y, w, h) as Python floats."""
    x1, y1, x2, y2 = (float(v) for v in corners[:4])
    return (x1, y1, x2 - x1, y2 - y1)


def area(corners: np.ndarray) -> np.ndarray:
    """Areas of boxes `[..., 4]` (0 for degenerate boxes)."""
    corners = np.asarray(corners, dtype=np.float64)
    w = np.maximum(corners[..., 2] - corners[..., 0], 0.0)
    h = np.maximum(corners[..., 3] - corners[..., 1], 0.0)
    return w * h


def iou_matrix(a: np.ndarray, b: np.ndarray, method: str = "union") -> np.ndarray:
    """Pairwise overlap of boxes `a [N, 4]` and `b [M, 4]` -> `[N, M]`.

    `method="union"` is intersection over union; `"min"` is intersection over the smaller area
    (MTCNN's last NMS uses it so that a small box inside a big one is suppressed).
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.maximum(ix2 - ix1, 0.0) * np.maximum(iy2 - iy1, 0.0)
    area_a, area_b = area(a)[:, None], area(b)[None, :]
    if method == "union":
        denom = area_a + area_b - inter
    elif method == "min":
        denom = np.minimum(area_a, area_b)
    else:
        raise ValueError(f"unknown overlap method {method!r}; expected 'union' or 'min'")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(denom > 0, inter / denom, 0.0)
    return out


def nms(corners: np.ndarray, scores: np.ndarray, threshold: float,
        method: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, best score first."""
    corners = np.asarray(corners, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        if order.size == 1:
            break
        overlap = iou_matrix(corners[i:i + 1], corners[order[1:]], method)[0]
        order = order[1:][overlap <= threshold]
    return np.asarray(keep, dtype=np.int64)


def to_square(corners: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Squares boxes around their centres, side = max(w, h) * `scale` (MTCNN's `rerec`)."""
    corners = np.asarray(corners, dtype=np.float64).reshape(-1, 4)
    w = corners[:, 2] - corners[:, 0]
    h = corners[:, 3] - corners[:, 1]
    side = np.maximum(w, h) * scale
    cx = corners[:, 0] + 0.5 * w
    cy = corners[:, 1] + 0.5 * h
    return np.stack([cx - 0.5 * side, cy - 0.5 * side, cx + 0.5 * side, cy + 0.5 * side], axis=1)


def apply_regression(corners: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """MTCNN box regression: each corner moves by its offset times the box's (w + 1, h + 1)."""
    corners = np.asarray(corners, dtype=np.float64).reshape(-1, 4)
    w = corners[:, 2] - corners[:, 0] + 1.0
    h = corners[:, 3] - corners[:, 1] + 1.0
    return corners + np.asarray(offsets, dtype=np.float64) * np.stack([w, h, w, h], axis=1)
