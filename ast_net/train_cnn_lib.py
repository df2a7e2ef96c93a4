"""Fine-tunes an attribute CNN on FER2013: the paper's first stage (section 3.2).

`train_and_evaluate(config, workdir)` reads FER2013 through its TFDS builder (48x48 gray faces),
augments them (flip, small rotation / shift / zoom, brightness, contrast: TF stateless ops, so a
seed fixes them), feeds them through the backbone's own `Backbone.preprocess` (resize to the
backbone's input, gray to 3 channels for VGG16, its normalisation) and trains the 7-way softmax
with Keras `fit`. Training runs in loops of `steps_per_loop` steps; after each loop the model and
optimizer are checkpointed atomically to `workdir/checkpoints/` and TensorBoard scalars go to
`workdir/tensorboard/`; re-running the same command resumes after the last finished loop. At
the end the accuracy on `eval_split` (PublicTest) goes to `workdir/metrics.json` and the
fine-tuned network to the file `load_backbone` reads: `vgg16_fer2013.h5` (VGG-Face layout) or
`mini_xception_fer2013.keras`.
"""

from __future__ import annotations

import json
import math
import os

import keras
import ml_collections
import tensorflow as tf
from absl import logging

from ast_net import errors
from ast_net import workdir as workdir_lib
from ast_net.data import fer2013
from ast_net.models import backbones, mini_xception, vgg_face

CHECKPOINT = "ckpt.weights.h5"
STATE = "state.json"
EXPORT_NAMES = {"vgg16": "vgg16_fer2013.h5", "mini_xception": "mini_xception_fer2013.keras"}


def export_path(config: ml_collections.ConfigDict, workdir: str) -> str:
    """Where the fine-tuned network is written (the file load_backbone reads)."""
    return os.path.join(workdir, EXPORT_NAMES[config.backbone])


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
    init = os.path.expanduser(config.model.init_weights) if config.model.init_weights else None
    if config.backbone == "mini_xception":
        if config.train.mixed_precision:
            logging.warning("mixed_precision applies to vgg16 only; mini_xception stays float32")
        return backbones.from_mini_xception(mini_xception.load_model(init))
    if config.backbone != "vgg16":
        raise errors.UserError(
            f"config.backbone={config.backbone!r}; expected one of {backbones.NAMES}")
    policy = "mixed_float16" if config.train.mixed_precision else None
    model = vgg_face.build_vgg16(
        input_size=config.model.input_size, num_classes=len(backbones.EMOTIONS),
        fc_width=config.model.fc_width, dropout=config.model.dropout, dtype=policy)
    mean = vgg_face.MEAN_BGR_VGGFACE
    if init:
        weights = vgg_face.read_weights(init)
        loaded = vgg_face.load_weights(model, weights)
        mean = weights.mean_bgr
        logging.info("initialised %s from %s (%s weights)", loaded, init, weights.kind)
    else:
        logging.warning("config.model.init_weights is empty: VGG16 starts from random weights "
                        "(the paper starts from VGG-Face, %s)", vgg_face.VGGFACE_FILE)
    return backbones.from_vgg16(model, mean, fer_head=True)


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
    """After every loop: model + optimizer weights, then the loop counter, both atomically."""

    def __init__(self, directory: str):
        super().__init__()
        self.directory = directory

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.directory, exist_ok=True)
        tmp = os.path.join(self.directory, "tmp-" + CHECKPOINT)
        self.model.save_weights(tmp)
        os.replace(tmp, os.path.join(self.directory, CHECKPOINT))
        workdir_lib.write_json(os.path.join(self.directory, STATE), {"loops_done": epoch + 1})


def _restore(model: keras.Model, directory: str) -> int:
    """Loads the last checkpoint into model + optimizer; returns the loops already done."""
    state_path = os.path.join(directory, STATE)
    if not os.path.exists(state_path):
        return 0
    with open(state_path) as f:
        loops = int(json.load(f)["loops_done"])
    model.optimizer.build(model.trainable_variables)
    try:
        model.load_weights(os.path.join(directory, CHECKPOINT))
    except ValueError as e:
        raise errors.UserError(
            f"{directory}/{CHECKPOINT}: checkpoint does not fit this config ({e}); use a new "
            "--workdir") from None
    return loops


def export(config: ml_collections.ConfigDict, backbone: backbones.Backbone, path: str) -> None:
    """Writes the fine-tuned network as the file `load_backbone` reads (atomically)."""
    if config.backbone == "vgg16":
        vgg_face.save_weights(backbone.probs_model, path, mean_bgr=backbone.mean_bgr,
                              class_names=backbones.EMOTIONS)
    else:
        tmp = os.path.join(os.path.dirname(path), "tmp-" + os.path.basename(path))
        backbone.probs_model.save(tmp)
        os.replace(tmp, path)


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
    model = backbone.probs_model
    if config.backbone == "mini_xception":  # Avoids a oneDNN crash, see trainable_model.
        model = mini_xception.trainable_model(model)
    model.compile(optimizer=_optimizer(train_cfg),
                  loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                  jit_compile=train_cfg.jit_compile)
    ckpt_dir = os.path.join(workdir, "checkpoints")
    loops_done = _restore(model, ckpt_dir)
    total_loops = train_cfg.num_steps // train_cfg.steps_per_loop
    if loops_done:
        logging.info("resuming after loop %d of %d from %s", loops_done, total_loops, ckpt_dir)
    train_ds, eval_ds = make_datasets(config, backbone, seed=config.seed + loops_done)
    history = {}
    if loops_done < total_loops:
        callbacks = [
            _Checkpoint(ckpt_dir),
            keras.callbacks.TensorBoard(os.path.join(workdir, "tensorboard")),
        ]
        result = model.fit(
            train_ds, initial_epoch=loops_done, epochs=total_loops,
            steps_per_epoch=train_cfg.steps_per_loop, validation_data=eval_ds,
            validation_freq=train_cfg.eval_every_loops, callbacks=callbacks, verbose=verbose,
            shuffle=False)  # The dataset is shuffled (seeded) already.
        history = {k: [float(v) for v in vs] for k, vs in result.history.items()}
    loss, accuracy = model.evaluate(eval_ds, verbose=0)
    if model is not backbone.probs_model:
        mini_xception.copy_weights(model, backbone.probs_model)
    path = export_path(config, workdir)
    export(config, backbone, path)
    metrics = {
        "backbone": config.backbone, "steps": train_cfg.num_steps,
        "resumed_after_loop": loops_done, f"{config.data.eval_split}_accuracy": float(accuracy),
        f"{config.data.eval_split}_loss": float(loss), "history": history, "export": path,
    }
    workdir_lib.write_json(os.path.join(workdir, "metrics.json"), metrics)
    logging.info("%s accuracy %.4f; fine-tuned weights: %s", config.data.eval_split, accuracy,
                 path)
    return metrics
