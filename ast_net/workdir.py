"""What a training work directory holds, and how the other tools read it back.

    <workdir>/config.json        the full config the run used
    <workdir>/model_info.json    feature_dim, backbone that made the features, data_dir
    <workdir>/checkpoints/       tf.train.Checkpoint of the temporal network + optimizer + step
    <workdir>/tensorboard/       train/ and dev/ event files
    <workdir>/eval/              per-video CSVs, plots written by ast-net-evaluate

`load_temporal` rebuilds the temporal network from config.json + model_info.json and restores
the latest checkpoint; evaluate, export and predict all use it, so a checkpoint can only be
read with the architecture it was trained with (a mismatch is one clear error).
"""

from __future__ import annotations

import json
import os
from typing import Tuple

import ml_collections
import tensorflow as tf

from ast_net import atomic, errors
from ast_net.models import temporal


def checkpoint_dir(workdir: str) -> str:
    return os.path.join(workdir, "checkpoints")


def write_json(path: str, obj) -> None:
    """Writes `obj` as JSON atomically (`ast_net.atomic`): never a half file."""
    atomic.write_json(path, obj)


def save_run_info(workdir: str, config, feature_dim: int, backbone: str) -> None:
    """Writes config.json and model_info.json (atomically)."""
    os.makedirs(workdir, exist_ok=True)
    write_json(os.path.join(workdir, "config.json"), json.loads(config.to_json_best_effort()))
    write_json(os.path.join(workdir, "model_info.json"), {
        "feature_dim": int(feature_dim), "backbone": backbone,
        "data_dir": config.data.data_dir})


def load_run_info(workdir: str) -> Tuple[ml_collections.ConfigDict, dict]:
    """(config, model_info) of a work directory; UserError if it is not one."""
    cfg_path = os.path.join(workdir, "config.json")
    info_path = os.path.join(workdir, "model_info.json")
    if not os.path.exists(cfg_path) or not os.path.exists(info_path):
        raise errors.UserError(f"{workdir}: not an ast-net-train work directory (expected "
                               f"config.json and model_info.json written by ast-net-train)")
    with open(cfg_path) as f:
        config = ml_collections.ConfigDict(json.load(f))
    with open(info_path) as f:
        info = json.load(f)
    return config, info


def check_compatible(workdir: str, config, feature_dim: int) -> None:
    """UserError when a work directory was trained with another architecture or features."""
    if not os.path.exists(os.path.join(workdir, "model_info.json")):
        return
    old_config, info = load_run_info(workdir)
    problems = []
    if int(info["feature_dim"]) != int(feature_dim):
        problems.append(f"feature_dim {info['feature_dim']} vs {feature_dim}")
    if list(old_config.model.lstm_units) != list(config.model.lstm_units):
        problems.append(f"lstm_units {list(old_config.model.lstm_units)} vs "
                        f"{list(config.model.lstm_units)}")
    if bool(old_config.model.input_norm) != bool(config.model.input_norm):
        problems.append("input_norm differs")
    if problems:
        raise errors.UserError(f"{workdir}: holds a checkpoint of another config "
                               f"({'; '.join(problems)}); use a new --workdir")


def load_temporal(workdir: str):
    """Rebuilds the temporal network and restores the latest checkpoint.

    Returns:
      (temporal keras.Model, config, model_info dict, step int).
    """
    config, info = load_run_info(workdir)
    model = temporal.from_config(config.model, int(info["feature_dim"]))
    latest = tf.train.latest_checkpoint(checkpoint_dir(workdir))
    if latest is None:
        raise errors.UserError(f"{workdir}: no checkpoint in {checkpoint_dir(workdir)} "
                               f"(train first with ast-net-train)")
    step = tf.Variable(0, dtype=tf.int64)
    try:
        tf.train.Checkpoint(model=model, step=step).restore(latest).expect_partial() \
            .assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
        raise errors.UserError(f"{latest}: checkpoint does not match the config in {workdir} "
                               f"({str(e).splitlines()[0][:200]})")
    return model, config, info, int(step.numpy())
