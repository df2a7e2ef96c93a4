"""Mutation-testing tests of the twin-clip sampler (ast_net.data.clips), issue 15.

They pin what the survivors of `mutation/run.py --targets=clips` showed unchecked: the pair span
and the exact-fit boundary, the clip-check error message (one file, several files, no record),
the per-frame length check, the default `repeat`, `feature_scale`, dropping the last partial
batch, the 4-file interleave and reshuffling every epoch. Every expected value is worked out by
hand from the module docstring (span = (N - 1)·Δt + 1 + shift; clips start every s frames while
start <= T - span) with the videos of tests/data/test_clips.py (feature 0 = frame index + an
offset naming the video); none is recomputed with ast_net.data.clips.
"""

import numpy as np
import pytest

from ast_net import errors
from ast_net.configs import debug
from ast_net.data import clips


def _video(vid, num_frames, base=0.0, mask=None):
    idx = np.arange(num_frames, dtype=np.float32)
    v = {"id": vid, "features": np.stack([idx + base, -idx], -1),
         "labels": np.stack([idx / 1000, idx / 2000], -1)}
    if mask is not None:
        v["mask"] = mask
    return v


def _cfg(n=4, step=3, stride=5, shift=1, buffer=256, scale=1.0):
    c = debug.get_config().data
    c.clip_length, c.frame_step, c.clip_stride, c.twin_shift = n, step, stride, shift
    c.shuffle_buffer, c.feature_scale = buffer, scale
    return c


def _starts(ds, count):
    return [int(b["features_a"][0, 0, 0]) for b in ds.take(count).as_numpy_iterator()]


def test_pair_span_by_hand():
    assert clips.pair_span(4, 3, 1) == 11   # frames 0, 3, 6, 9 and their twins 1, ..., 10
    assert clips.pair_span(1, 5, 0) == 1
    assert clips.pair_span(10, 3, 2) == 30


def test_record_lengths_with_and_without_parsing(tmp_path, feature_videos):
    path = feature_videos(tmp_path / "train-0.tfrecord", [_video("a", 30), _video("b", 11)])
    assert clips.record_lengths([path]) == [30, 11]
    assert clips.record_lengths([path], 2) == [30, 11]


def test_per_frame_lists_of_different_length_are_a_user_error(tmp_path):
    import tensorflow as tf

    from ast_net.data import schema

    n = 6
    ex = schema.make_sequence_example(
        video_id="a", fps=25, timestamps=np.arange(n) / 25, face_present=np.ones(n, int),
        valence=np.zeros(n), arousal=np.zeros(n), label_mask=np.ones(n, int),
        features=np.zeros((n, 2)))
    del ex.feature_lists.feature_list[schema.TIMESTAMP].feature[-1]  # 5 timestamps, 6 frames
    path = str(tmp_path / "train-00000-of-00001.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        w.write(ex.SerializeToString())
    with pytest.raises(errors.UserError) as e:
        clips.record_lengths([path], 2)
    assert str(e.value) == (f"{path}: record 1 (video 'a'): per-frame key 'frame/timestamp' "
                            f"has 5 frames, 'video/num_frames' says 6")


def _message(where, longest):
    return (f"clip_length × frame_step = 4 × 3 (+ twin shift) needs 11 frames, longer than "
            f"every video in {where} (longest: {longest} frames); lower config.data.clip_length "
            f"or config.data.frame_step")


def test_clip_check_message_one_file(tmp_path, feature_videos):
    path = feature_videos(tmp_path / "train-0.tfrecord", [_video("a", 7), _video("b", 10)])
    with pytest.raises(errors.UserError) as e:
        clips.check_clips_fit([path], _cfg())
    assert str(e.value) == _message(path, 10)


def test_clip_check_message_several_files(tmp_path, feature_videos):
    p1 = feature_videos(tmp_path / "train-0.tfrecord", [_video("a", 7)])
    p2 = feature_videos(tmp_path / "train-1.tfrecord", [_video("b", 10)])
    with pytest.raises(errors.UserError) as e:
        clips.check_clips_fit([p1, p2], _cfg(), feature_dim=2)
    assert str(e.value) == _message(p1 + " ...", 10)


def test_clip_check_without_any_record(tmp_path):
    path = tmp_path / "train-0.tfrecord"
    path.write_bytes(b"")
    with pytest.raises(errors.UserError) as e:
        clips.check_clips_fit([str(path)], _cfg())
    assert str(e.value) == _message(str(path), 0)


def test_video_of_exactly_one_pair_span_gives_one_clip(tmp_path, feature_videos):
    path = feature_videos(tmp_path / "train-0.tfrecord", [_video("a", 11)])
    clips.check_clips_fit([path], _cfg())  # 11 frames = span: fits, no error
    ds = clips.clip_dataset([path], 2, _cfg(), batch_size=1, seed=0, repeat=False,
                            shuffle=False)
    got = list(ds.as_numpy_iterator())
    assert len(got) == 1
    np.testing.assert_array_equal(got[0]["features_a"][0, :, 0], [0, 3, 6, 9])
    np.testing.assert_array_equal(got[0]["features_b"][0, :, 0], [1, 4, 7, 10])


def test_repeat_is_the_default(tmp_path, feature_videos):
    path = feature_videos(tmp_path / "train-0.tfrecord", [_video("a", 30)])
    ds = clips.clip_dataset([path], 2, _cfg(), batch_size=1, seed=0, shuffle=False)
    assert _starts(ds, 9) == [0, 5, 10, 15, 0, 5, 10, 15, 0]  # 4 clips a pass


def test_feature_scale_multiplies_only_the_features(tmp_path, feature_videos):
    path = feature_videos(tmp_path / "train-0.tfrecord", [_video("a", 11)])
    ds = clips.clip_dataset([path], 2, _cfg(scale=2.0), batch_size=1, seed=0, repeat=False,
                            shuffle=False)
    (b,) = list(ds.as_numpy_iterator())
    np.testing.assert_array_equal(b["features_a"][0], [[0, 0], [6, -6], [12, -12], [18, -18]])
    np.testing.assert_array_equal(b["features_b"][0], [[2, -2], [8, -8], [14, -14], [20, -20]])
    np.testing.assert_allclose(b["labels_a"][0, :, 0], [0, 0.003, 0.006, 0.009], rtol=1e-6)
    np.testing.assert_allclose(b["labels_b"][0, :, 1], [0.0005, 0.002, 0.0035, 0.005],
                               rtol=1e-6)
    np.testing.assert_array_equal(b["mask_a"][0], [1, 1, 1, 1])


def test_last_partial_batch_is_dropped(tmp_path, feature_videos):
    path = feature_videos(tmp_path / "train-0.tfrecord", [_video("a", 30)])  # 4 clips
    ds = clips.clip_dataset([path], 2, _cfg(), batch_size=3, seed=0, repeat=False,
                            shuffle=False)
    assert ds.element_spec["features_a"].shape.as_list() == [3, 4, 2]
    got = list(ds.as_numpy_iterator())
    assert len(got) == 1
    np.testing.assert_array_equal(got[0]["features_a"][:, 0, 0], [0, 5, 10])


def test_files_are_read_four_at_a_time_round_robin(tmp_path, feature_videos):
    # 5 files of 2 one-clip videos each; feature 0 of video v of file f starts at 100 f + 10 v.
    paths = [feature_videos(tmp_path / f"train-{f}.tfrecord",
                            [_video(f"f{f}v{v}", 11, base=100 * f + 10 * v) for v in range(2)])
             for f in range(5)]
    ds = clips.clip_dataset(paths, 2, _cfg(), batch_size=1, seed=0, repeat=False,
                            shuffle=False)
    # Files 0-3 in turn, one record each; file 4 takes the place of file 0 when it ends.
    assert _starts(ds, 10) == [0, 100, 200, 300, 10, 110, 210, 310, 400, 410]


def _epochs(ds, per_epoch, count):
    s = _starts(ds, per_epoch * count)
    return [s[k * per_epoch:(k + 1) * per_epoch] for k in range(count)]


def test_files_are_reshuffled_every_epoch_with_the_seed(tmp_path, feature_videos):
    # One one-clip video per file and a clip buffer of 1: the order is the file order.
    paths = [feature_videos(tmp_path / f"train-{f}.tfrecord", [_video(f"f{f}", 11, base=100 * f)])
             for f in range(5)]

    def epochs(seed):
        ds = clips.clip_dataset(paths, 2, _cfg(buffer=1), batch_size=1, seed=seed)
        return _epochs(ds, 5, 6)

    first = epochs(7)
    assert all(sorted(e) == [0, 100, 200, 300, 400] for e in first)
    assert len({tuple(e) for e in first}) > 1       # a new file order in some epoch
    assert epochs(7) == first                         # the same seed, the same orders


def test_clips_are_reshuffled_every_epoch(tmp_path, feature_videos):
    # 30 frames, stride 1: starts 0..19 (19 = 30 - 11), 20 clips a pass.
    path = feature_videos(tmp_path / "train-0.tfrecord", [_video("a", 30)])
    ds = clips.clip_dataset([path], 2, _cfg(stride=1), batch_size=1, seed=3)
    got = _epochs(ds, 20, 3)
    assert all(sorted(e) == list(range(20)) for e in got)
    assert len({tuple(e) for e in got}) > 1
