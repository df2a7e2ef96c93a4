"""The Beam pipeline of extract-features: face shards -> feature shards with RunInference.

    shards --Reshuffle--> ReadShard --(key (shard, record, batch), uint8 faces)-->
        RunInference(KeyedModelHandler(BackboneHandler)) --(key, features)--+
    ReadShard --(shard, record without JPEGs / bad record / end / failure)--+--> GroupByKey
        (shard) --> WriteShard

`ReadShard` reads one face shard, takes each record apart (`feature_records.split_record`)
and emits every batch of `batch_size` faces keyed by its shard, record and batch number, so
the features find their video again however the runner spreads and batches the work (the
batches are the CNN's forward passes: the same faces as the in-process extraction put
together, so the same numbers). `BackboneHandler` is a Beam `ModelHandler` that loads the
backbone once per worker (`Backbone.features_function`, optionally XLA) and runs it on each
batch. `WriteShard` gets everything of one shard, puts the records back together in input
order, writes the shard under a temporary name and renames it (`ast_net.atomic`), then writes
its result (`result_path`: counts, the input's identity, the settings key; or why it failed)
atomically beside it: the driver (`extract_features_lib`) builds the manifest from these, and
a run killed half way keeps the shards whose result was written. A shard that turns out
truncated or corrupt while being read is not written; its result says why.
"""

from __future__ import annotations

import os
import time
from typing import Dict, Optional

import apache_beam as beam
import numpy as np
from apache_beam.ml.inference import base as inference_base
from ast_net.pipelines import feature_records, work_results

from ast_net import atomic, errors

WORK = work_results.WORK
STATUS_OK, STATUS_FAILED, STATUS_USER_ERROR = "ok", "failed", "user_error"
CPU_BATCH_SIZE, GPU_BATCH_SIZE = 32, 256  # Faces per forward pass for --batch_size=0.


def device_batch_size() -> int:
    """GPU_BATCH_SIZE where TensorFlow sees a GPU, else CPU_BATCH_SIZE."""
    import tensorflow as tf

    return GPU_BATCH_SIZE if tf.config.list_physical_devices("GPU") else CPU_BATCH_SIZE


KIND = "features"  # Results under .work/features/ (`work_results`).


def result_path(out_dir: str, name: str) -> str:
    """Where the result of output shard `name` goes (`.work/features/<name>.json`)."""
    return work_results.result_path(out_dir, KIND, name)


def read_result(out_dir: str, name: str) -> Optional[dict]:
    return work_results.read_result(out_dir, KIND, name)


def write_result(out_dir: str, name: str, result: dict) -> None:
    work_results.write_result(out_dir, KIND, name, result)


class BackboneHandler(inference_base.ModelHandler):
    """A Beam ModelHandler: examples are uint8 face batches [B, S, S, 3] (one CNN forward pass
    each), inferences their float32 features [B, D]."""

    def __init__(self, backbone: str, weights: Optional[str], jit_compile: bool,
                 max_batches: int = 4):
        # BatchElements may hand several face batches to one call; each is still its own
        # forward pass, so how Beam groups them does not change a feature.
        super().__init__(min_batch_size=1, max_batch_size=max_batches)
        self._backbone, self._weights, self._jit = backbone, weights, jit_compile

    def load_model(self):
        from ast_net.models import backbones

        return backbones.load_backbone(self._backbone, self._weights).features_function(
            jit_compile=self._jit)

    def run_inference(self, batch, model, inference_args=None):
        import tensorflow as tf

        return [inference_base.PredictionResult(faces, model(tf.constant(faces)).numpy())
                for faces in batch]

    def get_num_bytes(self, batch) -> int:
        return sum(faces.nbytes for faces in batch)

    def get_metrics_namespace(self) -> str:
        return "extract_features"


class _ReadShard(beam.DoFn):
    """(shard name, input path) -> batches (main output) and shard events ('events')."""

    def __init__(self, batch_size: int):
        self._batch_size = batch_size  # 0: by the device of this worker.

    def setup(self):
        self._batch_size = self._batch_size or device_batch_size()

    def process(self, element):
        import tensorflow as tf

        name, in_path = element
        start, count = time.time(), 0
        try:
            for index, raw in enumerate(tf.data.TFRecordDataset(in_path).as_numpy_iterator()):
                count = index + 1
                try:
                    split = feature_records.split_record(raw, in_path, self._batch_size)
                except errors.UserError as e:
                    yield beam.pvalue.TaggedOutput("events", (name, ("user", str(e))))
                    return
                except ValueError as e:
                    video_id = _video_id(raw)
                    yield beam.pvalue.TaggedOutput("events",
                                                   (name, ("bad", index, video_id, str(e))))
                    continue
                for b, faces in enumerate(split.batches):
                    yield (name, index, b), faces
                split.batches = len(split.batches)
                yield beam.pvalue.TaggedOutput("events", (name, ("record", index, split)))
        except (tf.errors.DataLossError, tf.errors.NotFoundError) as e:
            reason = "unreadable, truncated or corrupt: " + e.message.splitlines()[0][:200]
            yield beam.pvalue.TaggedOutput("events", (name, ("failed", reason)))
            return
        yield beam.pvalue.TaggedOutput("events", (name, ("end", count, start)))


def _video_id(raw: bytes) -> str:
    import tensorflow as tf

    from ast_net.data import schema

    try:
        ids = tf.train.SequenceExample.FromString(raw).context.feature[schema.VIDEO_ID]
        return ids.bytes_list.value[0].decode() if ids.bytes_list.value else "?"
    except Exception:  # noqa: BLE001 - only for the reason line.
        return "?"


def _as_event(keyed):
    (name, index, b), result = keyed
    return name, ("features", index, b, result.inference)


class _WriteShard(beam.DoFn):
    """(shard name, its events) -> the output shard and its result file."""

    def __init__(self, out_dir: str, backbone_name: str, feature_dim: int,
                 inputs: Dict[str, dict], settings: str):
        self._out_dir, self._name, self._dim = out_dir, backbone_name, feature_dim
        self._inputs, self._settings = inputs, settings
        self._written = beam.metrics.Metrics.counter("extract_features", "shards_written")
        self._faces = beam.metrics.Metrics.counter("extract_features", "faces")

    def process(self, element):
        name, events = element
        records, feats, bad, end = {}, {}, [], None
        for event in events:
            kind = event[0]
            if kind in ("user", "failed"):
                status = STATUS_USER_ERROR if kind == "user" else STATUS_FAILED
                write_result(self._out_dir, name, {"status": status, "reason": event[1]})
                return
            if kind == "record":
                records[event[1]] = event[2]
            elif kind == "features":
                feats[(event[1], event[2])] = event[3]
            elif kind == "bad":
                bad.append(event[1:])
            else:
                end = event
        if end is None:
            raise RuntimeError(f"{name}: the shard's end was lost in the pipeline")
        import tensorflow as tf

        stats = {"videos": 0, "frames": 0, "faces": 0, "bad_frames": 0,
                 "failed": [{"video_id": v, "reason": r} for _, v, r in sorted(bad)]}
        with atomic.path(os.path.join(self._out_dir, name)) as tmp, \
                tf.io.TFRecordWriter(tmp) as writer:
            for index in sorted(records):
                split = records[index]
                writer.write(feature_records.join_record(
                    split, [feats[(index, b)] for b in range(split.batches)], self._dim,
                    self._name))
                stats["videos"] += 1
                stats["frames"] += len(split.present)
                stats["faces"] += int(np.sum(split.present))
                stats["bad_frames"] += split.bad
        stats.update(status=STATUS_OK, seconds=round(time.time() - end[2], 3),
                     input=self._inputs[name], settings=self._settings)
        write_result(self._out_dir, name, stats)
        self._written.inc()
        self._faces.inc(stats["faces"])


def build(p: beam.Pipeline, todo: Dict[str, str], out_dir: str, *, backbone: str,
          weights: Optional[str], backbone_name: str, feature_dim: int, batch_size: int,
          jit_compile: bool, inputs: Dict[str, dict], settings: str) -> None:
    """Adds the job to pipeline `p`: `todo` {shard name: input path} -> out_dir."""
    read = (p | "Shards" >> beam.Create(sorted(todo.items()))
            | "Spread" >> beam.Reshuffle()
            | "ReadShard" >> beam.ParDo(_ReadShard(batch_size)).with_outputs(
                "events", main="batches"))
    features = (read.batches
                | "Features" >> inference_base.RunInference(inference_base.KeyedModelHandler(
                    BackboneHandler(backbone, weights, jit_compile)))
                | "AsEvents" >> beam.Map(_as_event))
    _ = ((read.events, features) | "Together" >> beam.Flatten()
         | "ByShard" >> beam.GroupByKey()
         | "WriteShard" >> beam.ParDo(_WriteShard(out_dir, backbone_name, feature_dim,
                                                  inputs, settings)))
