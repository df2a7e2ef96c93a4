"""Tests of the twin-clip sampler (ast_net.data.clips) on real TFRecords."""

import numpy as np
import pytest

from ast_net import errors
from ast_net.configs import debug
from ast_net.data import clips, records


def _index_video(vid, num_frames, mask=None):
    # Feature 0 = frame index, so every clip tells which frames it took.
    idx = np.arange(num_frames, dtype=np.float32)
    feats = np.stack([idx, -idx], -1)
    labels = np.stack([idx / 1000, idx / 2000], -1)
    v = {"id": vid, "features": feats, "labels": labels}
    if mask is not None:
        v["mask"] = mask
    return v


def _data_config(n=4, step=3, stride=5, shift=1):
    c = debug.get_config().data
    c.clip_length, c.frame_step, c.clip_stride, c.twin_shift = n, step, stride, shift
    return c


def test_clip_indices_and_count(tmp_path, feature_videos):
    path = feature_videos(tmp_path / "train-0.tfrecord", [_index_video("a", 30)])
    cfg = _data_config()
    ds = clips.clip_dataset([path], 2, cfg, batch_size=1, seed=0, repeat=False, shuffle=False)
    got = [b for b in ds.as_numpy_iterator()]
    # Pair span = (4 - 1) * 3 + 1 + 1 = 11 frames; starts 0, 5, ..., while start <= 30 - 11 = 19:
    # 0, 5, 10, 15 -> 4 clips.
    assert len(got) == 4
    for k, b in enumerate(got):
        start = 5 * k
        np.testing.assert_array_equal(b["features_a"][0, :, 0], [start, start + 3, start + 6,
                                                                  start + 9])
        np.testing.assert_array_equal(b["features_b"][0, :, 0], [start + 1, start + 4, start + 7,
                                                                  start + 10])
        np.testing.assert_allclose(b["labels_b"][0, :, 0], (b["features_b"][0, :, 0]) / 1000,
                                   rtol=1e-6)


def test_seeded_shuffle_is_deterministic(tmp_path, feature_videos):
    vids = [_index_video(f"v{i}", 60 + i) for i in range(3)]
    path = feature_videos(tmp_path / "train-0.tfrecord", vids)
    cfg = _data_config(stride=2)

    def first_batches(seed):
        ds = clips.clip_dataset([path], 2, cfg, batch_size=4, seed=seed)
        return np.stack([b["features_a"][:, 0, 0] for b in ds.take(5).as_numpy_iterator()])

    np.testing.assert_array_equal(first_batches(3), first_batches(3))
    assert not np.array_equal(first_batches(3), first_batches(4))


def test_fully_masked_clips_dropped(tmp_path, feature_videos):
    mask = np.ones(30, int)
    mask[:12] = 0  # the first clip (frames 0..9) has no valid frame
    path = feature_videos(tmp_path / "train-0.tfrecord", [_index_video("a", 30, mask)])
    ds = clips.clip_dataset([path], 2, _data_config(), batch_size=1, seed=0, repeat=False,
                            shuffle=False)
    starts = [int(b["features_a"][0, 0, 0]) for b in ds.as_numpy_iterator()]
    assert starts == [5, 10, 15]  # start 5 sees frames 5, 8, 11, 14: 14 is valid


def test_clip_longer_than_every_video_is_a_user_error(tmp_path, feature_videos):
    path = feature_videos(tmp_path / "train-0.tfrecord", [_index_video("a", 10)])
    with pytest.raises(errors.UserError, match="longer than every video"):
        clips.check_clips_fit([path], _data_config())


def test_missing_dir_and_empty_dir(tmp_path):
    with pytest.raises(errors.UserError, match="directory not found"):
        records.list_files(str(tmp_path / "nope"), "train")
    with pytest.raises(errors.UserError, match="no train-"):
        records.list_files(str(tmp_path), "train")
    (tmp_path / "train-00000-of-00001.tfrecord").write_bytes(b"")
    files = records.list_files(str(tmp_path), "train")
    with pytest.raises(errors.UserError, match="empty TFRecord"):
        records.validate_files(files)


def test_record_missing_key(tmp_path):
    import tensorflow as tf

    from ast_net.data import schema

    ex = schema.make_sequence_example(
        video_id="a", fps=25, timestamps=[0.0, 0.04], face_present=[1, 1], valence=[0, 0],
        arousal=[0, 0], label_mask=[1, 1], features=np.zeros((2, 3)))
    del ex.feature_lists.feature_list[schema.AROUSAL]
    path = tmp_path / "train-00000-of-00001.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as w:
        w.write(ex.SerializeToString())
    with pytest.raises(errors.UserError, match="frame/arousal"):
        records.validate_files([str(path)])


def _two_videos_second_broken(path, key, num_frames=(40, 30), dim=2):
    """Writes records 'a' (fine) and 'b' (without `key`) to one TFRecord file."""
    import tensorflow as tf

    from ast_net.data import schema

    examples = []
    for vid, n in zip(("a", "b"), num_frames):
        v = _index_video(vid, n)
        examples.append(schema.make_sequence_example(
            video_id=vid, fps=25, timestamps=np.arange(n) / 25, face_present=np.ones(n, int),
            valence=v["labels"][:, 0], arousal=v["labels"][:, 1], label_mask=np.ones(n, int),
            features=v["features"][:, :dim]))
    if key in examples[1].context.feature:
        del examples[1].context.feature[key]
    else:
        del examples[1].feature_lists.feature_list[key]
    with tf.io.TFRecordWriter(str(path)) as w:
        for ex in examples:
            w.write(ex.SerializeToString())
    return str(path)


@pytest.mark.parametrize("key", ["video/num_frames", "frame/label_mask", "frame/features"])
def test_later_record_missing_a_key_is_named(tmp_path, key):
    path = _two_videos_second_broken(tmp_path / "train-00000-of-00001.tfrecord", key)
    assert records.validate_files([path]) == 2  # Only the first record is read up front.
    where = f"{path}: record 2 (video 'b'): missing the "
    with pytest.raises(errors.UserError) as e:
        clips.check_clips_fit([path], _data_config(), feature_dim=2)
    assert str(e.value).startswith(where) and f"'{key}'" in str(e.value)
    with pytest.raises(errors.UserError) as e:
        list(records.iter_videos([path], 2))
    assert str(e.value).startswith(where) and f"'{key}'" in str(e.value)
    if key == "video/num_frames":  # The length-only clip check needs just this key.
        with pytest.raises(errors.UserError, match="record 2 .*'video/num_frames'"):
            clips.check_clips_fit([path], _data_config())
    # The training input pipeline itself, as train_lib runs it (the fallback after the checks).
    ds = clips.clip_dataset([path], 2, _data_config(), batch_size=1, seed=0, repeat=False,
                            shuffle=False)
    with pytest.raises(errors.UserError, match=f"^{path}: record 2 .*'{key}'"):
        with records.schema_errors([path], 2):
            list(ds.as_numpy_iterator())


def test_later_record_with_other_problems(tmp_path, feature_videos):
    import tensorflow as tf

    # A different feature dimension in record 2 of a second file.
    good = feature_videos(tmp_path / "train-00000-of-00002.tfrecord", [_index_video("a", 30)])
    v3 = dict(_index_video("c", 30), features=np.zeros((30, 3), np.float32))
    mixed = feature_videos(tmp_path / "train-00001-of-00002.tfrecord",
                           [_index_video("b", 30), v3])
    with pytest.raises(errors.UserError) as e:
        clips.check_clips_fit([good, mixed], _data_config(), feature_dim=2)
    assert str(e.value) == (f"{mixed}: record 2 (video 'c'): 'video/feature_dim' is 3, "
                            f"expected 2 (the feature dimension of the other records)")
    # A file cut in the middle of its 2nd record.
    two = feature_videos(tmp_path / "two.tfrecord", [_index_video("a", 30),
                                                     _index_video("b", 30)])
    data = open(two, "rb").read()
    first_len = len(next(iter(tf.data.TFRecordDataset(two))).numpy()) + 16  # + TFRecord framing
    cut = tmp_path / "train-cut.tfrecord"
    cut.write_bytes(data[:first_len + 40])
    with pytest.raises(errors.UserError, match=f"^{cut}: unreadable TFRecord data after record 1 "
                                               f"\\(video 'a'\\)"):
        list(records.iter_videos([str(cut)], 2))
    assert records.find_bad_record([good, two], 2) == ""
