"""The Siamese training wrapper: two twin clips through ONE weight-shared temporal network.

Clip A starts at video frame t and clip B at t + 1 (both sample every Δt frames), so at every clip
index i the two are one video frame apart. `train_step` runs both through `self.temporal` (the same
layers, hence the same weights), computes the composite loss of `ast_net.losses` (prediction loss
of each clip + λ · Siamese loss) and applies one gradient step. `test_step` reports the same terms.

Batches are dicts from `ast_net.data.clips`: features_a/b [B, N, D], labels_a/b [B, N, 2],
mask_a/b [B, N] (1 where the frame has a face and a valid label).

Label warm-up: while `aux_scale` is 0 only the label term is optimised; the training loop sets
it to 1 after `config.loss.warmup_steps`. The range terms (local, global) do not care about the
sign of the prediction, and from a random start they can lock a dimension into an
anti-correlated solution (measured on the synthetic benchmark: valence dev CC -0.07 after 1500
steps of the full loss from scratch, 0.91 with 300 warm-up steps; see docs/training.md).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from ast_net import losses

TERMS = ("total",) + losses.TERMS  # One loss metric each: `<term>_loss` in logs, TensorBoard.


def loss_options(loss_config) -> dict:
    """`losses.composite_loss` keyword arguments from a `config.loss` (ConfigDict or dict):
    `<term>_weight` per term of `losses.TERMS`, num_intervals, trend_normalizer, label."""
    return {"weights": {t: float(loss_config[f"{t}_weight"]) for t in losses.TERMS},
            "num_intervals": loss_config["num_intervals"],
            "trend_normalizer": str(loss_config["trend_normalizer"]),
            "label": str(loss_config.get("label", "mse"))}


class SiameseTemporalModel(keras.Model):
    """Keras 3 model whose custom train/test steps implement AST-Net's Siamese training."""

    def __init__(self, temporal: keras.Model, loss_config, **kwargs):
        super().__init__(**kwargs)
        self.temporal = temporal
        self.loss_config = loss_config
        self.loss_options = loss_options(loss_config)
        self._trackers = {t: keras.metrics.Mean(name=f"{t}_loss") for t in TERMS}
        self.aux_scale = self.add_weight(name="aux_scale", shape=(), initializer="ones",
                                         trainable=False)

    def call(self, features, training=False):
        if isinstance(features, dict):  # Keras may build the model by calling it on a batch.
            features = features["features_a"]
        return self.temporal(features, training=training)

    @property
    def metrics(self):
        return list(self._trackers.values())

    def _forward(self, data, training):
        y_a = self.temporal(data["features_a"], training=training)
        y_b = self.temporal(data["features_b"], training=training)
        total, terms = losses.composite_loss(
            data["labels_a"], y_a, data["labels_b"], y_b,
            mask_a=data["mask_a"], mask_b=data["mask_b"], **self.loss_options)
        label = self.loss_options["weights"]["label"] * terms["label"]
        total = label + tf.cast(self.aux_scale, total.dtype) * (total - label)
        return total, dict(terms, total=total)

    def _update(self, terms):
        for name, tracker in self._trackers.items():
            if name in terms:
                tracker.update_state(terms[name])
        return {name: tracker.result() for name, tracker in self._trackers.items()}

    def train_step(self, data):
        with tf.GradientTape() as tape:
            total, terms = self._forward(data, training=True)
            # Each replica holds a slice of the global batch and gradients are summed across
            # replicas, so the per-replica mean is divided by the replica count.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled = total / tf.cast(replicas, total.dtype)
        grads = tape.gradient(scaled, self.temporal.trainable_variables)
        self.optimizer.apply(grads, self.temporal.trainable_variables)
        return self._update(terms)

    def test_step(self, data):
        _, terms = self._forward(data, training=False)
        return self._update(terms)
