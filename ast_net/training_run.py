"""What a training work directory holds, and how the other tools read it back.

    <workdir>/config.json        the full config the run used
    <workdir>/model_info.json    feature_dim, backbone that made the features, data_dir, and
                                 the preprocessing contract (`ast_net/contract.py`)
    <workdir>/checkpoints/       ckpt-<step>: tf.train.Checkpoint of the temporal network +
                                 optimizer + step (the latest MAX_TO_KEEP of them)
    <workdir>/checkpoints/best/  ckpt-<step> of the best dev score so far + best.json
    <workdir>/tensorboard/       train/ and dev/ event files
    <workdir>/eval/              per-video CSVs, plots written by ast-net-evaluate

`resolve_checkpoint(workdir, step)` is the one place that decides which checkpoint is read
("latest": the newest intact one, skipping damaged files with a warning; "best"; a step number):
train resumes from it and `load_temporal` restores it. `load_temporal` rebuilds the temporal
network from config.json + model_info.json first; evaluate, export, predict and realtime all use
it, so a checkpoint can only be read with the architecture it was trained with (a mismatch is
one clear error).
"""

from __future__ import annotations

import glob
import json
import os
import re
import time
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

import ml_collections
import tensorflow as tf
from absl import logging

from ast_net import atomic, errors
from ast_net.models import temporal


def checkpoint_dir(workdir: str) -> str:
    return os.path.join(workdir, "checkpoints")


# --- Which checkpoint to restore --------------------------------------------------------------
# The checkpoint files themselves are the truth: `ckpt-<step>.index` + `.data-*` in checkpoints/
# (the latest ones, max_to_keep of them) and in checkpoints/best/ (the best dev score, named by
# best.json). The CheckpointManager state file `checkpoints/checkpoint` is only a cache of it.

LATEST, BEST = "latest", "best"
MAX_TO_KEEP = 3  # Latest checkpoints kept by the trainer (the best one is kept besides).
BEST_JSON = "best.json"
_CKPT_RE = re.compile(r"^ckpt-(\d+)\.index$")


class Found(NamedTuple):
    """A checkpoint to restore: its prefix (`.../ckpt-40`) and the step in its name."""
    path: str
    step: int


def best_dir(workdir: str) -> str:
    return os.path.join(checkpoint_dir(workdir), "best")


def checkpoint_steps(folder: str) -> List[int]:
    """Steps N of the `ckpt-N.index` files in `folder`, ascending (damaged ones included)."""
    names = os.listdir(folder) if os.path.isdir(folder) else []
    return sorted(int(m.group(1)) for m in map(_CKPT_RE.match, names) if m)


def has_checkpoint(workdir: str) -> bool:
    """Whether any checkpoint file (intact or not) is in the work directory."""
    return bool(checkpoint_steps(checkpoint_dir(workdir)) or checkpoint_steps(best_dir(workdir)))


def damage(prefix: str) -> str:
    """'' if the checkpoint `prefix` reads back whole, else what is wrong, naming the file.

    Every tensor is read (a few MB for our models), so a truncated or missing index or data
    file and a flipped byte (TF checks each tensor's CRC32C) are all found here, not in a
    restore deep inside Keras.
    """
    index = prefix + ".index"
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (IndexError, ValueError, tf.errors.OpError) as e:
        return f"{index}: {_first_line(e)}"
    try:
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (IndexError, ValueError, tf.errors.OpError) as e:
        data = sorted(glob.glob(glob.escape(prefix) + ".data-*"))
        return f"{', '.join(data) or prefix + '.data-*'}: {_first_line(e)}"
    return ""


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]


def read_best(workdir: str) -> Optional[dict]:
    """best.json of the work directory ({"step", "metric", "score"}), or None without one."""
    path = os.path.join(best_dir(workdir), BEST_JSON)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            record = json.load(f)
        record["step"] = int(record["step"])
        return record
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise errors.UserError(f"{path}: unreadable ({_first_line(e)}); delete it (and "
                               f"{best_dir(workdir)}) to forget the best checkpoint")


def _available(workdir: str) -> str:
    """'20, 30, 40' plus ' and best (step 30)': the steps --step can name."""
    steps = sorted(set(checkpoint_steps(checkpoint_dir(workdir)))
                   | set(checkpoint_steps(best_dir(workdir))))
    text = ", ".join(map(str, steps)) or "none"
    try:
        best = read_best(workdir)
    except errors.UserError:
        best = None
    return text + (f"; best = step {best['step']}" if best else "")


def parse_step(step) -> Union[str, int]:
    """A --step value: None / "latest" -> LATEST, "best" -> BEST, "40" -> 40; else UserError."""
    if step is None or (isinstance(step, str) and step.strip().lower() in ("", LATEST)):
        return LATEST
    if isinstance(step, str) and step.strip().lower() == BEST:
        return BEST
    try:
        number = int(step)
    except (TypeError, ValueError):
        number = -1
    if number < 0 or (isinstance(step, float) and step != number):
        raise errors.UserError(f"--step must be a step number, 'latest' or 'best', got {step!r}")
    return number


def find_latest(workdir: str) -> Optional[Found]:
    """The newest intact checkpoint of checkpoints/, or None if there is no checkpoint file.

    A damaged one (truncated, missing data, bad checksum) is skipped with a warning naming the
    file; when every one is damaged, UserError (one line).
    """
    folder = checkpoint_dir(workdir)
    steps = checkpoint_steps(folder)
    damaged = []
    for step in reversed(steps):
        prefix = os.path.join(folder, f"ckpt-{step}")
        problem = damage(prefix)
        if not problem:
            for name, problem in damaged:
                logging.warning("damaged checkpoint %s skipped (%s); using ckpt-%d instead",
                                name, problem, step)
            return Found(prefix, step)
        damaged.append((f"ckpt-{step}", problem))
    for name, problem in damaged:
        logging.warning("damaged checkpoint %s (%s)", name, problem)
    if steps:
        raise errors.UserError(
            f"{folder}: every checkpoint is damaged ({', '.join(n for n, _ in damaged)}; see "
            f"the warnings above); restore them from a backup, or remove them to train anew")
    return None


def resolve_checkpoint(workdir: str, step=LATEST) -> Found:
    """The checkpoint that `step` names in `workdir`: what train resumes from and what evaluate,
    export, predict and realtime restore (through `load_temporal`).

    Args:
      workdir: an ast-net-train work directory.
      step: "latest" (or None): the newest intact checkpoint of checkpoints/, skipping damaged
        ones with a warning; "best": the one best.json names in checkpoints/best/; a number:
        the checkpoint of that step (checkpoints/ or checkpoints/best/).
    Raises:
      errors.UserError: no checkpoint, a step that is not there (listing the available ones),
        a damaged best or numbered checkpoint, or every checkpoint damaged.
    """
    step = parse_step(step)
    if step == LATEST:
        found = find_latest(workdir)
        if found is None:
            raise errors.UserError(f"{workdir}: no checkpoint in {checkpoint_dir(workdir)} "
                                   f"(train first with ast-net-train)")
        return found
    if step == BEST:
        best = read_best(workdir)
        if best is None:
            raise errors.UserError(
                f"{workdir}: no best checkpoint (kept when training evaluates on a dev split "
                f"with config.train.best_metric set); available steps: {_available(workdir)}")
        step = best["step"]
        candidates = [os.path.join(best_dir(workdir), f"ckpt-{step}")]
    else:
        candidates = [os.path.join(folder, f"ckpt-{step}")
                      for folder in (checkpoint_dir(workdir), best_dir(workdir))]
    present = [p for p in candidates if os.path.exists(p + ".index")]
    if not present:
        raise errors.UserError(f"{workdir}: no checkpoint of step {step}; available steps: "
                               f"{_available(workdir)}")
    problems = []
    for prefix in present:
        problem = damage(prefix)
        if not problem:
            return Found(prefix, step)
        problems.append(problem)
    raise errors.UserError(f"damaged checkpoint of step {step}: {problems[0]}; available "
                           f"steps: {_available(workdir)}")


def checkpoint_manager(checkpoint: tf.train.Checkpoint, workdir: str,
                       restored: Optional[Found]) -> tf.train.CheckpointManager:
    """The trainer's CheckpointManager (max_to_keep=MAX_TO_KEEP) over checkpoints/, built so it
    only ever deletes checkpoints it supersedes.

    The manager deletes what its state file `checkpoints/checkpoint` lists. That file is
    rewritten first from the files themselves: of the checkpoints it listed, those still on disk
    and older than `restored` keep their place in the retention queue; `restored` becomes the
    latest. A checkpoint the state file did not list (it was missing or unreadable, or lists
    other files) is never queued, so never deleted: the manager only deletes what this and
    earlier runs wrote and recorded. Without a checkpoint a stale state file is removed.
    """
    folder = checkpoint_dir(workdir)
    state_path = os.path.join(folder, "checkpoint")
    if restored is None:
        if os.path.exists(state_path):
            os.remove(state_path)
    else:
        state = tf.train.get_checkpoint_state(folder)  # None when missing or unreadable.
        now = time.time()
        preserved = min(state.last_preserved_timestamp, now - 1) if state else now - 1
        listed = dict(zip(state.all_model_checkpoint_paths,
                          state.all_model_checkpoint_timestamps)) if state else {}
        keep = []
        for path, stamp in listed.items():
            m = _CKPT_RE.match(os.path.basename(path) + ".index")
            if (m and int(m.group(1)) < restored.step and os.path.dirname(path) in ("", folder)
                    and os.path.exists(os.path.join(folder, os.path.basename(path)) + ".index")):
                keep.append((os.path.basename(path), stamp))
        restored_name = os.path.basename(restored.path)
        keep.sort(key=lambda kv: int(kv[0].rsplit("-", 1)[1]))
        # A timestamp at or before `preserved` keeps a checkpoint out of the deletion queue.
        restored_stamp = next((s for p, s in listed.items()
                               if os.path.basename(p) == restored_name), preserved)
        keep.append((restored_name, restored_stamp))
        unchanged = state is not None and (
            os.path.basename(state.model_checkpoint_path) == restored_name
            and [os.path.basename(p) for p in state.all_model_checkpoint_paths]
            == [p for p, _ in keep]
            and list(state.all_model_checkpoint_timestamps) == [s for _, s in keep]
            and state.last_preserved_timestamp == preserved)
        if unchanged:  # A plain resume rewrites nothing.
            return tf.train.CheckpointManager(checkpoint, folder, max_to_keep=MAX_TO_KEEP)
        tf.compat.v1.train.update_checkpoint_state(  # An absolute folder keeps names as given.
            os.path.abspath(folder), restored_name, all_model_checkpoint_paths=[p for p, _ in keep],
            all_model_checkpoint_timestamps=[s for _, s in keep],
            last_preserved_timestamp=preserved)
    return tf.train.CheckpointManager(checkpoint, folder, max_to_keep=MAX_TO_KEEP)


def best_score(scores: Dict[str, float], metric: str) -> float:
    """The score `metric` gives dev `scores` ("valence/mean_cc", ... of
    `metrics.summary_scalars`): "mean_cc" / "mean_ccc" = the mean over valence and arousal of
    the per-video mean CC / CCC. NaN when a value is missing or undefined."""
    values = [scores.get(f"{dim}/{metric}", float("nan")) for dim in ("valence", "arousal")]
    return float(sum(values) / len(values))


class BestKeeper:
    """Keeps the checkpoint of the best dev score in checkpoints/best/ (model + step) and
    best.json ({"step", "metric", "score"}): the new checkpoint is written first, then best.json
    (atomically), then the superseded best checkpoint is deleted, so a crash at any point
    leaves a best.json naming an intact checkpoint. The latest-retention never touches it.
    """

    def __init__(self, workdir: str, metric: str, **trackables):
        self.workdir, self.metric = workdir, metric
        self.checkpoint = tf.train.Checkpoint(**trackables)
        _ = self.checkpoint.save_counter  # Created now, so `write` stores it as `save` does.
        record = read_best(workdir) if metric else None
        same = record is not None and record.get("metric") == metric
        self.score = float(record["score"]) if same else float("-inf")

    def update(self, scores: Dict[str, float], step: int) -> bool:
        """Saves the model as the best one if `scores` beat the best so far; returns whether."""
        if not self.metric:
            return False
        score = best_score(scores, self.metric)
        if not score > self.score:  # NaN never wins.
            return False
        folder = best_dir(self.workdir)
        os.makedirs(folder, exist_ok=True)
        self.checkpoint.write(os.path.join(folder, f"ckpt-{step}"))
        atomic.write_json(os.path.join(folder, BEST_JSON),
                          {"step": int(step), "metric": self.metric, "score": score})
        for old in checkpoint_steps(folder):
            if old != step:
                for path in glob.glob(glob.escape(os.path.join(folder, f"ckpt-{old}")) + ".*"):
                    os.remove(path)
        self.score = score
        return True


def write_json(path: str, obj) -> None:
    """Writes `obj` as JSON atomically (`ast_net.atomic`): never a half file."""
    atomic.write_json(path, obj)


def save_run_info(workdir: str, config, feature_dim: int, backbone: str,
                  contract=None) -> None:
    """Writes config.json and model_info.json (atomically).

    `contract`: the preprocessing contract dict (`ast_net.contract`) of the training features,
    stored as model_info.json's "contract" (predict, realtime and export resolve against it).
    """
    os.makedirs(workdir, exist_ok=True)
    write_json(os.path.join(workdir, "config.json"), json.loads(config.to_json_best_effort()))
    info = {"feature_dim": int(feature_dim), "backbone": backbone,
            "data_dir": config.data.data_dir}
    if contract is not None:
        info["contract"] = contract
    write_json(os.path.join(workdir, "model_info.json"), info)


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
    """UserError when a work directory holds a checkpoint of another architecture or features.

    A work directory without a checkpoint file (a run that failed before its first checkpoint)
    accepts any config: its config.json is simply rewritten by the next run.
    """
    if not os.path.exists(os.path.join(workdir, "model_info.json")) or not has_checkpoint(workdir):
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


def load_temporal(workdir: str, step=LATEST):
    """Rebuilds the temporal network and restores a checkpoint (`resolve_checkpoint`).

    Args:
      workdir: an ast-net-train work directory.
      step: "latest" (default; the newest intact checkpoint), "best" or a step number.
    Returns:
      (temporal keras.Model, config, model_info dict, step int).
    """
    config, info = load_run_info(workdir)
    found = resolve_checkpoint(workdir, step)
    model = temporal.from_config(config.model, int(info["feature_dim"]))
    step_var = tf.Variable(0, dtype=tf.int64)
    try:
        tf.train.Checkpoint(model=model, step=step_var).restore(found.path).expect_partial() \
            .assert_existing_objects_matched()
    except (AssertionError, ValueError, IndexError, tf.errors.OpError) as e:
        raise errors.UserError(f"{found.path}: checkpoint does not match the config in "
                               f"{workdir} ({str(e).splitlines()[0][:200]})")
    return model, config, info, int(step_var.numpy())
