"""extract-features as a Beam job: 1 and 2 DirectRunner worker processes give the backbone's
own features (its Keras model on the decoded faces, within 1e-6) and byte-identical shards; a
run killed after a shard finished (its result file written, the manifest not yet) resumes from
that shard. The face shards are the ones of test_extract_features (real face crops, a frame
without a face, a bad JPEG)."""

import importlib.util
import json
import os
import pathlib

import numpy as np
import tensorflow as tf
from ast_net.pipelines import extract_features_lib, feature_inference

from ast_net.data import schema
from ast_net.models import backbones

_spec = importlib.util.spec_from_file_location(
    "_faces_test", pathlib.Path(__file__).with_name("test_extract_features.py"))
faces_test = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(faces_test)
face_dir = faces_test.face_dir  # The module-scoped fixture of face shards.
SHARDS = faces_test.SHARDS


def _oracle_check(face_dir, out_dir, net):
    """Features of every decodable, flagged face == the Keras model on it (within 1e-6)."""
    checked = 0
    for name in SHARDS:
        for src, dst in zip(faces_test._records(os.path.join(face_dir, name)),
                            faces_test._records(os.path.join(out_dir, name))):
            jpegs = [f.bytes_list.value[0]
                     for f in src.feature_lists.feature_list[schema.FACE_JPEG].feature]
            flags = [f.int64_list.value[0]
                     for f in src.feature_lists.feature_list[schema.FACE_PRESENT].feature]
            good = [i for i, (j, p) in enumerate(zip(jpegs, flags))
                    if p and j.startswith(b"\xff\xd8\xff")]
            feats = np.array([f.float_list.value for f in
                              dst.feature_lists.feature_list[schema.FEATURES].feature])
            faces = np.stack([faces_test.opencv_decoded(jpegs[i]) for i in good])
            expected = net.feature_model(net.preprocess(faces), training=False).numpy()
            np.testing.assert_allclose(feats[good], expected, rtol=0, atol=1e-6)
            others = [i for i in range(len(jpegs)) if i not in good]
            assert not feats[others].any()
            checked += len(good)
    assert checked == 15


def test_one_and_two_workers_give_the_backbone_features_and_the_same_bytes(face_dir,
                                                                            tmp_path):
    outs = {}
    for workers in (1, 2):
        outs[workers] = str(tmp_path / f"w{workers}")
        summary = extract_features_lib.extract_features(
            face_dir, outs[workers], batch_size=4, progress=False,
            direct_num_workers=workers)
        assert (summary.shards_written, summary.faces, summary.bad_frames) == (2, 15, 1)
    for name in SHARDS:
        with open(os.path.join(outs[1], name), "rb") as f1, \
                open(os.path.join(outs[2], name), "rb") as f2:
            assert f1.read() == f2.read(), name
    net = backbones.load_backbone("mini_xception")
    _oracle_check(face_dir, outs[2], net)
    assert not [n for n in os.listdir(outs[2]) if n.startswith(".")]  # No .work, no .tmp.


def test_a_shard_finished_by_a_killed_run_is_kept_and_the_rest_redone(face_dir, tmp_path):
    out = str(tmp_path / "features")
    extract_features_lib.extract_features(face_dir, out, batch_size=4, progress=False)
    path = os.path.join(out, "manifest.json")
    with open(path) as f:
        manifest = json.load(f)
    # As if killed after shard 1 was written (its result file too) but before the manifest
    # named it, with shard 0 not yet renamed into place.
    stats = manifest["features"]["shards"].pop(SHARDS[1])
    manifest["files"] = {"train": []}
    with open(path, "w") as f:
        json.dump(manifest, f)
    feature_inference.write_result(out, SHARDS[1], dict(stats, status="ok"))
    os.remove(os.path.join(out, SHARDS[0]))
    kept = os.stat(os.path.join(out, SHARDS[1])).st_mtime_ns
    again = extract_features_lib.extract_features(face_dir, out, batch_size=4, progress=False)
    assert (again.shards_written, again.shards_skipped) == (1, 1)
    assert os.stat(os.path.join(out, SHARDS[1])).st_mtime_ns == kept
    with open(path) as f:
        assert json.load(f)["files"] == {"train": list(SHARDS)}
    _oracle_check(face_dir, out, backbones.load_backbone("mini_xception"))
    # A result file of another input (shard 1's hash under shard 0's name) is not trusted.
    feature_inference.write_result(out, SHARDS[0], dict(stats, status="ok"))
    third = extract_features_lib.extract_features(face_dir, out, batch_size=4, progress=False)
    assert (third.shards_written, third.shards_skipped) == (1, 1)  # SHARDS[0] redone.


def test_batch_size_zero_is_by_device(face_dir, tmp_path):
    summary = extract_features_lib.extract_features(
        face_dir, str(tmp_path / "o"), batch_size=0, progress=False)
    assert summary.faces == 15
    assert feature_inference.device_batch_size() == (
        feature_inference.GPU_BATCH_SIZE if tf.config.list_physical_devices("GPU")
        else feature_inference.CPU_BATCH_SIZE)
