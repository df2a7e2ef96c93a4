"""Label edge cases that a plausible bug in the readers or the resampler would get wrong.

Aff-Wild2 lines with only ONE of the two values set to -5 (the frame is unlabelled: both of its
values are masked), the [-1, 1] range's ends, and linear resampling of a time-based track whose
expected values are worked out by hand.
"""

import numpy as np
import pytest

from ast_net import errors
from ast_net.data import labels, labels_readers


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_affwild2_one_value_minus_five_masks_its_frame(tmp_path):
    path = _write(tmp_path, "v.txt", "valence,arousal\n0.5,0.25\n0.4,-5\n-5,0.3\n-1,1\n")
    track = labels_readers.read_affwild2(path)
    np.testing.assert_array_equal(track.valid, [True, False, False, True])
    np.testing.assert_array_equal(track.frames, [0, 1, 2, 3])
    v, a, mask = labels.resample(track, np.arange(4) / 30.0)
    np.testing.assert_array_equal(mask, [1, 0, 0, 1])
    # Masked frames carry 0 in both dims, not the one value that was set.
    np.testing.assert_allclose(v, [0.5, 0.0, 0.0, -1.0], atol=1e-7)
    np.testing.assert_allclose(a, [0.25, 0.0, 0.0, 1.0], atol=1e-7)


@pytest.mark.parametrize("bad", ["1.001,0", "0,-1.001", "-4.99,0", "-5.01,0"])
def test_affwild2_values_just_outside_the_range_are_errors(tmp_path, bad):
    path = _write(tmp_path, "b.txt", f"valence,arousal\n0,0\n{bad}\n")
    with pytest.raises(errors.UserError, match=r"b\.txt, line 3: expected (valence|arousal)"):
        labels_readers.read_affwild2(path)


def test_affwild2_frames_picked_by_index(tmp_path):
    track = labels_readers.read_affwild2(
        _write(tmp_path, "c.txt", "valence,arousal\n0.1,0.2\n0.3,0.4\n0.5,0.6\n"))
    # Frames 2 and 0 of the video, in that order, then a frame past the labels.
    v, a, mask = labels.resample(track, [0.0, 0.0, 0.0], frame_indices=[2, 0, 5])
    np.testing.assert_array_equal(mask, [1, 1, 0])
    np.testing.assert_allclose(v, [0.5, 0.1, 0.0], atol=1e-7)
    np.testing.assert_allclose(a, [0.6, 0.2, 0.0], atol=1e-7)


def test_linear_resampling_at_25fps_of_a_40ms_track_by_hand():
    # Samples at 0, 0.04, 0.08, 0.12 s; frames every 0.03 s: 0, .03, .06, .09, .12, .15.
    track = labels.make_track([0.0, 0.4, 0.0, -0.8], [1.0, 0.0, 0.5, 0.5], "t",
                              times_s=np.array([0.0, 0.04, 0.08, 0.12]))
    v, a, mask = labels.resample(track, np.array([0.0, 0.03, 0.06, 0.09, 0.12, 0.15]))
    np.testing.assert_array_equal(mask, [1, 1, 1, 1, 1, 0])
    # 0.03: 3/4 of the way 0 -> 0.4 = 0.3; 0.06: half way 0.4 -> 0 = 0.2;
    # 0.09: 1/4 of the way 0 -> -0.8 = -0.2; 0.12: -0.8 exactly.
    np.testing.assert_allclose(v, [0.0, 0.3, 0.2, -0.2, -0.8, 0.0], atol=1e-6)
    np.testing.assert_allclose(a, [1.0, 0.25, 0.25, 0.5, 0.5, 0.0], atol=1e-6)
    v, a, mask = labels.resample(track, np.array([0.0, 0.03, 0.05, 0.09]), method="nearest")
    np.testing.assert_allclose(v, [0.0, 0.4, 0.4, 0.0], atol=1e-6)
