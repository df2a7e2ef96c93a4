"""Fine-tunes an attribute CNN on FER2013: the paper's first stage (section 3.2).

`train_and_evaluate(config, workdir)` reads FER2013 through its TFDS builder (48x48 gray faces),
augments them (flip, small rotation / shift / zoom, brightness, contrast: TF stateless ops, so a
seed fixes them), feeds them through the backbone's own `Backbone.preprocess` (resize to the
backbone's input, gray to 3 channels for VGG16, its normalisation) and trains the 7-way softmax
with Keras `fit`. Training runs in loops of `steps_per_loop` steps; after each loop a
tf.train.Checkpoint of the model, the optimizer and the loop counter is saved by the temporal
trainer's CheckpointManager (`workdir/checkpoints/ckpt-<loops done>`, see
`ast_net.training_run`) and
TensorBoard scalars go to `workdir/tensorboard/`; re-running the same command resumes after the
last finished loop (from the newest intact checkpoint). At the end the accuracy on
`eval_split` (PublicTest) goes to `workdir/metrics.json` and the fine-tuned network to the file
`load_backbone` reads: `vgg16_fer2013.h5` (VGG-Face layout) or `mini_xception_fer2013.keras`.
"""

from __future__ import annotations

import math
import os

import keras
import ml_collections
import tensorflow as tf
from absl import logging

from ast_net import errors, training_run
from ast_net.data import fer2013
from ast_net.models import backbones


def export_path(config: ml_collections.ConfigDict, workdir: str) -> str:
    """Where the fine-tuned network is written (the file load_backbone reads)."""
    return os.path.join(workdir, backbones.get(config.backbone).EXPORT_NAME)


def augment(image, seed, aug: ml_collections.ConfigDict):
    """Random flip / rotation / shift / zoom / brightness / contrast of one uint8 [H, W, C] face.

    Stateless: the same `seed` ([2] int) gives the same result. Returns uint8 [H, W, C].
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 7)
    x = tf.cast(image, tf.float32)
    if aug.flip:
        x = tf.image.stateless_random_flip_left_right(x, seeds[0])
    h = tf.cast(tf.shape(x)[0], tf.float32)
    w = tf.cast(tf.shape(x)[1], tf.float32)

    def uniform(i, limit):
        return tf.random.stateless_uniform([], seeds[i], -limit, limit)

    angle = uniform(1, aug.max_rotation_deg * math.pi / 180.0)
    scale = 1.0 + uniform(2, aug.max_zoom)
    tx, ty = uniform(3, aug.max_shift) * w, uniform(4, aug.max_shift) * h
    # Output pixel p maps to input A (p - c) + c - t: rotation by `angle`, zoom by `scale`.
    cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
    a00, a01 = tf.cos(angle) / scale, -tf.sin(angle) / scale
    a10, a11 = tf.sin(angle) / scale, tf.cos(angle) / scale
    transform = tf.stack([a00, a01, cx - a00 * cx - a01 * cy - tx,
                          a10, a11, cy - a10 * cx - a11 * cy - ty, 0.0, 0.0])
    x = tf.raw_ops.ImageProjectiveTransformV3(
        images=x[None], transforms=transform[None], output_shape=tf.shape(x)[:2],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")[0]
    x = x + uniform(5, aug.max_brightness) * 255.0
    mean = tf.reduce_mean(x)
    x = (x - mean) * (1.0 + uniform(6, aug.max_contrast)) + mean
    return tf.cast(tf.round(tf.clip_by_value(x, 0.0, 255.0)), tf.uint8)


def load_splits(config: ml_collections.ConfigDict):
    """(train, eval) FER2013 splits as (uint8 image, label) tf.data, prepared once by TFDS.

    Raises:
      errors.UserError: FER2013 not prepared in data_dir and no fer2013.csv in manual_dir, or
        a split the csv has no rows of.
    """
    data = config.data
    kwargs = dict(data_dir=data.data_dir or None, manual_dir=data.manual_dir or None)
    return (fer2013.load(data.train_split, **kwargs), fer2013.load(data.eval_split, **kwargs))


def make_datasets(config: ml_collections.ConfigDict, backbone: backbones.Backbone,
                  seed: int):
    """(train, eval) tf.data: (preprocessed float images, int labels) batches."""
    data = config.data
    train, evaluation = load_splits(config)
    if data.max_train_examples:
        train = train.take(data.max_train_examples)
    if data.max_eval_examples:
        evaluation = evaluation.take(data.max_eval_examples)

    aug = config.augment
    train = tf.data.Dataset.zip(
        (train.cache().repeat().shuffle(data.shuffle_buffer, seed=seed),
         tf.data.Dataset.random(seed=seed).batch(2)))
    train = train.map(lambda ex, s: (augment(ex[0], s, aug), ex[1]),
                      num_parallel_calls=tf.data.AUTOTUNE)
    train = train.batch(config.train.batch_size, drop_remainder=True)
    evaluation = evaluation.batch(config.train.eval_batch_size)

    def prep(images, labels):
        return backbone.preprocess(images), labels

    train = train.map(prep, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    evaluation = evaluation.map(prep, num_parallel_calls=tf.data.AUTOTUNE).cache()
    return train, evaluation.prefetch(tf.data.AUTOTUNE)


def build_backbone(config: ml_collections.ConfigDict) -> backbones.Backbone:
    """The trainable backbone, initialised from `config.model.init_weights`."""
    if config.backbone not in backbones.BACKBONES:
        raise errors.UserError(
            f"config.backbone={config.backbone!r}; expected one of {backbones.NAMES}")
    model, mean = backbones.get(config.backbone).build_trainable(config, backbones.EMOTIONS)
    return backbones.wrap(config.backbone, model, mean, fer_head=True)


def _optimizer(train: ml_collections.ConfigDict):
    schedule = keras.optimizers.schedules.CosineDecay(
        train.learning_rate, decay_steps=train.num_steps, alpha=0.01)
    wd = train.weight_decay or None
    if train.optimizer == "sgd":
        opt = keras.optimizers.SGD(schedule, momentum=train.momentum, weight_decay=wd)
    elif train.optimizer == "adam":
        opt = keras.optimizers.Adam(schedule, weight_decay=wd)
    else:
        raise errors.UserError(f"config.train.optimizer={train.optimizer!r}; expected sgd|adam")
    if train.mixed_precision:
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt


class _Checkpoint(keras.callbacks.Callback):
    """After every loop: `loops` set to the loops done, then one CheckpointManager save."""

    def __init__(self, manager: tf.train.CheckpointManager, loops: tf.Variable):
        super().__init__()
        self.manager, self.loops = manager, loops

    def on_epoch_end(self, epoch, logs=None):
        self.loops.assign(epoch + 1)
        self.manager.save(checkpoint_number=epoch + 1)


def _checkpoint(model: keras.Model, workdir: str):
    """(CheckpointManager, loops-done variable) of a tf.train.Checkpoint of model, optimizer
    and loop counter in `workdir/checkpoints/` (`ckpt-<loops>`), restored from the newest intact
    one if any: the temporal trainer's mechanism (`workdir.find_latest`,
    `workdir.checkpoint_manager`)."""
    loops = tf.Variable(0, dtype=tf.int64, trainable=False)
    model.optimizer.build(model.trainable_variables)
    ckpt = tf.train.Checkpoint(model=model, optimizer=model.optimizer, loops=loops)
    found = training_run.find_latest(workdir)
    manager = training_run.checkpoint_manager(ckpt, workdir, found)
    if found:
        try:
            ckpt.restore(found.path).assert_existing_objects_matched()
        except (AssertionError, ValueError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise errors.UserError(f"{found.path}: checkpoint does not fit this config "
                                   f"({first}); use a new --workdir") from None
    return manager, loops


def export(config: ml_collections.ConfigDict, backbone: backbones.Backbone, path: str) -> None:
    """Writes the fine-tuned network as the file `load_backbone` reads (atomically)."""
    backbones.get(backbone.name).save(backbone.probs_model, path, mean_bgr=backbone.mean_bgr,
                                      class_names=backbones.EMOTIONS)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       verbose: int = 1) -> dict:
    """Fine-tunes, checkpoints, evaluates and exports; returns the metrics written.

    Re-running with the same workdir resumes after the last finished loop; a finished run
    only re-evaluates and re-exports.
    """
    train_cfg = config.train
    if train_cfg.num_steps % train_cfg.steps_per_loop:
        raise errors.UserError(
            f"config.train.num_steps={train_cfg.num_steps} must be a multiple of "
            f"config.train.steps_per_loop={train_cfg.steps_per_loop}")
    load_splits(config)  # A missing fer2013.csv fails now, not after building the network.
    os.makedirs(workdir, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    backbone = build_backbone(config)
    module = backbones.get(config.backbone)
    model = module.trainable_model(backbone.probs_model)  # mini_xception: avoids a crash.
    model.compile(optimizer=_optimizer(train_cfg),
                  loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                  jit_compile=train_cfg.jit_compile)
    ckpt_dir = training_run.checkpoint_dir(workdir)
    manager, loops = _checkpoint(model, workdir)
    loops_done = int(loops.numpy())
    total_loops = train_cfg.num_steps // train_cfg.steps_per_loop
    if loops_done:
        logging.info("resuming after loop %d of %d from %s", loops_done, total_loops, ckpt_dir)
    train_ds, eval_ds = make_datasets(config, backbone, seed=config.seed + loops_done)
    history = {}
    if loops_done < total_loops:
        callbacks = [
            _Checkpoint(manager, loops),
            keras.callbacks.TensorBoard(os.path.join(workdir, "tensorboard")),
        ]
        result = model.fit(
            train_ds, initial_epoch=loops_done, epochs=total_loops,
            steps_per_epoch=train_cfg.steps_per_loop, validation_data=eval_ds,
            validation_freq=train_cfg.eval_every_loops, callbacks=callbacks, verbose=verbose,
            shuffle=False)  # The dataset is shuffled (seeded) already.
        history = {k: [float(v) for v in vs] for k, vs in result.history.items()}
    loss, accuracy = model.evaluate(eval_ds, verbose=0)
    module.copy_weights(model, backbone.probs_model)
    path = export_path(config, workdir)
    export(config, backbone, path)
    metrics = {
        "backbone": config.backbone, "steps": train_cfg.num_steps,
        "resumed_after_loop": loops_done, f"{config.data.eval_split}_accuracy": float(accuracy),
        f"{config.data.eval_split}_loss": float(loss), "history": history, "export": path,
    }
    training_run.write_json(os.path.join(workdir, "metrics.json"), metrics)
    logging.info("%s accuracy %.4f; fine-tuned weights: %s", config.data.eval_split, accuracy,
                 path)
    return metrics
