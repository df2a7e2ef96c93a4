"""Tests of the TF Serving clients (`ast_net/serving_client.py`) against a real export.

The TF Serving server is not installable here, so each transport is checked up to the server's
own code: the REST body is parsed the way TF Serving's `json_tensor.cc` parses it (row and
columnar formats, `{"b64": ...}` decoded to the string tensor's bytes) and run on the loaded
SavedModel in-process; the gRPC client talks over a real gRPC channel to an in-process
`PredictionService` whose `Predict` converts the request's TensorProtos with `tf.make_ndarray`,
calls the loaded signature and packs the outputs with `tf.make_tensor_proto` into a
`PredictResponse`, and whose `GetModelMetadata` returns the SavedModel's signature_def map, as
TF Serving does. The model is a tiny workdir trained as in tests/test_export.py (debug config,
2 steps, 128-d "mini_xception" features, scale 0.5) and exported with the real mini-Xception.
Faces are jittered aligned crops of the scikit-image astronaut. Expected values are computed
independently: JPEGs decoded by PIL (not TensorFlow) and fed to the uint8 `faces` signature,
metadata from the debug config, the workdir's checkpoint and the export's contract.json.
"""

import base64
import http.server
import io
import json
import os
import threading
from concurrent import futures

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from ast_net import export_lib, serving_client, serving_signatures
from ast_net.configs import debug

FEATURE_SCALE = 0.5
ASTRONAUT_EYES = ((204.0, 100.0), (245.0, 102.0))


@pytest.fixture(scope="module")
def served(tiny_workdir, tmp_path_factory):
    """(export result, loaded SavedModel, its signature_def map), from a tiny trained workdir."""
    from tensorflow.core.protobuf import saved_model_pb2

    result = export_lib.export(tiny_workdir, str(tmp_path_factory.mktemp("client_serving")))
    with open(os.path.join(result.path, "saved_model.pb"), "rb") as f:
        defs = saved_model_pb2.SavedModel.FromString(f.read()).meta_graphs[0].signature_def
    return result, tf.saved_model.load(result.path), defs


@pytest.fixture(scope="module")
def crops():
    """40 aligned 64 x 64 astronaut faces as 2 clips of 20 frames, eyes jittered by ~2 px."""
    import skimage.data

    from ast_net.faces import align

    image = skimage.data.astronaut()
    rng = np.random.default_rng(1)
    (lx, ly), (rx, ry) = ASTRONAUT_EYES
    faces = []
    for _ in range(40):
        j = rng.normal(scale=2.0, size=4)
        faces.append(align.align_face(image, (lx + j[0], ly + j[1]), (rx + j[2], ry + j[3]),
                                      64).crop)
    return np.stack(faces).reshape(2, 20, 64, 64, 3)


def _pil_decode(jpegs):
    """uint8 pixels of each JPEG as PIL decodes it (an independent decoder)."""
    from PIL import Image

    flat = [np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in jpegs.ravel()]
    return np.stack(flat).reshape(jpegs.shape + flat[0].shape)


def _va(outputs):
    return np.stack([np.asarray(outputs["valence"]), np.asarray(outputs["arousal"])], -1)


def _call(model, signature, inputs):
    fn = model.signatures[signature]
    return {k: v.numpy() for k, v in fn(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def _tf_serving_rest(model, defs, body):
    """What TF Serving's REST predict answers to `body` (json_tensor.cc semantics, in short)."""
    request = json.loads(body)
    signature = request.get("signature_name", "serving_default")
    infos = defs[signature].inputs
    assert infos, "TF Serving refuses a signature without inputs over REST"

    def tensor(value, name):
        dtype = tf.dtypes.as_dtype(infos[name].dtype)

        def unb64(v):
            if isinstance(v, dict):
                assert set(v) == {"b64"} and dtype == tf.string, v
                return base64.b64decode(v["b64"])
            return [unb64(x) for x in v] if isinstance(v, list) else v

        value = unb64(value)
        return np.array(value, dtype=object) if dtype == tf.string else np.array(
            value, dtype=dtype.as_numpy_dtype)

    if "instances" in request:
        rows = request["instances"]
        named = isinstance(rows[0], dict) and set(rows[0]) != {"b64"}
        inputs = {name: tensor([row[name] if named else row for row in rows], name)
                  for name in infos}
    else:
        given = request["inputs"]
        named = isinstance(given, dict) and set(given) != {"b64"}
        inputs = {name: tensor(given[name] if named else given, name) for name in infos}
    feeds = {name: tf.constant(v.astype(bytes) if v.dtype == object else v)
             for name, v in inputs.items()}
    out = {k: v.numpy() for k, v in model.signatures[signature](**feeds).items()}

    def plain(x):
        return x.decode() if isinstance(x, bytes) else x

    def listed(x):
        x = np.asarray(x)
        return np.vectorize(plain, otypes=[object])(x).tolist() if x.dtype.kind in "OS" \
            else x.tolist()

    if "instances" in request:
        sizes = {len(v) for v in out.values()}
        assert len(sizes) == 1, "row format needs one batch size in every output"
        return json.dumps({"predictions": [{k: listed(v[i]) for k, v in out.items()}
                                           for i in range(sizes.pop())]})
    return json.dumps({"outputs": {k: listed(v) for k, v in out.items()}})


def _expected_metadata(result):
    config = debug.get_config()
    with open(os.path.join(result.path, export_lib.CONTRACT)) as f:
        contract = json.load(f)
    return {"backbone": "mini_xception", "backbone_weights": contract["weights"],
            "face_size": 64, "feature_dim": 128,
            "clip_length": config.data.clip_length, "frame_step": config.data.frame_step,
            "fixed_clip_length": 0, "label_range": [-1.0, 1.0], "merge_phases": True,
            "feature_scale": FEATURE_SCALE, "step": 2, "signatures": list(result.signatures),
            "default_signature": "faces", "outputs": ["valence", "arousal"],
            "contract": contract}


def test_jpeg_signature_equals_uint8_signature_on_the_same_pixels(served, crops):
    _, model, _ = served
    jpegs = serving_client.encode_jpeg(crops)
    assert jpegs.shape == (2, 20) and all(b[:3] == b"\xff\xd8\xff" for b in jpegs.ravel())
    pixels = _pil_decode(jpegs)
    import cv2

    opencv = np.stack([cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
                       for b in jpegs.ravel()]).reshape(pixels.shape)
    np.testing.assert_array_equal(opencv, pixels)  # The two client decoders agree.
    from_jpeg = _va(_call(model, "faces_jpeg", {"faces_jpeg": jpegs.astype(bytes)}))
    from_pixels = _va(_call(model, "faces", {"faces": pixels}))
    assert from_jpeg.shape == (2, 20, 2)
    np.testing.assert_allclose(from_jpeg, from_pixels, rtol=0, atol=1e-6)
    from_raw = _va(_call(model, "faces", {"faces": crops}))
    loss = np.abs(from_raw - from_jpeg).max()
    assert 0 < loss < 0.05, loss  # JPEG loss moves the answer, a little.
    assert np.ptp(from_jpeg[..., 0]) > 1e-4  # Not a constant model.


def test_rest_bodies_as_tf_serving_parses_them(served, crops):
    _, model, defs = served
    jpegs = serving_client.encode_jpeg(crops)
    expected = _va(_call(model, "faces", {"faces": _pil_decode(jpegs)}))

    body = serving_client.rest_body("faces_jpeg", {"faces_jpeg": jpegs})
    parsed = json.loads(body)
    assert parsed["signature_name"] == "faces_jpeg" and len(parsed["instances"]) == 2
    assert parsed["instances"][1]["faces_jpeg"][3] == {
        "b64": base64.b64encode(jpegs[1, 3]).decode()}
    reply = serving_client.rest_outputs(_tf_serving_rest(model, defs, body))
    np.testing.assert_allclose(_va(reply), expected, rtol=0, atol=1e-6)

    columnar = serving_client.rest_body("faces_jpeg", {"faces_jpeg": jpegs}, columnar=True)
    reply = serving_client.rest_outputs(_tf_serving_rest(model, defs, columnar))
    np.testing.assert_allclose(_va(reply), expected, rtol=0, atol=1e-6)

    pixels_body = serving_client.rest_body("faces", {"faces": crops})
    reply = serving_client.rest_outputs(_tf_serving_rest(model, defs, pixels_body))
    np.testing.assert_allclose(_va(reply), _va(_call(model, "faces", {"faces": crops})),
                               rtol=0, atol=1e-6)
    # The point of the JPEG signature: 40 faces in a fraction of the JSON.
    assert len(pixels_body) > 10 * len(body), (len(pixels_body), len(body))


def test_metadata_signature_over_rest_and_in_process(served):
    result, model, defs = served
    assert (serving_client.METADATA_SIGNATURE, serving_client.METADATA_INPUT,
            serving_client.FACES_JPEG) == (export_lib.METADATA_SIGNATURE,
                                           export_lib.METADATA_INPUT, export_lib.FACES_JPEG)
    expected = _expected_metadata(result)
    assert sorted(defs["metadata"].outputs) == sorted(serving_signatures.METADATA_DTYPES)
    direct = serving_client.metadata(model.signatures["metadata"](request=tf.constant(0)))
    over_rest = serving_client.metadata(serving_client.rest_outputs(
        _tf_serving_rest(model, defs, serving_client.metadata_rest_body())))
    assert direct == expected
    assert over_rest == expected
    with open(os.path.join(result.path, export_lib.METADATA)) as f:
        recorded = json.load(f)  # The same facts as assets.extra.
    assert (recorded["trained_clip_length"], recorded["frame_step"], recorded["face_size"],
            recorded["label_range"]) == (direct["clip_length"], direct["frame_step"],
                                         direct["face_size"], direct["label_range"])


@pytest.fixture
def rest_url(served):
    """URL of an in-process HTTP stand-in for TF Serving's REST predict (`_tf_serving_rest`)."""
    _, model, defs = served

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the http.server method name)
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            try:
                code, reply = 200, _tf_serving_rest(model, defs, body)
            except tf.errors.InvalidArgumentError as e:
                code, reply = 400, json.dumps({"error": e.message})
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(reply.encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1/models/ast_net:predict"
    server.shutdown()
    server.server_close()


def test_rest_client_over_http(served, crops, rest_url):
    result, model, _ = served
    from ast_net import errors

    jpegs = serving_client.encode_jpeg(crops[:1, :5])
    got = serving_client.predict_rest(
        rest_url, serving_client.rest_body("faces_jpeg", {"faces_jpeg": jpegs}))
    np.testing.assert_allclose(_va(got), _va(_call(model, "faces", {"faces": _pil_decode(jpegs)})),
                               rtol=0, atol=1e-6)
    meta = serving_client.metadata(serving_client.predict_rest(
        rest_url, serving_client.metadata_rest_body()))
    assert meta == _expected_metadata(result)
    bad = serving_client.rest_body("faces_jpeg", {"faces_jpeg": np.array([[b"GIF89a"]], object)})
    with pytest.raises(errors.UserError, match="HTTP 400: .*faces_jpeg: expected JPEG-encoded"):
        serving_client.predict_rest(rest_url, bad)


def test_metadata_of_a_features_only_export(tmp_path):
    import keras

    from ast_net.models import temporal

    keras.utils.set_random_seed(0)
    fields = serving_signatures.metadata_fields(
        backbone=None, weights=None, face_size=None, feature_dim=6, clip_length=4, frame_step=3,
        fixed_clip_length=4, label_range=None, merge_phases=False, feature_scale=0.5, step=7,
        signatures=["serving_default", "features", "video_features", "metadata"],
        default_signature="features", outputs=["valence", "arousal"], contract={"clip_length": 4})
    archive = export_lib.build_archive(temporal.build_temporal_model(6, lstm_units=(3, 2)), 0.5,
                                       None, 4, window=(4, 3), value_range=None, metadata=fields)
    archive.write_out(str(tmp_path / "model"), verbose=False)
    model = tf.saved_model.load(str(tmp_path / "model"))
    assert sorted(model.signatures) == ["features", "metadata", "serving_default",
                                        "video_features"]
    assert serving_client.metadata(model.signatures["metadata"](request=tf.constant(0))) == {
        "backbone": "none", "backbone_weights": "none", "face_size": 0, "feature_dim": 6,
        "clip_length": 4, "frame_step": 3, "fixed_clip_length": 4, "label_range": [],
        "merge_phases": False, "feature_scale": 0.5, "step": 7,
        "signatures": ["serving_default", "features", "video_features", "metadata"],
        "default_signature": "features", "outputs": ["valence", "arousal"],
        "contract": {"clip_length": 4}}


class _PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    """In-process stand-in for TF Serving's gRPC PredictionService over the loaded SavedModel."""

    def __init__(self, model, defs, model_name):
        self.model, self.defs, self.model_name = model, defs, model_name

    def Predict(self, request, context):  # noqa: N802 (the gRPC method name)
        signature = request.model_spec.signature_name or "serving_default"
        inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
        try:
            out = self.model.signatures[signature](
                **{k: tf.constant(v) for k, v in inputs.items()})
        except tf.errors.InvalidArgumentError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, e.message)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = self.model_name
        response.model_spec.signature_name = signature
        for name, value in out.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
        return response

    def GetModelMetadata(self, request, context):  # noqa: N802
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = self.model_name
        defs = get_model_metadata_pb2.SignatureDefMap()
        for key, value in self.defs.items():
            defs.signature_def[key].CopyFrom(value)
        response.metadata["signature_def"].Pack(defs)
        return response


@pytest.fixture
def grpc_target(served):
    _, model, defs = served
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        _PredictionService(model, defs, serving_client.DEFAULT_MODEL), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(grace=None)


def test_grpc_client_predict_metadata_and_errors(served, crops, grpc_target):
    result, model, _ = served
    jpegs = serving_client.encode_jpeg(crops)
    request = serving_client.predict_request({"faces_jpeg": jpegs}, signature="faces_jpeg")
    assert request.inputs["faces_jpeg"].dtype == tf.string.as_datatype_enum
    assert list(request.inputs["faces_jpeg"].string_val[:2]) == list(jpegs[0, :2])
    got = serving_client.predict_grpc(grpc_target, request)
    expected = _va(_call(model, "faces", {"faces": _pil_decode(jpegs)}))
    np.testing.assert_allclose(_va(got), expected, rtol=0, atol=1e-6)
    got = serving_client.predict_grpc(grpc_target, serving_client.predict_request(
        {"faces": crops[:1]}))  # serving_default = faces, uint8.
    np.testing.assert_allclose(_va(got), _va(_call(model, "faces", {"faces": crops[:1]})),
                               rtol=0, atol=1e-6)

    meta = serving_client.metadata(serving_client.predict_grpc(
        grpc_target, serving_client.metadata_request()))
    assert meta == _expected_metadata(result)

    listing = serving_client.signature_summary(serving_client.signature_defs_grpc(grpc_target))
    assert sorted(listing) == sorted(result.signatures)
    assert listing["faces_jpeg"]["inputs"] == {"faces_jpeg": ("string", (-1, -1))}
    assert listing["faces"]["inputs"] == {"faces": ("uint8", (-1, -1, -1, -1, 3))}
    assert listing["metadata"]["inputs"] == {"request": ("int32", ())}
    assert listing["metadata"]["outputs"]["face_size"] == ("int32", ())
    assert listing["metadata"]["outputs"]["label_range"] == ("float32", (2,))

    bad = serving_client.predict_request({"faces_jpeg": np.array([[b"not a jpeg"]], object)},
                                         signature="faces_jpeg")
    with pytest.raises(grpc.RpcError) as info:
        serving_client.predict_grpc(grpc_target, bad)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "faces_jpeg: expected JPEG-encoded face crops" in info.value.details()


def _png(face):
    import cv2

    return cv2.imencode(".png", face)[1].tobytes()


JPEG_SHAPE = ("faces_jpeg: expected string [batch, N] (one JPEG-encoded aligned RGB face crop "
              "per frame, all of one size; batch, N >= 1), got shape]")
NOT_JPEG = "faces_jpeg: expected JPEG-encoded face crops (bytes starting FF D8 FF"
SIZES = "faces_jpeg: expected crops of one size in a call"


@pytest.mark.parametrize("case,expected,printed", [
    ("png", NOT_JPEG, "got other bytes at flat index (row * N + frame)] [1]"),
    ("empty", NOT_JPEG, "] [0]"),
    ("raw pixels", NOT_JPEG, "] [0 1]"),
    ("no batch axis", JPEG_SHAPE, "[2]"),
    ("rank 3", JPEG_SHAPE, "[1 2 1]"),
    ("no frames", JPEG_SHAPE, "[1 0]"),
    ("two sizes", SIZES, "[64 64] [1] [32 32]"),
])
def test_faces_jpeg_refuses_bad_input(served, crops, case, expected, printed):
    _, model, _ = served
    good = serving_client.encode_jpeg(crops[0, :2])
    inputs = {
        "png": [[good[0], _png(crops[0, 0])]],
        "empty": [[b"", good[1]]],
        "raw pixels": [[crops[0, 0].tobytes(), crops[0, 1].tobytes()]],
        "no batch axis": list(good),
        "rank 3": [[[good[0]], [good[1]]]],
        "no frames": np.zeros((1, 0), bytes),
        "two sizes": [[good[0], serving_client.encode_jpeg(crops[0, 1, :32, :32]).item()]],
    }[case]
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        model.signatures["faces_jpeg"](faces_jpeg=tf.constant(inputs, tf.string))
    message = str(info.value)
    assert expected in message and printed in message, message[-1500:]


def test_client_refuses_what_is_not_a_crop():
    from ast_net import errors

    with pytest.raises(errors.UserError, match=r"expected uint8 \[\.\.\., H, W, 3\]"):
        serving_client.encode_jpeg(np.zeros((2, 64, 64, 3), np.float32))
    with pytest.raises(errors.UserError, match="TF Serving answered: bad"):
        serving_client.rest_outputs('{"error": "bad"}')
