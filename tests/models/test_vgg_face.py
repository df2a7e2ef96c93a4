"""VGG16 / VGG-Face: weight files in the keras-vggface and Keras ImageNet layouts, our own
fine-tuned file, clear errors for wrong files, and the forward pass checked against numpy."""

import h5py
import numpy as np
import pytest

from ast_net import errors
from ast_net.models import backbones, vgg_face

POOLED = ("conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3")


def _shapes(input_size, fc_width, classes):
    shapes, cin = {}, 3
    for name, filters in vgg_face.CONV_LAYERS:
        shapes[name] = [(3, 3, cin, filters), (filters,)]
        cin = filters
    rows = (input_size // 32) ** 2 * 512
    shapes["fc6"] = [(rows, fc_width), (fc_width,)]
    shapes["fc7"] = [(fc_width, fc_width), (fc_width,)]
    shapes["fc8"] = [(fc_width, classes), (classes,)]
    return shapes


def write_keras2_h5(path, layer_names, weights, weight_name):
    """An .h5 as Keras 2 `save_weights` writes it: root attr layer_names, one group per layer
    with attr weight_names, datasets at <layer>/<weight name> (a '/' nests groups)."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in layer_names])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.1.5"
        for name in layer_names:
            g = f.require_group(name)
            arrays = weights.get(name, [])
            names = [weight_name(name, i) for i in range(len(arrays))]
            g.attrs["weight_names"] = np.array([n.encode() for n in names], dtype="S")
            for n, a in zip(names, arrays):
                g.create_dataset(n, data=a)


def vggface_layer_names():
    """Layer order of keras-vggface's VGG16 (include_top=True)."""
    names = ["input_1"]
    for name, _ in vgg_face.CONV_LAYERS:
        names.append(name)
        if name in POOLED:
            names.append(f"pool{name[4]}")
    return names + ["flatten", "fc6", "fc6/relu", "fc7", "fc7/relu", "fc8", "fc8/softmax"]


def random_weights(shapes, seed):
    rng = np.random.default_rng(seed)

    def uniform(shape):  # In [-0.05, 0.05); uniform is 4x faster than normal for 138M values.
        a = rng.random(shape, dtype=np.float32)
        a -= 0.5
        a *= 0.1
        return a

    return {n: [uniform(s) for s in ss] for n, ss in shapes.items()}


@pytest.fixture(scope="module")
def vggface_file(tmp_path_factory):
    """The real-size rcmalli_vggface_tf_vgg16.h5 layout (138M random values, ~550 MB)."""
    path = tmp_path_factory.mktemp("vggface") / vgg_face.VGGFACE_FILE
    weights = random_weights(_shapes(224, 4096, 2622), seed=0)
    write_keras2_h5(path, vggface_layer_names(), weights,
                    lambda layer, i: f"{layer}/{('kernel', 'bias')[i]}:0")
    return str(path), weights


def test_vggface_release_layout_loads_every_array_exactly(vggface_file):
    path, weights = vggface_file
    info = vgg_face.read_weights(path)
    assert (info.kind, info.input_size, info.fc_width, info.num_classes) == (
        "vggface", 224, 4096, 2622)
    assert info.mean_bgr == (93.5940, 104.7624, 129.1863)
    model = vgg_face.build_vgg16(num_classes=2622, kernel_initializer="zeros")
    assert vgg_face.load_weights(model, info) == list(vgg_face.WEIGHT_LAYERS)
    for name in vgg_face.WEIGHT_LAYERS:
        kernel, bias = model.get_layer(name).get_weights()
        np.testing.assert_array_equal(kernel, weights[name][0], err_msg=name)
        np.testing.assert_array_equal(bias, weights[name][1], err_msg=name)
    net = backbones.from_vgg16(model, info.mean_bgr)
    assert (net.input_size, net.feature_dim) == (224, 4096)
    assert net.probs_model is None  # 2622 identities, not a FER2013 head.


def _conv_same(x, kernel, bias):
    """3x3 'same' convolution by im2col in numpy: x [H, W, C], kernel [3, 3, C, F]."""
    h, w, c = x.shape
    p = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    cols = np.stack([p[i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=2)
    return cols.reshape(h * w, 9 * c) @ kernel.reshape(9 * c, -1) + bias


def _numpy_fc6(image_rgb, weights, mean_bgr):
    x = image_rgb.astype(np.float64)[..., ::-1] - np.array(mean_bgr)
    for name, filters in vgg_face.CONV_LAYERS:
        h, w = x.shape[:2]
        x = np.maximum(_conv_same(x, *weights[name]).reshape(h, w, filters), 0)
        if name in POOLED:
            x = x.reshape(h // 2, 2, w // 2, 2, filters).max(axis=(1, 3))
    return np.maximum(x.reshape(-1) @ weights["fc6"][0] + weights["fc6"][1], 0)


@pytest.fixture
def imagenet_file(tmp_path):
    """Keras applications layout (block1_conv1 ... fc1, fc2, predictions; names like
    block1_conv1_W_1:0), with small shapes: 32x32 input, 16-wide fc layers, 10 classes."""
    ours = random_weights(_shapes(32, 16, 10), seed=1)
    theirs = {}
    for name, _ in vgg_face.CONV_LAYERS:
        theirs[f"block{name[4]}_conv{name[6]}"] = ours[name]
    theirs.update({"fc1": ours["fc6"], "fc2": ours["fc7"], "predictions": ours["fc8"]})
    names = ["input_1"]
    for name, _ in vgg_face.CONV_LAYERS:
        names.append(f"block{name[4]}_conv{name[6]}")
        if name in POOLED:
            names.append(f"block{name[4]}_pool")
    names += ["flatten", "fc1", "fc2", "predictions"]
    path = tmp_path / vgg_face.IMAGENET_FILE
    write_keras2_h5(path, names, theirs, lambda layer, i: f"{layer}_{'Wb'[i]}_1:0")
    return str(path), ours


def test_imagenet_layout_maps_onto_vggface_names_and_fc6_matches_numpy(imagenet_file):
    path, weights = imagenet_file
    net = backbones.load_backbone("vgg16", path)
    assert (net.input_size, net.feature_dim) == (32, 16)
    assert net.mean_bgr == (103.939, 116.779, 123.68)
    np.testing.assert_array_equal(net.feature_model.get_layer("conv3_2").get_weights()[0],
                                  weights["conv3_2"][0])
    image = np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    expected = _numpy_fc6(image, weights, net.mean_bgr)
    got = net.features(image[None]).numpy()[0]
    assert expected.max() > 0 and (expected == 0).any()  # ReLU active and clipping.
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_finetuned_file_roundtrip_keeps_vggface_layout(tmp_path):
    model = vgg_face.build_vgg16(input_size=32, fc_width=16, num_classes=7)
    path = str(tmp_path / "vgg16_fer2013.h5")
    vgg_face.save_weights(model, path, mean_bgr=(1.0, 2.0, 3.0), class_names=backbones.EMOTIONS)
    with h5py.File(path) as f:
        assert b"conv1_1" in list(f.attrs["layer_names"])
        assert list(f["fc6"].attrs["weight_names"]) == [b"fc6/kernel:0", b"fc6/bias:0"]
        kernel = np.asarray(f["fc6"]["fc6"]["kernel:0"])
    net = backbones.load_backbone("vgg16", path)
    assert net.probs_model is not None and net.mean_bgr == (1.0, 2.0, 3.0)
    np.testing.assert_array_equal(net.feature_model.get_layer("fc6").get_weights()[0], kernel)
    faces = np.zeros((2, 40, 40, 3), np.uint8)
    np.testing.assert_allclose(net.probs(faces).numpy().sum(axis=1), 1.0, rtol=1e-5)


def test_wrong_or_missing_files_give_one_clear_line(tmp_path, imagenet_file):
    with pytest.raises(errors.UserError, match=r"no such VGG16 weights file.*rcmalli_vggface"):
        vgg_face.read_weights(str(tmp_path / "nope.h5"))
    text = tmp_path / "weights.h5"
    text.write_text("not hdf5")
    with pytest.raises(errors.UserError, match=r"weights.h5: not an HDF5 file.*keras-vggface"):
        vgg_face.read_weights(str(text))
    other = tmp_path / "other.h5"
    write_keras2_h5(other, ["dense_1"], {"dense_1": [np.ones((2, 2), np.float32)]},
                    lambda layer, i: f"{layer}/kernel:0")
    with pytest.raises(errors.UserError, match=r"other.h5: no VGG16 layers.*dense_1"):
        vgg_face.read_weights(str(other))
    notop = tmp_path / "rcmalli_vggface_tf_notop_vgg16.h5"
    weights = random_weights({k: v for k, v in _shapes(32, 8, 2).items()
                              if k.startswith("conv")}, seed=3)
    write_keras2_h5(notop, list(weights), weights, lambda layer, i: f"{layer}/{i}:0")
    with pytest.raises(errors.UserError, match=r"\['fc6', 'fc7'\] are missing.*notop"):
        vgg_face.read_weights(str(notop))
    with pytest.raises(errors.UserError, match=r"weights are for 32px input, not 224"):
        backbones.load_backbone("vgg16", imagenet_file[0], input_size=224)


def test_preprocess_is_bgr_minus_mean_eagerly_and_in_tf_data():
    import tensorflow as tf

    faces = np.zeros((1, 32, 32, 3), np.uint8)
    faces[..., 0], faces[..., 1], faces[..., 2] = 200, 100, 50  # R, G, B
    out = vgg_face.preprocess(faces, 32).numpy()
    np.testing.assert_allclose(out[0, 0, 0], [50 - 93.5940, 100 - 104.7624, 200 - 129.1863],
                               rtol=1e-6)
    gray = np.full((1, 64, 64, 1), 77, np.uint8)  # Gray faces become 3 equal channels.
    np.testing.assert_allclose(vgg_face.preprocess(gray, 32).numpy()[0, 5, 5],
                               77 - np.array(vgg_face.MEAN_BGR_VGGFACE), rtol=1e-5)
    ds = tf.data.Dataset.from_tensor_slices(faces).batch(1).map(
        lambda x: vgg_face.preprocess(x, 32))
    np.testing.assert_array_equal(next(iter(ds)).numpy(), out)


def test_mixed_precision_build_keeps_float32_softmax():
    model = vgg_face.build_vgg16(input_size=32, fc_width=8, dtype="mixed_float16")
    assert model.get_layer("conv1_1").compute_dtype == "float16"
    assert model.get_layer("fc6").variable_dtype == "float32"
    assert model.get_layer("prob").compute_dtype == "float32"
    assert [layer.name for layer in model.layers][1:4] == ["conv1_1", "conv1_2", "pool1"]
