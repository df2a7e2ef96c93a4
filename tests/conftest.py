"""Shared test fixtures: quiet TensorFlow and tiny feature TFRecords written in the real schema."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def write_feature_videos(path, videos, *, split="train", backbone="test"):
    """Writes `videos` (list of dicts: id, features [T, D], labels [T, 2], mask [T] optional,
    face [T] optional, first_frame optional) as SequenceExamples to one TFRecord file."""
    import tensorflow as tf

    from ast_net.data import schema

    with tf.io.TFRecordWriter(str(path)) as w:
        for v in videos:
            t = len(v["features"])
            ex = schema.make_sequence_example(
                video_id=v["id"], fps=v.get("fps", 25.0), subject=v.get("subject", v["id"]),
                split=split, timestamps=np.arange(t) / v.get("fps", 25.0),
                face_present=v.get("face", np.ones(t, int)),
                valence=v["labels"][:, 0], arousal=v["labels"][:, 1],
                label_mask=v.get("mask", np.ones(t, int)), features=v["features"],
                first_frame=v.get("first_frame", 0), backbone=backbone)
            w.write(ex.SerializeToString())
    return str(path)


@pytest.fixture
def feature_videos():
    return write_feature_videos


def toy_video(vid, num_frames, dim=4, seed=0):
    """A video whose valence/arousal are smooth curves carried by the first two features."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames)
    va = np.stack([np.sin(t / 17.0 + seed), np.cos(t / 23.0 + 2 * seed)], -1) * 0.8
    feats = np.concatenate([va, rng.normal(scale=0.1, size=(num_frames, dim - 2))], -1)
    return {"id": vid, "features": feats.astype(np.float32), "labels": va.astype(np.float32)}


@pytest.fixture(scope="module")
def toy_dataset(tmp_path_factory):
    """train/dev/test feature records of smooth toy videos (one directory per test module)."""
    d = tmp_path_factory.mktemp("data")
    for k, split in enumerate(["train", "dev", "test"]):
        vids = [toy_video(f"{split}{i:02d}", 160 + 20 * i, seed=10 * k + i) for i in range(3)]
        write_feature_videos(d / f"{split}-00000-of-00001.tfrecord", vids, split=split)
    return str(d)
