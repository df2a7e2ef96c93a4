"""Clients of an exported AST-Net model under TF Serving: REST bodies, gRPC requests, metadata.

A client sends aligned RGB face crops (`ast_net.faces.align`, side S from the model's metadata)
and gets valence and arousal back, one value per clip frame. Two transports:
  REST  `rest_body(signature, inputs)` builds the JSON TF Serving's
        `POST /v1/models/<name>:predict` takes: the row format ("instances", one object per
        clip) or the columnar one ("inputs"); bytes (JPEG crops for `faces_jpeg`) are written as
        `{"b64": ...}`, which TF Serving decodes to the string tensor's bytes. `predict_rest`
        posts it; `rest_outputs` turns either reply format into arrays.
  gRPC  `predict_request(inputs, ...)` builds a `tensorflow_serving.apis.predict_pb2.
        PredictRequest` (tensors by `tf.make_tensor_proto`), `predict_grpc(target, ...)` sends
        it to `PredictionService/Predict` (port 8500 by default) and `response_outputs` reads
        the `PredictResponse` back with `tf.make_ndarray`. Needs the `serving` extra
        (`pip install -e '.[serving]'`: tensorflow-serving-api, which pins the same TF).
The model describes itself: `metadata_request()` / `metadata_rest_body()` call its `metadata`
signature (N, Δt, face size, backbone, label range, the preprocessing contract), `metadata`
decodes the answer, and `signature_summary` lists the signatures of a `GetModelMetadata` reply.
`encode_jpeg` makes the JPEG crops (OpenCV, as `ast-net-prepare-videos` stores its crops).
docs/serving.md shows complete sessions and the measured body sizes and latencies.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Mapping, Optional

import cv2
import numpy as np

from ast_net import errors

DEFAULT_MODEL = "ast_net"     # --model_name of the TF Serving examples in docs/serving.md.
METADATA_SIGNATURE = "metadata"   # = export_lib.METADATA_SIGNATURE (no TF import here).
METADATA_INPUT = "request"        # Its ignored int32 scalar input.
FACES_JPEG = "faces_jpeg"
DEFAULT_JPEG_QUALITY = 90         # That of the stored training crops (contract.jpeg_quality).


def encode_jpeg(faces: np.ndarray, quality: int = DEFAULT_JPEG_QUALITY) -> np.ndarray:
    """JPEG bytes of each RGB uint8 crop: `[..., H, W, 3]` -> object array `[...]` of bytes."""
    faces = np.asarray(faces)
    if faces.dtype != np.uint8 or faces.ndim < 3 or faces.shape[-1] != 3:
        raise errors.UserError(f"faces: expected uint8 [..., H, W, 3] RGB crops, got "
                               f"{faces.dtype} {list(faces.shape)}")
    flat = faces.reshape((-1,) + faces.shape[-3:])
    out = np.empty(len(flat), dtype=object)
    for i, crop in enumerate(flat):
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:
            raise errors.UserError(f"faces: JPEG encoding failed for crop {i}")
        out[i] = data.tobytes()
    return out.reshape(faces.shape[:-3])


def _json_value(x):
    """Nested lists of `x`, bytes as TF Serving's {"b64": ...} objects."""
    if isinstance(x, bytes):
        return {"b64": base64.b64encode(x).decode("ascii")}
    x = np.asarray(x)
    if x.dtype == object or x.dtype.kind == "S":
        if x.ndim == 0:
            return {"b64": base64.b64encode(bytes(x.item())).decode("ascii")}
        return [_json_value(v) for v in x]
    return x.tolist()


def rest_body(signature: str, inputs: Mapping[str, np.ndarray], *, columnar: bool = False) -> str:
    """The JSON of a TF Serving REST predict request.

    Args:
      signature: signature key, e.g. "faces_jpeg".
      inputs: input name -> array with the batch axis first (clips for the clip signatures).
      columnar: the "inputs" format (whole tensors) instead of "instances" (one object per row;
        TF Serving then stacks the rows, and answers "predictions", one object per row).
    """
    arrays = {name: np.asarray(value) for name, value in inputs.items()}
    if columnar:
        body = {"signature_name": signature,
                "inputs": {name: _json_value(a) for name, a in arrays.items()}}
    else:
        rows = {len(a) for a in arrays.values()}
        if len(rows) != 1:
            raise errors.UserError(f"inputs: row format needs one batch size, got {sorted(rows)}")
        body = {"signature_name": signature,
                "instances": [{name: _json_value(a[i]) for name, a in arrays.items()}
                              for i in range(rows.pop())]}
    return json.dumps(body, separators=(",", ":"))


def metadata_rest_body() -> str:
    """REST body of a `metadata` call (columnar: its outputs are not batched)."""
    return rest_body(METADATA_SIGNATURE, {METADATA_INPUT: np.int32(0)}, columnar=True)


def rest_outputs(reply) -> dict:
    """Output name -> array from a REST predict reply (dict or JSON text), either format."""
    if isinstance(reply, (str, bytes)):
        reply = json.loads(reply)
    if "error" in reply:
        raise errors.UserError(f"TF Serving answered: {reply['error']}")
    if "outputs" in reply:
        outputs = reply["outputs"]
        return {name: np.asarray(v) for name, v in outputs.items()} if isinstance(
            outputs, dict) else {"output": np.asarray(outputs)}
    rows = reply["predictions"]
    if rows and isinstance(rows[0], dict):
        return {name: np.asarray([row[name] for row in rows]) for name in rows[0]}
    return {"output": np.asarray(rows)}


def predict_rest(url: str, body: str, timeout: float = 60.0) -> dict:
    """POSTs `body` to `url` (http://HOST:8501/v1/models/NAME:predict); output arrays."""
    request = urllib.request.Request(url, data=body.encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return rest_outputs(reply.read())
    except urllib.error.HTTPError as e:  # TF Serving puts {"error": ...} in the 400 body.
        raise errors.UserError(f"{url}: HTTP {e.code}: {e.read().decode(errors='replace')}")


def _apis():
    try:
        from tensorflow_serving.apis import (
            get_model_metadata_pb2,
            predict_pb2,
            prediction_service_pb2_grpc,
        )
    except ImportError:
        raise errors.UserError("the gRPC client needs tensorflow-serving-api: "
                               "pip install -e '.[serving]'") from None
    return predict_pb2, get_model_metadata_pb2, prediction_service_pb2_grpc


def predict_request(inputs: Mapping[str, np.ndarray], *, signature: str = "serving_default",
                    model_name: str = DEFAULT_MODEL, version: Optional[int] = None):
    """A `PredictRequest` for `signature` with each input as a TensorProto.

    Object arrays of bytes become DT_STRING (JPEG crops); uint8 stays DT_UINT8.
    """
    import tensorflow as tf

    predict_pb2 = _apis()[0]
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, value in inputs.items():
        value = np.asarray(value)
        dtype = tf.string if value.dtype == object else None
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value, dtype=dtype))
    return request


def metadata_request(model_name: str = DEFAULT_MODEL, version: Optional[int] = None):
    """The `PredictRequest` of a `metadata` call."""
    return predict_request({METADATA_INPUT: np.int32(0)}, signature=METADATA_SIGNATURE,
                           model_name=model_name, version=version)


def response_outputs(response) -> dict:
    """Output name -> array of a `PredictResponse`."""
    import tensorflow as tf

    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def _stub(target: str):
    import grpc

    prediction_service_pb2_grpc = _apis()[2]
    return prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))


def predict_grpc(target: str, request, timeout: float = 60.0) -> dict:
    """Sends `request` to TF Serving's gRPC port `target` ("HOST:8500"); output arrays."""
    return response_outputs(_stub(target).Predict(request, timeout=timeout))


def signature_defs_grpc(target: str, model_name: str = DEFAULT_MODEL, timeout: float = 60.0):
    """The `GetModelMetadataResponse` (signature_def field) of `model_name` at `target`."""
    get_model_metadata_pb2 = _apis()[1]
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = model_name
    request.metadata_field.append("signature_def")
    return _stub(target).GetModelMetadata(request, timeout=timeout)


def signature_summary(response) -> dict:
    """{signature: {"inputs"/"outputs": {name: (dtype name, shape)}}} of a GetModelMetadata
    reply (-1: any size; None: any rank). Lists what can be called, not the metadata values."""
    import tensorflow as tf

    get_model_metadata_pb2 = _apis()[1]
    defs = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(defs)

    def tensors(infos):
        return {name: (tf.dtypes.as_dtype(info.dtype).name,
                       None if info.tensor_shape.unknown_rank
                       else tuple(d.size for d in info.tensor_shape.dim))
                for name, info in infos.items()}

    return {key: {"inputs": tensors(sig.inputs), "outputs": tensors(sig.outputs)}
            for key, sig in defs.signature_def.items() if not key.startswith("__")}


def metadata(outputs: Mapping[str, np.ndarray]) -> dict:
    """Python values of the `metadata` signature's outputs (from `response_outputs`,
    `rest_outputs` or the loaded signature): strings decoded, scalars as numbers, lists as
    lists, `contract` parsed from its JSON."""
    out = {}
    for name, value in outputs.items():
        value = np.asarray(value.numpy() if hasattr(value, "numpy") else value)
        if value.dtype == object or value.dtype.kind in "SU":
            items = [v.decode() if isinstance(v, bytes) else str(v) for v in value.ravel()]
            out[name] = items[0] if value.ndim == 0 else items
        else:
            out[name] = value.item() if value.ndim == 0 else value.tolist()
    if "contract" in out:
        out["contract"] = json.loads(out["contract"])
    return out
