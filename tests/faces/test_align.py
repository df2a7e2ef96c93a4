"""Tests of eye alignment: template, closed-form similarity vs OpenCV and by hand, the warp."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ast_net.faces import align


def test_eye_template_at_224_by_hand():
    # 0.35 * 224 = 78.4, 0.65 * 224 = 145.6, 0.40 * 224 = 89.6.
    (lx, ly), (rx, ry) = align.eye_template(224)
    assert (lx, ly) == pytest.approx((78.4, 89.6))
    assert (rx, ry) == pytest.approx((145.6, 89.6))
    assert align.eye_template(64)[1] == pytest.approx((41.6, 25.6))


def test_similarity_by_hand_level_eyes():
    # Eyes 100 px apart, level -> scale 67.2 / 100, no rotation, t = template - 0.672 * eye.
    m = align.similarity_matrix((100, 50), (200, 50), *align.eye_template(224))
    np.testing.assert_allclose(m, [[0.672, 0.0, 78.4 - 67.2], [0.0, 0.672, 89.6 - 33.6]],
                               atol=1e-12)


def test_similarity_by_hand_vertical_eyes():
    # Right eye straight below the left one: a = 67.2 / (100 i) = -0.672 i, i.e. a -90 degree
    # turn; x' = 0.672 y + tx, y' = -0.672 x + ty, with (100, 100) -> (78.4, 89.6).
    m = align.similarity_matrix((100, 100), (100, 200), *align.eye_template(224))
    np.testing.assert_allclose(
        m, [[0.0, 0.672, 78.4 - 67.2], [-0.672, 0.0, 89.6 + 67.2]], atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_similarity_matches_opencv_estimate_affine_partial(seed):
    rng = np.random.default_rng(seed)
    src = rng.uniform(50, 400, size=(2, 2)).astype(np.float32)
    dst = np.array(align.eye_template(160), np.float32)
    expected, _ = cv2.estimateAffinePartial2D(src, dst, method=cv2.LMEDS)
    got = align.similarity_matrix(src[0], src[1], dst[0], dst[1])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)


def test_coincident_eyes_raise():
    with pytest.raises(ValueError, match="coincide"):
        align.similarity_matrix((5, 5), (5, 5), (1, 1), (2, 2))


def _image_with_dots(h, w, left, right, radius):
    img = np.zeros((h, w, 3), np.uint8)
    cv2.circle(img, tuple(int(round(v)) for v in left), radius, (255, 0, 0), -1, cv2.LINE_AA)
    cv2.circle(img, tuple(int(round(v)) for v in right), radius, (0, 255, 0), -1, cv2.LINE_AA)
    return img


def _centroid(channel: np.ndarray) -> tuple[float, float]:
    weights = channel.astype(np.float64)
    ys, xs = np.mgrid[: channel.shape[0], : channel.shape[1]]
    return float((xs * weights).sum() / weights.sum()), float((ys * weights).sum() / weights.sum())


@pytest.mark.parametrize("left,right,size", [
    ((200, 150), (300, 170), 224),  # Tilted face, scale ~0.66.
    ((420, 300), (380, 420), 224),  # Strong rotation (eye line pointing down-left).
    ((300, 400), (1100, 430), 64),  # Huge face into a small crop: the pyrDown path.
])
def test_warp_puts_the_eye_dots_on_the_template(left, right, size):
    radius = max(3, int(0.06 * np.hypot(right[0] - left[0], right[1] - left[1])))
    img = _image_with_dots(900, 1400, left, right, radius)
    aligned = align.align_face(img, left, right, size)
    assert aligned.crop.shape == (size, size, 3) and aligned.crop.dtype == np.uint8
    assert aligned.size == size
    t_left, t_right = align.eye_template(size)
    # The red dot (image-left eye) and green dot (image-right eye) land on the template.
    assert _centroid(aligned.crop[..., 0]) == pytest.approx(t_left, abs=0.5)
    assert _centroid(aligned.crop[..., 1]) == pytest.approx(t_right, abs=0.5)
    # And the matrix maps the eye points there exactly.
    mapped = align.transform_points(aligned.matrix, [left, right])
    np.testing.assert_allclose(mapped, [t_left, t_right], atol=1e-9)


def test_matrix_is_a_similarity_and_invert_round_trips():
    m = align.similarity_matrix((10, 20), (60, 45), *align.eye_template(100))
    assert m[0, 0] == pytest.approx(m[1, 1]) and m[0, 1] == pytest.approx(-m[1, 0])
    back = align.transform_points(align.invert(m), align.transform_points(m, [[3.0, 4.0]]))
    np.testing.assert_allclose(back, [[3.0, 4.0]], atol=1e-9)


def test_pyrdown_path_matches_a_direct_warp_on_a_smooth_image():
    # On a smooth image, aliasing does not matter: the reduced path must give the same pixels.
    ys, xs = np.mgrid[0:1200, 0:1600]
    smooth = np.stack([(xs / 1600 * 255), (ys / 1200 * 255), ((xs + ys) / 2800 * 255)], -1)
    smooth = smooth.astype(np.uint8)
    # Eyes 192 px apart into 64 px: scale 19.2 / 192 = 0.1 (two pyrDown levels); the crop sees
    # a 640 px square around the eyes, inside the image, so no black border enters either path.
    left, right = (704.0, 500.0), (896.0, 500.0)
    aligned = align.align_face(smooth, left, right, 64)
    corners = align.transform_points(align.invert(aligned.matrix), [[0, 0], [64, 64]])
    assert corners.min() > 0 and corners[:, 0].max() < 1600 and corners[:, 1].max() < 1200
    direct = cv2.warpAffine(smooth, aligned.matrix, (64, 64), flags=cv2.INTER_LINEAR)
    assert np.abs(aligned.crop.astype(int) - direct.astype(int)).max() <= 3
