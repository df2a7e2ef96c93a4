"""The zero-shot head's smoothing clock: seconds from the frame timestamps, not frame indices.

Frames 40 ms apart (25 fps) with frame indices 0, 1, 2: the EMA weight of each step is
1 - exp(-0.04 / tau), worked out here with `math.exp`. Using the frame index as the time
(a 1 s step) would give a weight of 1 - exp(-1 / tau) instead, far from it.
"""

import math

import numpy as np

from ast_net import inference_heads, va_mapping


def test_zero_shot_smoothing_uses_timestamps_40ms_apart():
    tau = 0.5
    head = inference_heads.ZeroShotHead(smoothing_s=tau)
    happy, sad = np.eye(7)[3], np.eye(7)[4]
    h, s = va_mapping.COORDINATES[3], va_mapping.COORDINATES[4]
    out = head.step_batch([(0, 0.00, [7], happy[None]),
                           (1, 0.04, [7], sad[None]),
                           (2, 0.08, [7], sad[None])])
    a = 1.0 - math.exp(-0.04 / tau)  # about 0.0769
    s1 = h + a * (s - h)
    s2 = s1 + a * (s - s1)
    np.testing.assert_allclose(out[0], [h], atol=1e-6)
    np.testing.assert_allclose(out[1], [s1], atol=1e-6)
    np.testing.assert_allclose(out[2], [s2], atol=1e-6)
    assert [o.shape for o in out] == [(1, 2)] * 3


def test_zero_shot_frame_without_faces_and_two_faces():
    head = inference_heads.ZeroShotHead(smoothing_s=0.0)  # tau 0: no smoothing
    probs = np.array([[0.5, 0, 0, 0.5, 0, 0, 0], [0, 0, 0, 0, 0, 0, 1.0]])
    out = head.step_batch([(0, 0.0, [], np.zeros((0, 7))), (1, 0.04, [3, 4], probs)])
    assert out[0].shape == (0, 2)
    c = va_mapping.COORDINATES
    np.testing.assert_allclose(out[1], [(c[0] + c[3]) / 2, [0.0, 0.0]], atol=1e-6)
    assert sorted(head.tracks) == [3, 4]
    head.reset()
    assert head.tracks == {}


def test_ema_repeated_time_and_tau_zero():
    ema = va_mapping.EmaSmoother(0.2)
    np.testing.assert_allclose(ema.update(1.0, [1.0, -1.0]), [1.0, -1.0])
    np.testing.assert_allclose(ema.update(1.0, [0.0, 0.0]), [1.0, -1.0])  # dt 0: alpha 0
    w = 1.0 - math.exp(-0.1 / 0.2)
    np.testing.assert_allclose(ema.update(1.1, [0.0, 1.0]), [1.0 - w, -1.0 + 2.0 * w])


def test_class_coordinates_by_hand():
    # Happy at 7.8 deg: (cos, sin) = (0.990748, 0.135716); Sad at 207.5 deg: (-0.887011,
    # -0.461749); Neutral: the centre.
    got = va_mapping.class_coordinates(("Neutral", "Happy", "Sad"))
    np.testing.assert_allclose(got, [[0, 0], [0.990748, 0.135716], [-0.887011, -0.461749]],
                               atol=1e-6)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(va_mapping.class_coordinates(), va_mapping.COORDINATES)


def test_renormalisation_zero_rows_and_message():
    c = va_mapping.COORDINATES
    np.testing.assert_allclose(va_mapping.probabilities_to_va(0.5 * np.eye(7)[3]), c[3])
    np.testing.assert_array_equal(va_mapping.probabilities_to_va(np.zeros(7)), [0.0, 0.0])
    try:
        va_mapping.probabilities_to_va(np.ones(3))
    except ValueError as e:
        assert str(e) == "expected 7 class probabilities, got shape (3,)"
    else:
        raise AssertionError("no error for 3 probabilities")


def test_ema_messages_and_dtypes():
    for make, message in ((lambda: va_mapping.EmaSmoother(-1.0),
                           "smoothing time constant must be >= 0 s, got -1.0"),
                          (lambda: _backwards(), "time went backwards: 1.0 after 2.0")):
        try:
            make()
        except ValueError as e:
            assert str(e) == message
        else:
            raise AssertionError(message)
    ema = va_mapping.EmaSmoother(0.5)
    assert ema.update(0.0, np.float32([0.1, 0.2])).dtype == np.float64
    head = inference_heads.ZeroShotHead()
    assert head.smoothing_s == 0.5
    out = head.step_batch([(0, 0.0, [1], np.eye(7)[3][None])])
    assert out[0].dtype == np.float32


def _backwards():
    ema = va_mapping.EmaSmoother(0.5)
    ema.update(2.0, 0.0)
    ema.update(1.0, 0.0)
