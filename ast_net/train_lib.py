"""Training of the Siamese temporal network: `train_and_evaluate(config, workdir)`.

Runs in loops of `config.train.steps_per_loop` steps (one compiled Keras `fit` call each). The
data of a loop is the seeded clip stream of `ast_net.data.clips` with seed (config.seed, step at
the loop start), so a run that was stopped and re-run sees the same batches as an uninterrupted
one. A tf.train.Checkpoint (temporal network, optimizer, step) is written every
`checkpoint_every` steps and at the end; re-running the same command restores the latest one and
continues to `num_steps`. TensorBoard gets every loss term (train/) and dev CC / CCC per
dimension plus a plot of predicted vs true curves of one dev video (dev/).
"""

from __future__ import annotations

import os
import time
from typing import Dict, Optional

import keras
import tensorflow as tf
from absl import logging

from ast_net import errors, evaluate_lib
from ast_net import workdir as workdir_lib
from ast_net.data import clips, records, schema
from ast_net.models import siamese, temporal


def get_strategy(name: str) -> tf.distribute.Strategy:
    """"auto": MirroredStrategy when several GPUs are visible; "mirrored": over all visible
    devices (GPUs, else the logical CPUs); "none": the default strategy."""
    gpus = tf.config.list_logical_devices("GPU")
    if name == "none" or (name == "auto" and len(gpus) < 2):
        return tf.distribute.get_strategy()
    if name in ("auto", "mirrored"):
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    raise errors.UserError(f"config.train.distribute must be auto, none or mirrored, got {name!r}")


def _backbone_of(files) -> str:
    for raw in tf.data.TFRecordDataset(files[:1]).take(1):
        value = schema.describe(raw.numpy()).get(schema.BACKBONE, b"")
        return value.decode() if isinstance(value, bytes) else str(value or "")
    return ""


def _write_scalars(writer, step: int, values: Dict[str, float], prefix: str = "") -> None:
    with writer.as_default(step=step):
        for k, v in values.items():
            tf.summary.scalar(prefix + k, float(v))
    writer.flush()


def evaluate_dev(model, files, feature_dim, config, writer, step) -> Dict[str, float]:
    """Dev CC / CCC per dimension (TensorBoard scalars and a curve plot); returns the scalars."""
    per_video, summary, first = evaluate_lib.evaluate_model(model, files, feature_dim, config)
    values = {}
    for dim, row in summary.iterrows():
        values[f"{dim}/mean_cc"] = row["Mean CC"]
        values[f"{dim}/mean_ccc"] = row["Mean CCC"]
    _write_scalars(writer, step, values, prefix="dev/")
    if first is not None:
        png = evaluate_lib.plot_video_png(*first)
        with writer.as_default(step=step):
            image = tf.expand_dims(tf.io.decode_png(png, channels=3), 0)
            tf.summary.image("dev/curves", image)
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
    workdir_lib.check_compatible(workdir, config, feature_dim)
    workdir_lib.save_run_info(workdir, config, feature_dim, _backbone_of(train_files))

    strategy = get_strategy(config.train.distribute)
    with strategy.scope():
        net = temporal.from_config(config.model, feature_dim)
        model = siamese.SiameseTemporalModel(net, config.loss, name="ast_net")
        optimizer = keras.optimizers.Adam(float(config.train.learning_rate),
                                          global_clipnorm=config.train.grad_clip_norm or None)
        model.compile(optimizer=optimizer, jit_compile=bool(config.train.jit_compile))
        optimizer.build(net.trainable_variables)
    step_var = tf.Variable(0, dtype=tf.int64, trainable=False)  # Not mirrored: a host counter.
    ckpt = tf.train.Checkpoint(model=net, optimizer=optimizer, step=step_var)
    manager = tf.train.CheckpointManager(ckpt, workdir_lib.checkpoint_dir(workdir), max_to_keep=3)
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        logging.info("resumed from %s at step %d", manager.latest_checkpoint, int(step_var))
        print(f"resuming from step {int(step_var)} ({manager.latest_checkpoint})", flush=True)

    tb_train = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard", "train"))
    tb_dev = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard", "dev"))
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

    from tqdm import tqdm
    bar = tqdm(total=num_steps, initial=int(step_var), desc="train", unit="step",
               dynamic_ncols=True, disable=None)
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
                t0 = time.perf_counter()
                history = model.fit(data, steps_per_epoch=n, epochs=1, verbose=0, shuffle=False)
                elapsed = time.perf_counter() - t0
                logging.info("steps %d-%d: %.2f s", step, step + n, elapsed)
                step_var.assign_add(n)
                step = int(step_var)
                last_losses = {k: float(v[-1]) for k, v in history.history.items()}
                _write_scalars(tb_train, step, {**{f"loss/{k}": v for k, v in last_losses.items()},
                                                "steps_per_second": n / elapsed})
                bar.update(n)
                bar.set_postfix(loss=f"{last_losses.get('total', float('nan')):.4f}")
                if step % ckpt_every == 0 or step >= target:
                    manager.save(checkpoint_number=step)
                if dev_files and (step % eval_every == 0 or step >= num_steps):
                    dev_scores = evaluate_dev(net, dev_files, feature_dim, config, tb_dev, step)
                    bar.write(f"step {step}: " + ", ".join(
                        f"{k} {v:.3f}" for k, v in dev_scores.items()))
    finally:
        bar.close()
    return {"step": int(step_var), "losses": last_losses, "dev": dev_scores}
