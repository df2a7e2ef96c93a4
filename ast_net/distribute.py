"""Distribution strategies for `ast-net-train`: which one `config.train.distribute` names, which
process of a multi-worker job is the chief, and what the other workers do instead of writing.

  "auto"          MirroredStrategy when several GPUs are visible, else the default strategy
  "none"          the default strategy (one device)
  "mirrored"      MirroredStrategy over every visible GPU (else the logical CPUs)
  "multi_worker"  MultiWorkerMirroredStrategy over the cluster of the `TF_CONFIG` environment
                  variable (`{"cluster": {"worker": ["host:port", ...]}, "task": {"type":
                  "worker", "index": i}}`), one process per machine, the same command on each

`config.train.batch_size` is the GLOBAL batch under every strategy. Each worker builds the same
seeded clip stream and `shard_by_data` makes tf.data split every global batch between the
replicas (auto-shard policy DATA: worker k keeps its slice of each batch), so a multi-worker run
sees the batches a single-process run sees, split in parts; with FILE sharding (the default
AUTO policy on file datasets) every worker would read other files and the run would no longer
match. The price: each worker reads and parses all the training records (cheap next to the
LSTM for feature records; see docs/distributed_training.md).

Only the chief (task type "chief", or worker 0 when the cluster has no "chief") writes to the
work directory: config.json, checkpoints, TensorBoard. The others write checkpoints to a local
temporary folder that is deleted at once (the TF multi-worker tutorial's pattern: a save may need
every worker), TensorBoard to a no-op writer. Every worker restores from the chief's
checkpoints, so the work directory must be on storage every worker sees (NFS, GCS, ...);
`check_same_step` stops a job whose workers did not restore the same step.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from typing import Optional, Tuple

import tensorflow as tf
from absl import logging

from ast_net import errors
from ast_net.models import siamese

STRATEGIES = ("auto", "none", "mirrored", "multi_worker")
_DOC = "see docs/distributed_training.md"


def task_of_tf_config(text: Optional[str]) -> Tuple[dict, str, int]:
    """(cluster, task type, task index) of a TF_CONFIG value; UserError when it is missing or
    is not a cluster + task this process belongs to."""
    if not text:
        raise errors.UserError("config.train.distribute: multi_worker needs the TF_CONFIG "
                               "environment variable (cluster and task of this process); "
                               + _DOC)
    try:
        spec = json.loads(text)
        cluster, task = spec["cluster"], spec["task"]
        kind, index = str(task["type"]), int(task["index"])
        hosts = cluster[kind]
    except (ValueError, KeyError, TypeError) as e:
        raise errors.UserError(f"TF_CONFIG: expected JSON {{\"cluster\": {{\"worker\": "
                               f"[\"host:port\", ...]}}, \"task\": {{\"type\": \"worker\", "
                               f"\"index\": 0}}}} ({type(e).__name__}: {e}); {_DOC}")
    if not isinstance(hosts, list) or not 0 <= index < len(hosts):
        raise errors.UserError(f"TF_CONFIG: task {kind} {index} is not in cluster[{kind!r}] "
                               f"({hosts!r}); {_DOC}")
    return cluster, kind, index


def chief_of(cluster: dict, kind: str, index: int) -> bool:
    """Whether task (kind, index) of `cluster` is the chief: the "chief" task when the cluster
    has one, else worker 0."""
    if "chief" in cluster:
        return kind == "chief"
    return kind == "worker" and index == 0


def get_strategy(name: str) -> tf.distribute.Strategy:
    """The strategy `config.train.distribute` names (see the module docstring).

    "multi_worker" must come before any other TensorFlow op of the process: TensorFlow sets its
    collective ops up when the strategy is made (train_lib makes it first).
    """
    if name == "multi_worker":
        task_of_tf_config(os.environ.get("TF_CONFIG"))
        return tf.distribute.MultiWorkerMirroredStrategy()  # TF picks the all-reduce (AUTO).
    gpus = tf.config.list_logical_devices("GPU")
    if name == "none" or (name == "auto" and len(gpus) < 2):
        return tf.distribute.get_strategy()
    if name in ("auto", "mirrored"):
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    raise errors.UserError(f"config.train.distribute: must be one of "
                           f"{', '.join(map(repr, STRATEGIES))}, got {name!r}")


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True for the process that writes the work directory (always, outside multi-worker)."""
    if not is_multi_worker(strategy):
        return True
    resolver = strategy.cluster_resolver
    cluster = resolver.cluster_spec().as_dict()
    if not cluster or resolver.task_type is None:  # MWMS without a cluster: one local worker.
        return True
    return chief_of(cluster, resolver.task_type, int(resolver.task_id))


def worker_name(strategy: tf.distribute.Strategy) -> str:
    """"worker 1" (multi-worker) or "" (one process), for log lines."""
    if not is_multi_worker(strategy) or strategy.cluster_resolver.task_type is None:
        return ""
    return f"{strategy.cluster_resolver.task_type} {strategy.cluster_resolver.task_id}"


def check_batch(strategy: tf.distribute.Strategy, batch_size: int) -> None:
    """UserError unless the global batch splits evenly between the replicas (each replica's
    mean loss is weighted 1 / replicas, which is the global mean only for equal parts)."""
    replicas = int(strategy.num_replicas_in_sync)
    if batch_size % replicas:
        raise errors.UserError(f"config.train.batch_size: must be a multiple of the {replicas} "
                               f"replicas of config.train.distribute (the global batch is split "
                               f"evenly), got {batch_size}")


def shard_by_data(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset` (of global batches) with auto-shard policy DATA: under a multi-worker strategy
    every worker reads the same stream and keeps its replicas' slice of each batch."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def check_same_step(strategy: tf.distribute.Strategy, step: int) -> None:
    """UserError when the workers of a multi-worker job restored different steps (the work
    directory is not on storage every worker sees, or a checkpoint changed between them)."""
    if not is_multi_worker(strategy) or strategy.num_replicas_in_sync < 2:
        return
    # ReduceOp has SUM and MEAN only: the steps differ iff their variance is > 0 (exact in
    # float64 for any step count).
    value = tf.constant([float(step), float(step) ** 2], tf.float64)
    mean = strategy.reduce("MEAN", strategy.run(lambda: tf.identity(value)), axis=None).numpy()
    if mean[1] - mean[0] ** 2 > 0.25:
        raise errors.UserError(
            f"the workers restored different steps (this one {step}, mean {mean[0]:g}): the "
            f"work directory must be on storage every worker reads (NFS, GCS, ...); {_DOC}")


class DistributedSiameseModel(siamese.SiameseTemporalModel):
    """The Siamese model under MirroredStrategy and MultiWorkerMirroredStrategy: the training
    step is the parent's; two things Keras 3 (3.15.1, TF 2.21) does around it are changed.

    1. Each `fit` / `evaluate` call first builds the model symbolically from one batch, pulled
       from a first pass over the dataset, then starts the dataset again. With
       `reshuffle_each_iteration` that second pass is another order: a mirrored or multi-worker
       run trained on other batches than a one-process run (measured: weights 0.12 apart after
       10 steps of the debug config). Across workers Keras also averages that batch over the
       replicas first, which fails on our dict batches ("Attempt to convert a value
       ({'features_a': PerReplica ...}) to a Tensor", keras-team/keras#20329). Here the model is
       built from the temporal network's input shape, with no batch.
    2. Across workers Keras averages each step's outputs with `strategy.reduce("MEAN", v,
       axis=0)`, which fails on scalar metric results ("Invalid reduction dimension 0 for input
       with 0 dimensions", tensorflow/tensorflow#72388). In multi-worker mode the steps here
       return each result as a [1] tensor, so that reduce is the mean over the replicas'
       results: each replica's tracker averages its own equal share of the global batch, so
       that is the global mean.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        with self.distribute_strategy.scope():
            if not self.built:
                self.build(tuple(self.temporal.inputs[0].shape))
            if self.optimizer is not None and not self.optimizer.built:
                self.optimizer.build(self.trainable_variables)

    def _vectors(self, logs):
        extended = self.distribute_strategy.extended
        # Keras' own test for its cross-worker reduce (keras/src/backend/tensorflow/trainer.py).
        if is_multi_worker(self.distribute_strategy) and extended._in_multi_worker_mode():
            return {k: tf.reshape(v, [1]) for k, v in logs.items()}
        return logs

    def train_step(self, data):
        return self._vectors(super().train_step(data))

    def test_step(self, data):
        return self._vectors(super().test_step(data))


def model_class(strategy: tf.distribute.Strategy) -> type:
    """The Siamese model class to train under `strategy` (see DistributedSiameseModel)."""
    if isinstance(strategy, (tf.distribute.MirroredStrategy,
                             tf.distribute.MultiWorkerMirroredStrategy)):
        return DistributedSiameseModel
    return siamese.SiameseTemporalModel


def lost_worker(e: Exception, step: int) -> errors.UserError:
    """The one-line error of a collective that a dead or unreachable worker aborted (TF's
    coordination service notices a worker that stopped sending heartbeats within seconds)."""
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", str(getattr(e, "message", e))).strip()
    text = text.split("aborted by: ")[-1].splitlines()[0][:200] if text else type(e).__name__
    return errors.UserError(
        f"a worker of the multi-worker job stopped or cannot be reached ({text}); training had "
        f"reached step {step}: start every worker again with the same command, the job resumes "
        f"from the chief's latest checkpoint; {_DOC}")


def discard_save(checkpoint: tf.train.Checkpoint) -> None:
    """A non-chief worker's checkpoint save: written to a local temporary folder, then deleted
    (every worker takes part in a save; only the chief's is kept)."""
    folder = tempfile.mkdtemp(prefix="ast_net_worker_ckpt_")
    try:
        checkpoint.write(os.path.join(folder, "ckpt"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    logging.info("non-chief checkpoint written to %s and deleted", folder)
