"""Tests of the synthetic benchmark generator (ast_net.data.synthetic) and its binary."""

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from ast_net import errors
from ast_net.data import schema, synthetic

TINY = dict(num_subjects=5, videos_per_subject="1-2", feature_dim=16, min_frames=300,
            max_frames=400)


def _parse_dir(out_dir, feature_dim):
    records = []
    for path in sorted(glob.glob(os.path.join(out_dir, "*.tfrecord"))):
        for raw in tf.data.TFRecordDataset(path):
            context, lists = tf.io.parse_single_sequence_example(
                raw, context_features=schema.CONTEXT_SPEC,
                sequence_features=schema.feature_sequence_spec(feature_dim))
            records.append((os.path.basename(path),
                            {k: v.numpy() for k, v in context.items()},
                            {k: v.numpy() for k, v in lists.items()}))
    return records


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out_dir = str(tmp_path_factory.mktemp("syn"))
    return out_dir, synthetic.write_benchmark(out_dir, seed=3, **TINY)


def test_same_seed_same_bytes_other_seed_differs(tiny, tmp_path):
    out_dir, manifest = tiny
    again = synthetic.write_benchmark(str(tmp_path / "a"), seed=3, **TINY)
    assert again == manifest
    names = sorted(os.listdir(out_dir))
    assert names == sorted(os.listdir(tmp_path / "a"))
    for name in names:
        with open(os.path.join(out_dir, name), "rb") as f1, open(tmp_path / "a" / name, "rb") as f2:
            assert f1.read() == f2.read(), name
    synthetic.write_benchmark(str(tmp_path / "b"), seed=4, **TINY)
    with open(os.path.join(out_dir, "train-00000-of-00002.tfrecord"), "rb") as f1, open(
            tmp_path / "b" / "train-00000-of-00002.tfrecord", "rb") as f2:
        assert f1.read() != f2.read()


def test_split_by_subject_and_manifest(tiny):
    out_dir, manifest = tiny
    # 5 subjects, shares 0.6/0.2/0.2 -> 3/1/1 (largest remainder, >= 1 per split)
    assert {k: len(v) for k, v in manifest["subjects"].items()} == {
        "train": 3, "dev": 1, "test": 1}
    split_of = {}
    for video in manifest["videos"]:
        assert split_of.setdefault(video["subject"], video["split"]) == video["split"]
        assert 300 <= video["frames"] <= 400
        assert 1.5 <= video["delay_s"] <= 3.5
    assert set(split_of) == {s for v in manifest["subjects"].values() for s in v}
    with open(os.path.join(out_dir, "manifest.json")) as f:
        assert json.load(f) == manifest
    assert sorted(n for n in os.listdir(out_dir) if n.endswith(".tfrecord")) == sorted(
        n for names in manifest["files"].values() for n in names)
    assert not [n for n in os.listdir(out_dir) if n.endswith(".part")]


def test_records_parse_with_the_schema_and_mask_absent_faces(tiny):
    out_dir, manifest = tiny
    records = _parse_dir(out_dir, 16)
    by_id = {v["id"]: v for v in manifest["videos"]}
    assert len(records) == len(by_id)
    unlabelled_with_face = 0
    for file_name, context, lists in records:
        video = by_id[context[schema.VIDEO_ID].decode()]
        assert file_name == video["file"]
        assert context[schema.SUBJECT].decode() == video["subject"]
        assert context[schema.SPLIT].decode() == video["split"]
        assert context[schema.DATASET] == b"synthetic"
        assert context[schema.NUM_FRAMES] == video["frames"]
        assert context[schema.FEATURE_DIM] == 16 and context[schema.FPS] == 25.0
        feats, face = lists[schema.FEATURES], lists[schema.FACE_PRESENT]
        mask = lists[schema.LABEL_MASK]
        assert feats.shape == (video["frames"], 16)
        np.testing.assert_allclose(lists[schema.TIMESTAMP], np.arange(video["frames"]) / 25.0,
                                   rtol=1e-6)
        assert 0 < (face == 0).sum() < video["frames"] // 5
        assert np.all(feats[face == 0] == 0.0) and np.all(mask[face == 0] == 0)
        assert np.all(np.abs(feats[face == 1]).sum(axis=1) > 0)
        assert np.all(lists[schema.VALENCE][mask == 0] == 0.0)
        labels = np.stack([lists[schema.VALENCE], lists[schema.AROUSAL]], 1)[mask == 1]
        assert np.all(np.abs(labels) <= 1.0) and labels.std(axis=0).min() > 0.1
        unlabelled_with_face += int(((mask == 0) & (face == 1)).sum())
        assert (face.sum(), mask.sum()) == (video["face_frames"], video["labelled_frames"])
    assert unlabelled_with_face > 0


def test_labels_lag_the_latent_by_the_video_delay():
    params = synthetic.make_params(seed=7, num_subjects=3, videos_per_subject=3,
                                   feature_dim=8, min_frames=1500, max_frames=1500)
    videos = list(synthetic.generate(params))
    delays = [v.delay_frames for v in videos]
    assert min(delays) >= 37 and max(delays) <= 88 and len(set(delays)) > 3  # 1.5-3.5 s
    for v in videos:
        label = np.stack([v.valence, v.arousal], 1)
        ok = v.label_mask == 1
        # Oracle: correlation of label[t] with latent[t - lag] over valid frames, lags 0..120.
        scores = []
        for lag in range(121):
            keep = ok[lag:]
            x = v.latent[: len(v.latent) - lag][keep]
            y = label[lag:][keep]
            scores.append(np.mean([np.corrcoef(x[:, d], y[:, d])[0, 1] for d in range(2)]))
        assert abs(int(np.argmax(scores)) - v.delay_frames) <= 1, (v.video_id, v.delay_frames)
        assert max(scores) > 0.98 and scores[0] < max(scores) - 0.02


def test_bad_parameters_and_foreign_files_are_user_errors(tmp_path):
    with pytest.raises(errors.UserError, match="videos_per_subject"):
        synthetic.write_benchmark(str(tmp_path), videos_per_subject="two")
    with pytest.raises(errors.UserError, match="videos_per_subject must be 1 <= min <= max"):
        synthetic.write_benchmark(str(tmp_path), videos_per_subject="3-1")  # As the flag gives.
    with pytest.raises(errors.UserError, match="num_subjects"):
        synthetic.write_benchmark(str(tmp_path), num_subjects=2)
    with pytest.raises(errors.UserError, match="min_frames"):
        synthetic.write_benchmark(str(tmp_path), min_frames=500, max_frames=400)
    with pytest.raises(errors.UserError, match="splits"):
        synthetic.write_benchmark(str(tmp_path), splits="train:1")
    (tmp_path / "train-00000-of-00001.tfrecord").write_bytes(b"not ours")
    with pytest.raises(errors.UserError, match="did not write"):
        synthetic.write_benchmark(str(tmp_path), seed=0, **TINY)
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".part")]


def test_rerun_replaces_its_own_old_shards(tmp_path):
    synthetic.write_benchmark(str(tmp_path), num_shards=2, **TINY)
    manifest = synthetic.write_benchmark(str(tmp_path), num_shards=1, **TINY)
    assert sorted(n for n in os.listdir(tmp_path) if n.endswith(".tfrecord")) == [
        "dev-00000-of-00001.tfrecord", "test-00000-of-00001.tfrecord",
        "train-00000-of-00001.tfrecord"]
    assert len(_parse_dir(str(tmp_path), 16)) == len(manifest["videos"])


def test_binary_writes_the_benchmark(tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    cmd = [sys.executable, "-m", "ast_net.make_synthetic", f"--out_dir={tmp_path}",
           "--num_subjects=3", "--videos_per_subject=1", "--feature_dim=8", "--min_frames=200",
           "--max_frames=220", "--seed=5"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "wrote 3 videos" in out.stdout
    with open(tmp_path / "manifest.json") as f:
        manifest = json.load(f)
    assert manifest["params"]["seed"] == 5 and len(manifest["videos"]) == 3
    assert manifest["params"]["feature_dim"] == 8 and manifest["params"]["min_frames"] == 200


def test_fast_record_path_gives_the_schema_bytes():
    params = synthetic.make_params(num_subjects=3, videos_per_subject=1, feature_dim=12,
                                   min_frames=50, max_frames=60)
    video = next(synthetic.generate(params))
    fast = synthetic.make_record(video, fast=True).SerializeToString()
    assert fast == synthetic.make_record(video, fast=False).SerializeToString()
    assert len(fast) > 50 * 12 * 4
