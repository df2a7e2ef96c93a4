"""Zero-shot emotion -> valence/arousal mapping and its causal EMA, against hand-worked numbers.

The circumplex coordinates below are cos/sin of Russell's (1980) angles worked out by hand
(7.8 deg: cos 0.99074784, sin 0.13571557; 207.5 deg: cos -0.88701083, sin -0.46174861).
"""

import numpy as np
import pytest

from ast_net import va_mapping
from ast_net.models import backbones

HAPPY = (0.99074784, 0.13571557)
SAD = (-0.88701083, -0.46174861)


def one_hot(name):
    p = np.zeros(7)
    p[va_mapping.CLASSES.index(name)] = 1.0
    return p


def test_classes_follow_the_backbone_label_order():
    assert va_mapping.CLASSES == backbones.EMOTIONS


def test_one_hot_happy_gives_exactly_happys_coordinates():
    np.testing.assert_allclose(va_mapping.probabilities_to_va(one_hot("Happy")), HAPPY,
                               atol=1e-8)


def test_other_classes_by_hand():
    cases = {"Angry": (-0.15815807, 0.98741381), "Fear": (-0.44775909, 0.89415424),
             "Surprise": (0.34529820, 0.93849302), "Disgust": (-1.0, 0.0), "Sad": SAD,
             "Neutral": (0.0, 0.0)}
    for name, expected in cases.items():
        np.testing.assert_allclose(va_mapping.probabilities_to_va(one_hot(name)), expected,
                                   atol=1e-8, err_msg=name)


def test_half_happy_half_sad_is_the_midpoint():
    p = 0.5 * one_hot("Happy") + 0.5 * one_hot("Sad")
    np.testing.assert_allclose(va_mapping.probabilities_to_va(p), (0.05186851, -0.16301652),
                               atol=1e-8)


def test_batch_and_renormalisation():
    probs = np.stack([2.0 * one_hot("Happy"), one_hot("Neutral") + one_hot("Happy")])
    np.testing.assert_allclose(va_mapping.probabilities_to_va(probs),
                               [HAPPY, (HAPPY[0] / 2, HAPPY[1] / 2)], atol=1e-8)
    with pytest.raises(ValueError):
        va_mapping.probabilities_to_va(np.ones(6))


def test_ema_on_a_step_by_hand():
    # tau = 1 s, frames 1 s apart: alpha = 1 - e^-1 = 0.63212056; after the step from 0 to 1
    # the state is 1 - e^-1, then 1 - e^-2 = 0.86466472.
    ema = va_mapping.EmaSmoother(1.0)
    assert ema.update(0.0, 0.0) == 0.0
    assert ema.update(1.0, 1.0) == pytest.approx(0.63212056, abs=1e-8)
    assert ema.update(2.0, 1.0) == pytest.approx(0.86466472, abs=1e-8)
    # Half-second step: alpha = 1 - e^-0.5 = 0.39346934 of the remaining gap (1 - 0.86466472).
    assert ema.update(2.5, 1.0) == pytest.approx(0.86466472 + 0.39346934 * 0.13533528,
                                                 abs=1e-8)


def test_ema_is_per_dimension_and_zero_tau_is_identity():
    ema = va_mapping.EmaSmoother(1.0)
    ema.update(0.0, [0.0, 1.0])
    np.testing.assert_allclose(ema.update(1.0, [1.0, 0.0]), [0.63212056, 0.36787944], atol=1e-8)
    raw = va_mapping.EmaSmoother(0.0)
    raw.update(0.0, [0.3, 0.1])
    np.testing.assert_allclose(raw.update(0.04, [-0.5, 0.9]), [-0.5, 0.9])


def test_ema_rejects_time_going_backwards_and_negative_tau():
    ema = va_mapping.EmaSmoother(0.5)
    ema.update(1.0, 0.0)
    with pytest.raises(ValueError):
        ema.update(0.5, 1.0)
    with pytest.raises(ValueError):
        va_mapping.EmaSmoother(-1.0)
