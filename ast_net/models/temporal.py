"""The temporal network of AST-Net: stacked LSTM (50, 40) and a dense head, per-frame output.

Input `features` is `[batch, frames, D]` (attribute-CNN features of frames Δt apart); output is
`[batch, frames, 2]` = (valence, arousal) per frame. The number of frames is left dynamic so the
same weights serve 50-frame training clips, shorter tails of short videos, and one-frame steps of
the streaming predictor.
"""

from __future__ import annotations

from typing import Sequence

import keras

OUTPUT_DIMS = 2  # valence, arousal (schema.DIMENSIONS order)


def build_temporal_model(
    feature_dim: int,
    lstm_units: Sequence[int] = (50, 40),
    dropout: float = 0.0,
    input_dropout: float = 0.0,
    input_norm: bool = True,
    name: str = "temporal",
) -> keras.Model:
    """Builds the shared temporal network.

    Args:
      feature_dim: D, size of the per-frame feature vector.
      lstm_units: cells of each stacked LSTM layer (the paper: 50 then 40).
      dropout: dropout on the LSTM outputs.
      input_dropout: dropout on the input features.
      input_norm: a LayerNormalization on the input features (fc6 activations are large and
        unnormalised; this makes one learning rate work for 128-d and 4096-d features).
      name: model name.

    Returns:
      A functional keras.Model `features [B, T, D] -> va [B, T, 2]`.
    """
    features = keras.Input(shape=(None, feature_dim), name="features")
    x = features
    if input_norm:
        x = keras.layers.LayerNormalization(name="input_norm")(x)
    if input_dropout:
        x = keras.layers.Dropout(input_dropout, name="input_dropout")(x)
    for i, units in enumerate(lstm_units):
        x = keras.layers.LSTM(units, return_sequences=True, name=f"lstm_{i + 1}")(x)
        if dropout:
            x = keras.layers.Dropout(dropout, name=f"dropout_{i + 1}")(x)
    va = keras.layers.Dense(OUTPUT_DIMS, name="valence_arousal")(x)
    return keras.Model(features, va, name=name)


def from_config(model_config, feature_dim: int) -> keras.Model:
    """Builds the temporal network from `config.model` of an AST-Net config."""
    return build_temporal_model(
        feature_dim,
        lstm_units=tuple(model_config.lstm_units),
        dropout=float(model_config.dropout),
        input_dropout=float(model_config.input_dropout),
        input_norm=bool(model_config.input_norm),
    )
