"""Training of the Siamese temporal network: `train_and_evaluate(config, workdir)`.

Runs in loops of `config.train.steps_per_loop` steps (one compiled Keras `fit` call each). The
data of a loop is the seeded clip stream of `ast_net.data.clips` with seed (config.seed, step at
the loop start), so a run that was stopped and re-run sees the same batches as an uninterrupted
one. A tf.train.Checkpoint (temporal network, optimizer, step) is written every
`checkpoint_every` steps and at the end; re-running the same command restores the latest one and
continues to `num_steps`.

TensorBoard (`<workdir>/tensorboard`): `train/` gets, every `config.train.log_every` steps (and
at the last step of a call), each loss term averaged over the steps since the previous point
(`loss/label`, `loss/trend`, `loss/local`, `loss/global`, `loss/siamese`, `loss/total`),
`learning_rate` and `steps_per_second`. `dev/` gets, at each dev evaluation, the same loss tags
on a fixed sample of dev twin clips (so TensorBoard overlays train and dev), the evaluation
table's per-dimension scalars (`dev/valence/mean_cc`, `max_cc`, `min_cc`, `mean_ccc`,
`pooled_ccc`, `rmse`, `cc_undefined`; see `ast_net.metrics`) and `dev/curves`, predicted vs true
curves of up to 4 dev videos with their CC in the title. The run's hyperparameters (loss
weights, terms on, label loss, LSTM units, learning rate, seed, ...) go once per run to the
HParams dashboard (written in `tensorboard/` itself, so `tensorboard --logdir` over an ablation
work directory compares its rows).

`config.train.distribute` picks the strategy (`ast_net.distribute`); `batch_size` is the global
batch under each. In a multi-worker job every worker runs this same function: only the chief
writes the work directory (run info, checkpoints, TensorBoard), every worker restores from it.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Dict, Optional

import keras
import tensorflow as tf
from absl import logging
from tensorboard.plugins.hparams import api as hparams_api

from ast_net import (
    config_check,
    contract,
    distribute,
    errors,
    evaluate_lib,
    losses,
    metrics,
    training_run,
)
from ast_net.data import clips, records, schema
from ast_net.models import temporal
from ast_net.progress import bar as progress_bar

get_strategy = distribute.get_strategy  # `config.train.distribute` -> tf.distribute.Strategy


def _backbone_of(files) -> str:
    for raw in tf.data.TFRecordDataset(files[:1]).take(1):
        value = schema.describe(raw.numpy()).get(schema.BACKBONE, b"")
        return value.decode() if isinstance(value, bytes) else str(value or "")
    return ""


def training_contract(config, feature_dim: int, backbone: str,
                      workdir: str) -> contract.Contract:
    """The preprocessing contract of this run: the feature manifest's (extract-features writes
    it into `data_dir/manifest.json`) plus N and Δt; checked against the records and against
    the contract of a checkpoint already in `workdir` (a resumed run must not switch data)."""
    found = contract.read_manifest(config.data.data_dir) or contract.Contract()
    mine = contract.Contract(backbone=backbone or None, feature_dim=int(feature_dim),
                             clip_length=int(config.data.clip_length),
                             frame_step=int(config.data.frame_step))
    contract.check(found, mine, os.path.join(config.data.data_dir, "manifest.json"),
                   hint="the manifest does not describe these feature records")
    run = found.merged(mine)
    info_path = os.path.join(workdir, "model_info.json")
    if os.path.exists(info_path) and training_run.has_checkpoint(workdir):  # else: a new run
        _, info = training_run.load_run_info(workdir)
        contract.check(contract.Contract.from_dict(info.get(contract.KEY)), run, workdir,
                       what="holds a checkpoint trained on data of another preprocessing "
                            "contract", hint="use a new --workdir")
    return run


def _write_scalars(writer, step: int, values: Dict[str, float], prefix: str = "") -> None:
    with writer.as_default(step=step):
        for k, v in values.items():
            tf.summary.scalar(prefix + k, float(v))
    writer.flush()


PLOT_VIDEOS = 4  # Dev videos drawn (prediction vs label) at each dev evaluation.
_TERM_LETTERS = {"label": "La", "trend": "T", "local": "Lo", "global": "G", "siamese": "S"}


class ScalarLogger(keras.callbacks.Callback):
    """Writes train scalars every `log_every` steps (and at the last step of each `fit` call):
    every loss term averaged over the steps since the previous point, the learning rate and
    steps per second. The model's loss trackers are reset after each point."""

    def __init__(self, writer, log_every: int, optimizer):
        super().__init__()
        self.writer = writer
        self.log_every = max(1, int(log_every))
        self.optimizer = optimizer
        self.latest: Dict[str, float] = {}
        self.start(0, 0)

    def start(self, first_step: int, end_step: int) -> None:
        """Call before each `fit`: it trains steps first_step + 1 .. end_step."""
        self._first, self._end = first_step, end_step
        self._mark_step, self._mark_time = first_step, time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        step = self._first + batch + 1
        if step % self.log_every and step != self._end:
            return
        now = time.perf_counter()
        self.latest = {k: float(v) for k, v in (logs or {}).items()}
        values = {f"loss/{k}": v for k, v in self.latest.items()}
        values["learning_rate"] = float(keras.ops.convert_to_numpy(self.optimizer.learning_rate))
        values["steps_per_second"] = (step - self._mark_step) / max(now - self._mark_time, 1e-9)
        _write_scalars(self.writer, step, values)
        self.model.reset_metrics()  # The next point averages the steps after this one.
        self._mark_step, self._mark_time = step, now


def hparams_of(config) -> Dict[str, object]:
    """The HParams-dashboard values of a run (bool / int / float / str only)."""
    loss = config.loss
    on = [t for t in losses.TERMS if float(loss[f"{t}_weight"])]
    values: Dict[str, object] = {f"loss/{t}_weight": float(loss[f"{t}_weight"])
                                 for t in losses.TERMS}
    values.update({
        "loss/terms": " + ".join(_TERM_LETTERS[t] for t in on) or "none",
        "loss/label": str(loss.get("label", "mse")),
        "loss/num_intervals": int(loss.num_intervals),
        "loss/warmup_steps": int(loss.get("warmup_steps", 0)),
        "model/lstm_units": ",".join(str(int(u)) for u in config.model.lstm_units),
        "train/learning_rate": float(config.train.learning_rate),
        "train/batch_size": int(config.train.batch_size),
        "train/num_steps": int(config.train.num_steps),
        "data/clip_length": int(config.data.clip_length),
        "data/frame_step": int(config.data.frame_step),
        "seed": int(config.seed),
    })
    return values


def write_hparams(tb_root: str, config) -> None:
    """Writes the run's hparams once: skipped when `tb_root` already holds an event file."""
    os.makedirs(tb_root, exist_ok=True)
    if any(name.startswith("events.out.tfevents") for name in os.listdir(tb_root)):
        return
    writer = tf.summary.create_file_writer(tb_root)
    with writer.as_default():
        hparams_api.hparams(hparams_of(config))
    writer.close()


def dev_losses(siamese_model, files, feature_dim, config) -> Dict[str, float]:
    """Mean loss terms over `config.train.eval_loss_batches` batches of dev twin clips (a
    seeded, hence fixed, shuffle; 0 = every dev clip); {} when the dev split has no clip."""
    batches = int(config.train.get("eval_loss_batches", 50))
    data = clips.clip_dataset(files, feature_dim, config.data,
                              batch_size=int(config.train.batch_size), seed=int(config.seed),
                              repeat=False, shuffle=batches > 0)
    data = distribute.shard_by_data(data)  # Multi-worker: each worker its part of each batch.
    if batches > 0:
        data = data.take(batches)
    if not any(True for _ in data.take(1)):
        return {}
    with warnings.catch_warnings():  # Keras warns when a dataset of unknown length ends.
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        results = siamese_model.evaluate(data, verbose=0, return_dict=True)
    return {k: float(v) for k, v in results.items()}


def evaluate_dev(model, files, feature_dim, config, writer, step,
                 siamese_model=None) -> Dict[str, float]:
    """Dev evaluation: the evaluation table's scalars per dimension (`metrics.summary_scalars`:
    "valence/mean_cc", ...), the loss terms ("loss/total", ... when `siamese_model` is given)
    and curve plots of up to `PLOT_VIDEOS` videos, written to `writer`; returns the scalars."""
    _, summary, plotted = evaluate_lib.evaluate_model(model, files, feature_dim, config,
                                                      plot_videos=PLOT_VIDEOS)
    values = metrics.summary_scalars(summary)
    _write_scalars(writer, step, values, prefix="dev/")
    if siamese_model is not None:
        dev_loss = {f"loss/{k}": v for k, v in
                    dev_losses(siamese_model, files, feature_dim, config).items()}
        _write_scalars(writer, step, dev_loss)
        values.update(dev_loss)
    if plotted:
        images = [tf.io.decode_png(evaluate_lib.plot_video_png(*vp), channels=3)
                  for vp in plotted]
        with writer.as_default(step=step):
            tf.summary.image("dev/curves", tf.stack(images), max_outputs=PLOT_VIDEOS,
                             description="predicted (red) vs true (black) curves of dev "
                                         "videos " + ", ".join(v.video_id for v, _ in plotted))
        writer.flush()
    return values


def train_and_evaluate(config, workdir: str, stop_after_steps: Optional[int] = None) -> Dict:
    """Trains (or resumes) in `workdir`; returns the final step, last train losses, dev scores.

    Args:
      config: an AST-Net ConfigDict (see `ast_net/configs/default.py`).
      workdir: where checkpoints, TensorBoard logs and run info go.
      stop_after_steps: stop this call after that many new steps (used to test resuming);
        None trains to config.train.num_steps.
    """
    config_check.validate(config)  # Before anything is written: a bad value is one line each.
    # First TF call of the run: a multi-worker strategy sets up collective ops when it is made.
    strategy = distribute.get_strategy(config.train.distribute)
    chief = distribute.is_chief(strategy)  # Only the chief writes into `workdir`.
    distribute.check_batch(strategy, int(config.train.batch_size))
    keras.utils.set_random_seed(int(config.seed))
    # `~` in paths (a shell leaves `--flag=~/x` alone); config.json then holds the real path.
    if config.data.data_dir:
        config.data.data_dir = os.path.expanduser(config.data.data_dir)
    workdir = os.path.expanduser(workdir)
    train_files = records.list_files(config.data.data_dir, config.data.train_split)
    feature_dim = records.validate_files(train_files)
    # Parses every training record once: a bad one is an error naming it before training.
    clips.check_clips_fit(train_files, config.data, feature_dim)
    dev_files = None
    if config.data.eval_split:
        try:
            dev_files = records.list_files(config.data.data_dir, config.data.eval_split)
            records.validate_files(dev_files)
            clips.record_lengths(dev_files, feature_dim)
        except errors.UserError as e:
            dev_files = None
            logging.warning("no dev evaluation during training: %s", e)
    training_run.check_compatible(workdir, config, feature_dim)
    backbone = _backbone_of(train_files)
    run_contract = training_contract(config, feature_dim, backbone, workdir)
    if chief:
        training_run.save_run_info(workdir, config, feature_dim, backbone,
                                  run_contract.to_dict())

    with strategy.scope():
        net = temporal.from_config(config.model, feature_dim)
        model = distribute.model_class(strategy)(net, config.loss, name="ast_net")
        optimizer = keras.optimizers.Adam(float(config.train.learning_rate),
                                          global_clipnorm=config.train.grad_clip_norm or None)
        model.compile(optimizer=optimizer, jit_compile=bool(config.train.jit_compile))
        optimizer.build(net.trainable_variables)
    step_var = tf.Variable(0, dtype=tf.int64, trainable=False)  # Not mirrored: a host counter.
    ckpt = tf.train.Checkpoint(model=net, optimizer=optimizer, step=step_var)
    # Resumes from the newest intact checkpoint file (damaged ones are skipped with a warning),
    # whatever the manager's state file says; the manager only deletes what it supersedes.
    resume = training_run.find_latest(workdir)
    manager = training_run.checkpoint_manager(ckpt, workdir, resume) if chief else None
    worker = distribute.worker_name(strategy)
    if resume:
        ckpt.restore(resume.path).assert_existing_objects_matched()
        logging.info("resumed from %s at step %d", resume.path, int(step_var))
        print(f"{worker + ': ' if worker else ''}resuming from step {int(step_var)} "
              f"({resume.path})", flush=True)
    distribute.check_same_step(strategy, int(step_var))
    best_metric = str(config.train.get("best_metric", "mean_cc") or "") if chief else ""
    best = training_run.BestKeeper(workdir, best_metric, model=net, step=step_var)

    tb_root = os.path.join(workdir, "tensorboard")
    if chief:
        write_hparams(tb_root, config)
        tb_train = tf.summary.create_file_writer(os.path.join(tb_root, "train"))
        tb_dev = tf.summary.create_file_writer(os.path.join(tb_root, "dev"))
    else:
        tb_train = tb_dev = tf.summary.create_noop_writer()
    logger = ScalarLogger(tb_train, int(config.train.get("log_every", 10)), optimizer)
    num_steps = int(config.train.num_steps)
    target = num_steps if stop_after_steps is None else min(
        num_steps, int(step_var) + int(stop_after_steps))
    batch = int(config.train.batch_size)
    per_loop = int(config.train.steps_per_loop)
    ckpt_every = int(config.train.checkpoint_every)
    eval_every = int(config.train.eval_every)
    # Label-loss warm-up (see ast_net.models.siamese); only when the label term is on.
    warmup = int(config.loss.get("warmup_steps", 0)) if config.loss.label_weight else 0
    last_losses: Dict[str, float] = {}
    dev_scores: Dict[str, float] = {}

    bar = progress_bar(total=num_steps, initial=int(step_var), desc="train", unit="step",
                       dynamic_ncols=True, enabled=chief)
    try:
        with records.schema_errors(train_files, feature_dim):
            while int(step_var) < target:
                step = int(step_var)
                boundary = min(target, (step // per_loop + 1) * per_loop,
                               (step // ckpt_every + 1) * ckpt_every)
                if step < warmup:
                    boundary = min(boundary, warmup)
                model.aux_scale.assign(0.0 if step < warmup else 1.0)
                n = boundary - step
                data = clips.clip_dataset(train_files, feature_dim, config.data, batch_size=batch,
                                          seed=(int(config.seed) * 1_000_003 + step) % (2**31))
                data = distribute.shard_by_data(data)
                t0 = time.perf_counter()
                logger.start(step, boundary)
                model.fit(data, steps_per_epoch=n, epochs=1, verbose=0, shuffle=False,
                          callbacks=[logger])
                elapsed = time.perf_counter() - t0
                logging.info("steps %d-%d: %.2f s", step, step + n, elapsed)
                step_var.assign_add(n)
                step = int(step_var)
                last_losses = dict(logger.latest)
                bar.update(n)
                bar.set_postfix(loss=f"{last_losses.get('total', float('nan')):.4f}")
                if step % ckpt_every == 0 or step >= target:
                    if chief:
                        manager.save(checkpoint_number=step)
                    else:
                        distribute.discard_save(ckpt)
                if dev_files and (step % eval_every == 0 or step >= num_steps):
                    dev_scores = evaluate_dev(net, dev_files, feature_dim, config, tb_dev, step,
                                              siamese_model=model)
                    best.update(dev_scores, step)  # checkpoints/best/ when the dev score is best
                    bar.write(f"step {step}: " + ", ".join(
                        f"{k} {dev_scores[k]:.3f}" for k in dev_scores
                        if k.endswith(("/mean_cc", "/mean_ccc")) or k == "loss/total"))
    except tf.errors.UnavailableError as e:  # A peer died: one line, not a TF trace.
        if distribute.is_multi_worker(strategy):
            raise distribute.lost_worker(e, int(step_var)) from None
        raise
    finally:
        bar.close()
    return {"step": int(step_var), "losses": last_losses, "dev": dev_scores}
