"""ast-net-extract-features on small face TFRecords made from real face crops (the astronaut):
features equal the backbone on the decoded crops, everything else is carried over, frames
without a face get zeros, a bad JPEG is masked, re-runs skip finished shards."""

import json
import os

import cv2
import numpy as np
import pytest
import skimage.data
import tensorflow as tf
from ast_net.pipelines import extract_features_lib

from ast_net import errors
from ast_net.data import schema
from ast_net.models import backbones, vgg_face

SHARDS = ("train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord")


def _jpeg(rgb):
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]))
    assert ok
    return buf.tobytes()


def opencv_decoded(jpeg: bytes) -> np.ndarray:
    """A face JPEG as a client's decoder sees it (OpenCV: libjpeg's accurate IDCT), RGB: the
    pixels the training features must be of, not TF's fast-IDCT ones (up to 0.08 apart in
    the mini-Xception's features)."""
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]


def _faces(n, size, seed):
    """n crops of the astronaut's face, shifted a little from frame to frame."""
    img = skimage.data.astronaut()
    rng = np.random.default_rng(seed)
    crops = []
    for _ in range(n):
        dx, dy = rng.integers(-8, 9, 2)
        crop = img[60 + dy:200 + dy, 150 + dx:290 + dx]
        crops.append(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA))
    return crops


def _video(vid, n, size, seed, face_present, bad_jpeg_at=None):
    faces = _faces(n, size, seed)
    jpegs = [_jpeg(f) if p else _jpeg(np.zeros_like(f)) for f, p in zip(faces, face_present)]
    if bad_jpeg_at is not None:
        jpegs[bad_jpeg_at] = b"\xff\xd8not a jpeg"
    t = np.arange(n)
    return schema.make_sequence_example(
        video_id=vid, fps=25.0, timestamps=t / 25.0, face_present=face_present,
        valence=np.sin(t / 3.0), arousal=np.cos(t / 4.0), label_mask=(t % 4 != 0).astype(int),
        face_jpegs=jpegs, subject=f"s{seed}", split="train", dataset="synthetic",
        first_frame=100 * seed, face_size=size)


@pytest.fixture(scope="module")
def face_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("faces")
    videos = [
        [_video("a", 7, 64, 0, [1, 1, 0, 1, 1, 1, 1]), _video("b", 5, 64, 1, [1] * 5)],
        [_video("c", 6, 64, 2, [0, 1, 1, 1, 1, 1], bad_jpeg_at=3)],
    ]
    for name, records in zip(SHARDS, videos):
        with tf.io.TFRecordWriter(str(d / name)) as w:
            for ex in records:
                w.write(ex.SerializeToString())
    (d / "manifest.json").write_text(json.dumps({"videos": {"a": {"status": "ok"}}}))
    return str(d)


def _records(path):
    return [tf.train.SequenceExample.FromString(r)
            for r in tf.data.TFRecordDataset(path).as_numpy_iterator()]


def _check_outputs(face_dir, out_dir, net):
    assert sorted(n for n in os.listdir(out_dir) if n.endswith(".tfrecord")) == list(SHARDS)
    for name in SHARDS:
        for src, dst in zip(_records(os.path.join(face_dir, name)),
                            _records(os.path.join(out_dir, name))):
            ctx, seq, _ = tf.io.parse_sequence_example(
                dst.SerializeToString(), context_features=schema.CONTEXT_SPEC,
                sequence_features=schema.feature_sequence_spec(net.feature_dim))
            assert int(ctx[schema.FEATURE_DIM]) == net.feature_dim
            assert int(ctx[schema.FACE_SIZE]) == 0
            assert ctx[schema.BACKBONE].numpy().decode() == net.name
            for key in (schema.VIDEO_ID, schema.SUBJECT, schema.FPS, schema.FIRST_FRAME):
                assert src.context.feature[key] == dst.context.feature[key]
            for key in (schema.TIMESTAMP, schema.VALENCE, schema.AROUSAL, schema.LABEL_MASK):
                assert (src.feature_lists.feature_list[key]
                        == dst.feature_lists.feature_list[key])
            assert schema.FACE_JPEG not in dst.feature_lists.feature_list
            jpegs = [f.bytes_list.value[0]
                     for f in src.feature_lists.feature_list[schema.FACE_JPEG].feature]
            present_in = [f.int64_list.value[0]
                          for f in src.feature_lists.feature_list[schema.FACE_PRESENT].feature]
            feats = seq[schema.FEATURES].numpy()
            present = seq[schema.FACE_PRESENT].numpy()
            good = [i for i, (jpeg, p) in enumerate(zip(jpegs, present_in))
                    if p and jpeg.startswith(b"\xff\xd8\xff")]  # Flagged and a real JPEG.
            others = [i for i in range(len(jpegs)) if i not in good]
            assert (present[others] == 0).all() and not feats[others].any()
            faces = np.stack([opencv_decoded(jpegs[i]) for i in good])
            expected = net.feature_model(net.preprocess(faces)).numpy()
            np.testing.assert_allclose(feats[good], expected, atol=1e-4)
            assert (present[good] == 1).all() and feats[good].any(axis=1).all()


def test_mini_xception_features_labels_masks_and_rerun(face_dir, tmp_path):
    out = str(tmp_path / "features")
    summary = extract_features_lib.extract_features(face_dir, out, batch_size=4,
                                                    progress=False)
    assert (summary.shards_written, summary.videos, summary.frames) == (2, 3, 18)
    assert (summary.faces, summary.bad_frames) == (15, 1)  # 16 flagged, 1 bad JPEG.
    with open(os.path.join(out, "manifest.json")) as f:
        manifest = json.load(f)
    assert manifest["videos"] == {"a": {"status": "ok"}}  # The input manifest is kept.
    assert manifest["features"]["backbone"] == "mini_xception"
    assert manifest["features"]["shards"][SHARDS[1]]["bad_frames"] == 1

    mtimes = {n: os.path.getmtime(os.path.join(out, n)) for n in SHARDS}
    os.remove(os.path.join(out, SHARDS[0]))  # As if the run had died during shard 0.
    again = extract_features_lib.extract_features(face_dir, out, batch_size=4,
                                                  progress=False)
    assert (again.shards_written, again.shards_skipped) == (1, 1)
    assert os.path.getmtime(os.path.join(out, SHARDS[1])) == mtimes[SHARDS[1]]
    assert not [n for n in os.listdir(out) if n.startswith(".")]  # No temporary files left.
    _check_outputs(face_dir, out, backbones.load_backbone("mini_xception"))  # Both runs' shards.
    with pytest.raises(errors.UserError, match="holds features made with"):
        extract_features_lib.extract_features(face_dir, out, backbone="vgg16", progress=False)


def test_vgg16_backbone_from_a_weights_file(face_dir, tmp_path):
    # Input 64 = the faces' size: extract-features refuses other sizes (ast_net/contract.py).
    model = vgg_face.build_vgg16(input_size=64, fc_width=16, num_classes=7)
    weights = str(tmp_path / "vgg16_fer2013.h5")
    vgg_face.save_weights(model, weights, mean_bgr=vgg_face.MEAN_BGR_VGGFACE,
                          class_names=backbones.EMOTIONS)
    out = str(tmp_path / "vgg")
    summary = extract_features_lib.extract_features(
        face_dir, out, backbone="vgg16", weights=weights, batch_size=8, progress=False)
    assert summary.faces == 15
    _check_outputs(face_dir, out, backbones.load_backbone("vgg16", weights))


def test_bad_inputs_are_one_clear_line(face_dir, tmp_path):
    with pytest.raises(errors.UserError, match="no such directory"):
        extract_features_lib.extract_features(str(tmp_path / "nope"), str(tmp_path / "o"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(errors.UserError, match=r"empty: no \*.tfrecord shards"):
        extract_features_lib.extract_features(str(tmp_path / "empty"), str(tmp_path / "o"))
    with pytest.raises(errors.UserError, match="must differ from --in_dir"):
        extract_features_lib.extract_features(face_dir, face_dir)


def test_shards_made_with_the_fast_idct_are_redone(face_dir, tmp_path, monkeypatch):
    # As a run before 2026-12-07 made them: TF's default (fast) IDCT for the face JPEGs.
    out = str(tmp_path / "features")
    with monkeypatch.context() as m:
        m.setattr(schema, "FACE_JPEG_DCT_METHOD", "")
        first = extract_features_lib.extract_features(face_dir, out, batch_size=4,
                                                      progress=False)
    assert first.shards_written == 2
    again = extract_features_lib.extract_features(face_dir, out, batch_size=4, progress=False)
    assert (again.shards_written, again.shards_skipped) == (2, 0)
    _check_outputs(face_dir, out, backbones.load_backbone("mini_xception"))
