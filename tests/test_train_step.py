"""The Siamese training step, checked against an independent computation of the paper's loss.

(a) the label warm-up really changes what is optimised: during warm-up the logged total equals
the label loss, after it the total exceeds it (train_lib switches `aux_scale` by step);
(b) the weight change of one step (SGD, lr 1, no momentum: change = −gradient) equals the
gradient of eq. 1 computed here from the `losses` term functions on twin predictions of the
temporal net called by hand; with `aux_scale` 0 it equals the label loss's gradient;
(c) a step on 2 replicas (MirroredStrategy over 2 logical CPUs, in a subprocess: the logical
devices must be set before TensorFlow initialises) equals a 1-replica step on the same global
batch.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from ast_net import losses, train_lib
from ast_net.configs import debug, default
from ast_net.models import siamese, temporal

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B, N, D = 8, 10, 4


def _batch(seed=0):
    """A twin-clip batch with labels that move (so trend, range and Siamese terms are non-zero)
    and a few masked frames; every clip keeps valid frames."""
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(scale=0.2, size=(B, N + 1, 2)), axis=1)
    labels = np.tanh(walk).astype(np.float32)
    feats = rng.normal(size=(B, N + 1, D)).astype(np.float32)
    mask_a = np.ones((B, N), np.float32)
    mask_b = np.ones((B, N), np.float32)
    mask_a[0, 3:5] = 0.0
    mask_b[1, 7] = 0.0
    # Clip B is clip A shifted by one step (the twin clip one video frame later).
    return {"features_a": feats[:, :-1], "features_b": feats[:, 1:],
            "labels_a": labels[:, :-1], "labels_b": labels[:, 1:],
            "mask_a": mask_a, "mask_b": mask_b}


def _model(loss_config, lr=1.0):
    net = temporal.build_temporal_model(D, lstm_units=(8, 4))
    model = siamese.SiameseTemporalModel(net, loss_config)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr, momentum=0.0))
    return net, model


def _one_fit_step(model, batch):
    model.fit(tf.data.Dataset.from_tensors(batch), steps_per_epoch=1, epochs=1, verbose=0,
              shuffle=False)


def _paper_loss(net, batch):
    """Eq. 1 written out from the term functions: Σ over both twins of (label + 10 trend +
    10 local (M = 5) + 10 global) + 1000 · siamese on the joint mask."""
    y_a = net(batch["features_a"], training=True)
    y_b = net(batch["features_b"], training=True)
    total = 0.0
    for g, y, m in ((batch["labels_a"], y_a, batch["mask_a"]),
                    (batch["labels_b"], y_b, batch["mask_b"])):
        total += (losses.label_loss(g, y, m) + 10.0 * losses.trend_loss(g, y, m, "2N")
                  + 10.0 * losses.local_loss(g, y, m, 5) + 10.0 * losses.global_loss(g, y, m))
    joint = batch["mask_a"] * batch["mask_b"]
    total += 1000.0 * losses.siamese_loss(batch["labels_a"], y_a, batch["labels_b"], y_b, joint)
    label = (losses.label_loss(batch["labels_a"], y_a, batch["mask_a"])
             + losses.label_loss(batch["labels_b"], y_b, batch["mask_b"]))
    return total, label


def _expected_gradients(net, batch, which):
    with tf.GradientTape() as tape:
        total, label = _paper_loss(net, batch)
        loss = total if which == "total" else label
    return [g.numpy() for g in tape.gradient(loss, net.trainable_variables)]


@pytest.mark.parametrize("aux_scale,which", [(1.0, "total"), (0.0, "label")])
def test_step_gradient_equals_independent_loss_gradient(aux_scale, which):
    keras.utils.set_random_seed(3)
    batch = _batch()
    net, model = _model(default.get_config().loss, lr=1.0)
    model.aux_scale.assign(aux_scale)
    expected = _expected_gradients(net, batch, which)
    before = [w.numpy() for w in net.trainable_variables]
    _one_fit_step(model, batch)
    after = [w.numpy() for w in net.trainable_variables]
    # LayerNorm 2, two LSTMs 3 each (kernel, recurrent kernel, bias), dense 2.
    assert len(expected) == len(before) == 10
    for b, a, g in zip(before, after, expected):
        # SGD, lr 1, no momentum: w_new = w − g. Both sides are float32 sums of the same terms
        # in possibly another order (graph vs eager), so agree to ~1e-6 of the largest entry.
        np.testing.assert_allclose(b - a, g, rtol=1e-4, atol=1e-5 * np.abs(g).max())
    assert max(np.abs(g).max() for g in expected) > 1e-3  # a real step, not a zero one


def test_loss_terms_of_the_step_match_the_formula():
    keras.utils.set_random_seed(4)
    batch = _batch(seed=1)
    net, model = _model(default.get_config().loss)
    total, label = _paper_loss(net, batch)
    got = model.test_step(batch)  # Same weights: test_step does not train.
    assert float(got["total"]) == pytest.approx(float(total), rel=1e-5)
    assert float(got["label"]) == pytest.approx(float(label), rel=1e-5)
    # The other terms are far from zero on this batch: the total is many times the label.
    assert float(total) > 2 * float(label) > 0


def _scalars(event_dir, tag):
    from tensorflow.core.util import event_pb2

    out = {}
    for name in sorted(os.listdir(event_dir)):
        for raw in tf.data.TFRecordDataset(os.path.join(event_dir, name)):
            event = event_pb2.Event.FromString(raw.numpy())
            for v in event.summary.value:
                if v.tag == tag:
                    out[event.step] = float(tf.make_ndarray(v.tensor))
    return out


def test_warmup_switch_changes_the_optimised_loss(toy_dataset, tmp_path):
    config = debug.get_config()  # 20 steps in loops of 5, warm-up 10 steps, full loss on.
    config.data.data_dir = toy_dataset
    config.data.eval_split = ""  # no dev evaluation: only the training losses matter here
    assert config.loss.warmup_steps == 10 and config.train.steps_per_loop == 5
    train_lib.train_and_evaluate(config, str(tmp_path / "wd"))
    events = str(tmp_path / "wd" / "tensorboard" / "train")
    total, label = _scalars(events, "loss/total"), _scalars(events, "loss/label")
    trend = _scalars(events, "loss/trend")
    assert sorted(total) == sorted(label) == [5, 10, 15, 20]
    for step in (5, 10):  # warm-up: the total optimised is the label loss (weight 1)
        assert total[step] == pytest.approx(label[step], rel=1e-6)
        assert trend[step] > 0  # the other terms are computed and non-zero, but not added
    for step in (15, 20):  # after: + 10 trend + 10 local + 10 global + 1000 siamese
        assert total[step] > label[step] + 10 * trend[step]


_REPLICA_SCRIPT = """
import json, sys
import keras
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, {tests!r})
import test_train_step as t
from ast_net import train_lib
from ast_net.configs import default

batch = t._batch(seed=2)
loss_config = default.get_config().loss
out = {{}}
for name in ("none", "mirrored"):
    keras.utils.set_random_seed(7)  # same initial weights in both runs
    strategy = train_lib.get_strategy(name)
    with strategy.scope():
        net, model = t._model(loss_config, lr={lr})
    before = [w.numpy() for w in net.trainable_variables]
    t._one_fit_step(model, batch)
    out[name] = {{"replicas": strategy.num_replicas_in_sync,
                 "before": [w.tolist() for w in before],
                 "after": [w.numpy().tolist() for w in net.trainable_variables]}}
print("RESULT" + json.dumps(out))
"""


def test_two_replica_step_equals_one_replica_step():
    lr = 0.01
    script = _REPLICA_SCRIPT.format(tests=os.path.join(REPO, "tests"), lr=lr)
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                         text=True, timeout=300,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT")]
    assert line, out.stderr[-3000:]
    res = json.loads(line[0][len("RESULT"):])
    assert res["none"]["replicas"] == 1 and res["mirrored"]["replicas"] == 2
    for b1, b2 in zip(res["none"]["before"], res["mirrored"]["before"]):
        np.testing.assert_array_equal(b1, b2)  # same start
    deltas = []
    for b, a1, a2 in zip(res["none"]["before"], res["none"]["after"], res["mirrored"]["after"]):
        b, a1, a2 = np.asarray(b), np.asarray(a1), np.asarray(a2)
        deltas.append(np.abs(a1 - b).max())
        # Each replica takes the mean over its 4 clips, divides it by 2, and the gradients are
        # summed: the same number as the mean over 8 clips, summed in another order. In float32
        # (eps 1.2e-7) with gradients up to ~7 and lr 0.01 that moves a weight by ~1e-8
        # (measured: 3.3e-8 at most); a missing or doubled 1/2 changes the step by half
        # (measured without the division: 0.012), so 1e-5 is far from both.
        np.testing.assert_allclose(a2, a1, rtol=0, atol=1e-5)
    assert max(deltas) > 1e-3  # the step moved the weights by far more than the tolerance
