"""Eye alignment's reduced-source path and edges, worked out by hand (issue 15).

`_reduced_source` (pyrDown before the warp when the crop scale is below 1/2) is checked on
matrices whose scale is a power of two, so the pyramid level L = ceil(log2(0.5 / scale)), the
margin 2^(L+2), the clipped image region, the reduced image's shape ((n + 1) // 2 per pyrDown)
and the adjusted warp can be written out exactly in the comments. A rotated case is checked
against corners computed here with the closed-form inverse of a similarity (not cv2).
"""

import math

import numpy as np
import pytest

from ast_net.faces import align


def _similarity(scale, angle_deg, tx, ty):
    c, s = scale * math.cos(math.radians(angle_deg)), scale * math.sin(math.radians(angle_deg))
    return np.array([[c, -s, tx], [s, c, ty]], np.float64)


RGB = np.zeros((400, 300, 3), np.uint8)  # 400 rows (y), 300 columns (x)


def test_reduced_region_near_the_left_edge_by_hand():
    # scale 0.125: L = ceil(log2(4)) = 2, margin 16. Crop 40 x 40; image x = 8 (u - 1) = 8u - 8
    # in [-8, 312], y = 8 (v + 2) in [16, 336]. x0 = max(-8 - 16, 0) = 0, x1 = min(312 + 16,
    # 300) = 300; y0 = 0 (16 - 16), y1 = 352. Region 352 x 300 -> 176 x 150 -> 88 x 75.
    # Warp: 2x2 part 0.125 * 4 = 0.5; translation M (x0, y0) + t = (1, -2).
    m = _similarity(0.125, 0, 1.0, -2.0)
    source, warp = align._reduced_source(RGB, m, 40)
    assert source.shape == (88, 75, 3)
    np.testing.assert_allclose(warp, [[0.5, 0, 1.0], [0, 0.5, -2.0]], atol=1e-12)
    # x = 8u + 40 in [40, 360], y = 8v + 80 in [80, 400]: x0 = 24, y0 = 64, x1 = 300, y1 = 400;
    # region 336 x 276 -> 168 x 138 -> 84 x 69; translation 0.125 (24, 64) + (-5, -10) = (-2, -2).
    m = _similarity(0.125, 0, -5.0, -10.0)
    source, warp = align._reduced_source(RGB, m, 40)
    assert source.shape == (84, 69, 3)
    np.testing.assert_allclose(warp, [[0.5, 0, -2.0], [0, 0.5, -2.0]], atol=1e-12)


def test_reduced_region_of_a_rotated_crop():
    size = 48
    big = np.zeros((1000, 1000, 3), np.uint8)
    m = _similarity(0.1, 30.0, 0.0, 0.0)
    m[:, 2] = size / 2 - m[:, :2] @ [480.0, 520.0]  # crop centre <- image (480, 520)
    levels = math.ceil(math.log2(0.5 / 0.1))  # 3
    a, b = m[0, 0], m[1, 0]
    inv = np.array([[a, b], [-b, a]]) / (a * a + b * b)  # inverse rotation-scale
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], float)
    pts = (corners - m[:, 2]) @ inv.T
    margin = 2 ** (levels + 2)
    x0, y0 = (int(np.floor(v)) - margin for v in pts.min(0))
    x1, y1 = (int(np.ceil(v)) + margin for v in pts.max(0))
    assert min(x0, y0) > 0 and max(x1, y1) < 1000  # no clipping: every corner counts
    h, w = y1 - y0, x1 - x0
    for _ in range(levels):
        h, w = (h + 1) // 2, (w + 1) // 2
    source, warp = align._reduced_source(big, m, size)
    assert source.shape == (h, w, 3)
    np.testing.assert_allclose(warp[:, :2], m[:, :2] * 8, atol=1e-12)
    np.testing.assert_allclose(warp[:, 2], m[:, :2] @ [x0, y0] + m[:, 2], atol=1e-9)


@pytest.mark.parametrize("axis", [0, 1])
def test_almost_no_image_in_view_keeps_the_plain_warp(axis):
    # scale 1/16: L = 3, margin 32, 2^L = 8. Crop 16: image coordinate 16 (u - t), u in [0, 16].
    # t = 17.5625: max = 16 * (16 - 17.5625) = -25 -> end -25 + 32 = 7 < 8: no reduction.
    # t = 17.5:    max = -24 -> end 8: reduced, that axis 8 -> 4 -> 2 -> 1 pixel.
    # Other axis: t = 0 -> [0, 256] -> [0, 288] -> 288 -> 144 -> 72 -> 36.
    for t, reduced in ((17.5625, False), (17.5, True)):
        shift = (t, 0.0) if axis == 0 else (0.0, t)
        m = _similarity(0.0625, 0, *shift)
        source, warp = align._reduced_source(RGB, m, 16)
        if not reduced:
            assert source is RGB
            np.testing.assert_array_equal(warp, m)
        else:
            assert source.shape == ((36, 1, 3) if axis == 0 else (1, 36, 3))
            # Warp: 2x2 part (1/16) * 2^3 = 0.5; translation M (x0, y0) + t = M (0, 0) + t.
            expected = np.array([[0.5, 0, 0], [0, 0.5, 0]])
            expected[axis, 2] = t
            np.testing.assert_allclose(warp, expected, atol=1e-12)
    # Entirely outside the image on one axis: the plain warp.
    source, warp = align._reduced_source(RGB, _similarity(0.0625, 0, 0.0, 100.0), 16)
    assert source is RGB


def test_scale_half_and_above_is_warped_directly():
    for scale in (0.5, 0.9):
        m = _similarity(scale, 0, 0.0, 0.0)
        source, warp = align._reduced_source(RGB, m, 32)
        assert source is RGB and warp is m


def test_crop_size_and_black_border():
    with pytest.raises(ValueError, match="^crop size must be positive, got 0$"):
        align.align_face(RGB, (10, 10), (20, 10), 0)
    one = align.align_face(RGB, (10, 10), (20, 10), 1)
    assert one.crop.shape == (1, 1, 3) and one.size == 1
    # A white image whose left part falls outside the crop: black border, gray everywhere.
    white = np.full((100, 100, 3), 255, np.uint8)
    face = align.align_face(white, (5.0, 50.0), (25.0, 50.0), 64)
    crop = face.crop.astype(int)
    assert (crop == 0).all(-1).sum() > 100 and (crop == 255).all(-1).sum() > 100
    assert (crop[..., 0] == crop[..., 1]).all() and (crop[..., 1] == crop[..., 2]).all()


def test_eyes_half_a_pixel_apart_still_align():
    m = align.similarity_matrix((10.0, 10.0), (10.5, 10.0), (0.0, 0.0), (1.0, 0.0))
    np.testing.assert_allclose(m, [[2.0, 0, -20.0], [0, 2.0, -20.0]], atol=1e-12)


def test_invert_accepts_an_integer_matrix():
    # x' = 2x + 4, y' = 4y - 8 inverts to x = x'/2 - 2, y = y'/4 + 2 (cv2 refuses int64 input).
    got = align.invert(np.array([[2, 0, 4], [0, 4, -8]]))
    np.testing.assert_allclose(got, [[0.5, 0, -2], [0, 0.25, 2]])
    assert got.dtype == np.float64


def test_eyes_exactly_1e9_apart_are_not_coincident():
    # |s_r - s_l| = 1e-9 is not below the 1e-9 threshold: a = 1 / 1e-9 = 1e9, b = 0.
    m = align.similarity_matrix((0.0, 0.0), (1e-9, 0.0), (0.0, 0.0), (1.0, 0.0))
    np.testing.assert_allclose(m, [[1e9, 0, 0], [0, 1e9, 0]], rtol=1e-12)


def test_transform_points_of_integers_is_float64():
    # x' = 2x + 4, y' = 4y - 8 on (1, 3) -> (6, 4); the result is float64 even for int input.
    got = align.transform_points(np.array([[2, 0, 4], [0, 4, -8]]), [1, 3])
    np.testing.assert_array_equal(got, [[6.0, 4.0]])
    assert got.dtype == np.float64


def test_a_zero_matrix_is_warped_directly():
    m = np.zeros((2, 3))
    source, warp = align._reduced_source(RGB, m, 16)
    assert source is RGB and warp is m


@pytest.mark.parametrize("angle", [60.0, 88.0, 150.0, 240.0, 330.0])
def test_reduced_region_of_rotated_crops_at_one_level(angle):
    # scale 0.4: L = ceil(log2(1.25)) = 1, margin 8, one pyrDown: (n + 1) // 2. The crop centre
    # sits on image (500.3, 499.6); corners from the closed-form inverse of the similarity.
    size, big = 40, np.zeros((1000, 1000, 3), np.uint8)
    m = _similarity(0.4, angle, 0.0, 0.0)
    m[:, 2] = size / 2 - m[:, :2] @ [500.3, 499.6]
    a, b = m[0, 0], m[1, 0]
    inv = np.array([[a, b], [-b, a]]) / (a * a + b * b)
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], float)
    pts = (corners - m[:, 2]) @ inv.T
    x0, y0 = (int(np.floor(v)) - 8 for v in pts.min(0))
    x1, y1 = (int(np.ceil(v)) + 8 for v in pts.max(0))
    source, warp = align._reduced_source(big, m, size)
    assert source.shape == ((y1 - y0 + 1) // 2, (x1 - x0 + 1) // 2, 3)
    np.testing.assert_allclose(warp[:, :2], m[:, :2] * 2, atol=1e-12)
    np.testing.assert_allclose(warp[:, 2], m[:, :2] @ [x0, y0] + m[:, 2], atol=1e-9)


@pytest.mark.parametrize("axis", [0, 1])
def test_almost_no_image_in_view_past_the_far_edge(axis):
    # scale 1/16: L = 3, margin 32, 2^L = 8; image coordinate 16 (u - t), u in [0, 16], image
    # 300 wide (x) and 400 high (y). Start -16 t - 32 = edge - 7 (7 < 8 pixels seen): plain;
    # edge - 8: reduced, that axis 8 -> 4 -> 2 -> 1 pixel, the other axis 288 -> 36 as above.
    edge = 300 if axis == 0 else 400
    for seen, reduced in ((7, False), (8, True)):
        t = -(edge - seen + 32) / 16.0
        shift = (t, 0.0) if axis == 0 else (0.0, t)
        m = _similarity(0.0625, 0, *shift)
        source, warp = align._reduced_source(RGB, m, 16)
        if not reduced:
            assert source is RGB
        else:
            assert source.shape == ((36, 1, 3) if axis == 0 else (1, 36, 3))
            # translation M (x0, y0) + t with the start at edge - 8: (edge - 8) / 16 + t = -2.
            expected = np.array([[0.5, 0, 0], [0, 0.5, 0]])
            expected[axis, 2] = -2.0
            np.testing.assert_allclose(warp, expected, atol=1e-12)
