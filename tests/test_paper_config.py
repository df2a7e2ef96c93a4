"""The `paper` config: the paper's values (section 3, 4.3) written out by hand, the only fields
where it departs from the stabilised default, the model it builds, and a short training run
that optimises the full composite loss from the first step (no label warm-up)."""

import os

import keras
import pytest
import tensorflow as tf

from ast_net import train_lib
from ast_net.configs import ablation, default, paper
from ast_net.models import temporal


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_paper_values():
    c = paper.get_config()
    assert (c.data.clip_length, c.data.frame_step, c.data.twin_shift) == (50, 10, 1)  # N, Δt
    assert tuple(c.model.lstm_units) == (50, 40)
    assert (c.model.dropout, c.model.input_dropout, c.model.input_norm) == (0.0, 0.0, False)
    assert (c.loss.label_weight, c.loss.trend_weight, c.loss.local_weight,
            c.loss.global_weight, c.loss.siamese_weight) == (1.0, 10.0, 10.0, 10.0, 1000.0)
    assert c.loss.trend_normalizer == "2N"  # eq. 3 divides by 2N
    assert c.loss.warmup_steps == 0
    assert c.loss.get("label", "mse") == "mse"  # the Euclidean label loss, not CCC


def test_paper_departs_from_default_only_in_the_additions():
    p, d = _flat(paper.get_config().to_dict()), _flat(default.get_config().to_dict())
    assert p.keys() == d.keys()
    changed = {k: (d[k], p[k]) for k in p if p[k] != d[k]}
    assert changed == {"model.input_norm": (True, False), "loss.warmup_steps": (300, 0),
                       "output.merge_phases": (True, False)}


def test_paper_model_has_no_input_norm():
    c = paper.get_config()
    net = temporal.from_config(c.model, feature_dim=16)
    kinds = [type(layer).__name__ for layer in net.layers]
    assert kinds == ["InputLayer", "LSTM", "LSTM", "Dense"]
    assert [layer.units for layer in net.layers if isinstance(layer, keras.layers.LSTM)] == [50, 40]
    assert net.output_shape == (None, None, 2)


def _scalar(event_dir, tag, step):
    from tensorflow.core.util import event_pb2

    for name in sorted(os.listdir(event_dir)):
        for raw in tf.data.TFRecordDataset(os.path.join(event_dir, name)):
            event = event_pb2.Event.FromString(raw.numpy())
            for v in event.summary.value:
                if v.tag == tag and event.step == step:
                    return float(tf.make_ndarray(v.tensor))
    raise AssertionError(f"no {tag} at step {step} in {event_dir}")


def test_paper_trains_the_full_loss_from_step_0(toy_dataset, tmp_path):
    c = paper.get_config()
    # Clips short enough for the toy videos (160-200 frames); the loss and model stay the paper's.
    c.data.data_dir = toy_dataset
    c.data.clip_length, c.data.frame_step, c.data.clip_stride = 10, 3, 7
    c.data.eval_split = ""
    c.train.batch_size, c.train.num_steps, c.train.steps_per_loop = 8, 5, 5
    c.train.checkpoint_every = 5
    train_lib.train_and_evaluate(c, str(tmp_path / "wd"))
    events = str(tmp_path / "wd" / "tensorboard" / "train")
    total, label = _scalar(events, "loss/total", 5), _scalar(events, "loss/label", 5)
    trend, siamese = _scalar(events, "loss/trend", 5), _scalar(events, "loss/siamese", 5)
    # Steps 1-5 already optimise label + 10 trend + 10 local + 10 global + 1000 siamese.
    assert total > label + 10 * trend + 1000 * siamese
    assert total == pytest.approx(label + 10 * trend + 1000 * siamese
                                  + 10 * _scalar(events, "loss/local", 5)
                                  + 10 * _scalar(events, "loss/global", 5), rel=1e-5)


def test_ablation_rows_on_the_paper_base():
    c = ablation.get_config("paper.la_t_g")
    assert c.ablation_base == "paper" and c.ablation_row == "la_t_g"
    assert (c.loss.label_weight, c.loss.trend_weight, c.loss.local_weight,
            c.loss.global_weight, c.loss.siamese_weight) == (1.0, 10.0, 0.0, 10.0, 0.0)
    assert (c.loss.warmup_steps, c.model.input_norm) == (0, False)
    d = ablation.get_config("la_t_g")
    assert (d.ablation_base, d.loss.warmup_steps, d.model.input_norm) == ("default", 300, True)
    with pytest.raises(ValueError, match="unknown ablation base"):
        ablation.get_config("papr.la_t")
