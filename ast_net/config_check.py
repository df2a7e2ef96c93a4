"""Checks the values of an `ast-net-train` config before anything is written or built.

`validate(config)` looks at every field of `ast_net/configs/default.py` (sizes, step counts,
rates, loss weights, names) and raises one `errors.UserError` listing every problem, one line
each (`config.train.batch_size: must be an integer >= 1, got 0`), so a bad value is reported
before the work directory is touched, never as a TensorFlow traceback halfway through. Fields a
config does not have are not checked (a config.json of an older run lacks the newer fields).
"""

from __future__ import annotations

import math
from typing import Callable, List

from ast_net import errors, losses

DISTRIBUTE = ("auto", "none", "mirrored", "multi_worker")  # = ast_net.distribute.STRATEGIES
BEST_METRICS = ("mean_cc", "mean_ccc", "")  # "" keeps no best checkpoint.


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


def _int_at_least(low: int) -> Callable:
    def check(v):
        return None if _is_int(v) and v >= low else f"must be an integer >= {low}"
    return check


def _number(low: float, high: float = math.inf, low_open: bool = False,
            high_open: bool = False) -> Callable:
    def check(v):
        ok = _is_number(v) and (v > low if low_open else v >= low) and (
            v < high if high_open else v <= high)
        if ok:
            return None
        lo = f"> {low:g}" if low_open else f">= {low:g}"
        hi = "" if high == math.inf else (f" and < {high:g}" if high_open else f" and <= {high:g}")
        return f"must be a finite number {lo}{hi}"
    return check


def _one_of(choices) -> Callable:
    def check(v):
        return None if v in choices else f"must be one of {', '.join(map(repr, choices))}"
    return check


def _boolean(v):
    return None if isinstance(v, bool) else "must be true or false"


def _name(v):
    return None if isinstance(v, str) and v.strip() else "must be a non-empty split name"


def _string(v):
    return None if isinstance(v, str) else "must be a string"


def _units(v):
    ok = isinstance(v, (list, tuple)) and len(v) > 0 and all(_is_int(u) and u >= 1 for u in v)
    return None if ok else "must be a non-empty list of integers >= 1, e.g. (50, 40)"


def _value_range(v):
    ok = (isinstance(v, (list, tuple)) and len(v) == 2 and all(map(_is_number, v))
          and v[0] < v[1])
    return None if ok else "must be two finite numbers (low, high) with low < high"


_FIELDS = {
    "seed": _int_at_least(0),
    "data.data_dir": _string,
    "data.train_split": _name,
    "data.eval_split": lambda v: None if v is None else _string(v),
    "data.clip_length": _int_at_least(2),
    "data.frame_step": _int_at_least(1),
    "data.clip_stride": _int_at_least(1),
    "data.twin_shift": _int_at_least(1),
    "data.shuffle_buffer": _int_at_least(1),
    "data.feature_scale": _number(0.0, low_open=True),
    "model.lstm_units": _units,
    "model.dropout": _number(0.0, 1.0, high_open=True),
    "model.input_dropout": _number(0.0, 1.0, high_open=True),
    "model.input_norm": _boolean,
    **{f"loss.{t}_weight": _number(0.0) for t in losses.TERMS},
    "loss.num_intervals": _int_at_least(1),
    "loss.trend_normalizer": _one_of(losses.TREND_NORMALIZERS),
    "loss.label": _one_of(losses.LABEL_LOSSES),
    "loss.warmup_steps": _int_at_least(0),
    "train.batch_size": _int_at_least(1),
    "train.learning_rate": _number(0.0, low_open=True),
    "train.grad_clip_norm": _number(0.0),
    "train.num_steps": _int_at_least(1),
    "train.steps_per_loop": _int_at_least(1),
    "train.checkpoint_every": _int_at_least(1),
    "train.eval_every": _int_at_least(1),
    "train.jit_compile": _boolean,
    "train.distribute": _one_of(DISTRIBUTE),
    "train.eval_batch_size": _int_at_least(1),
    "train.log_every": _int_at_least(1),
    "train.eval_loss_batches": _int_at_least(0),
    "train.best_metric": _one_of(BEST_METRICS),
    "output.merge_phases": _boolean,
    "output.label_range": _value_range,
}


def _get(config, dotted: str):
    """(True, value) of `config.a.b`, or (False, None) when the config lacks it."""
    node = config
    for key in dotted.split("."):
        try:
            node = node[key]
        except (KeyError, TypeError, AttributeError):
            return False, None
    return True, node


def problems(config) -> List[str]:
    """One line per bad value of `config` (an AST-Net ConfigDict); [] when all are fine."""
    out = []
    for field, check in _FIELDS.items():
        present, value = _get(config, field)
        if present:
            message = check(value)
            if message:
                out.append(f"config.{field}: {message}, got {value!r}")
    present, n = _get(config, "data.clip_length")
    ok_m, m = _get(config, "loss.num_intervals")
    if present and ok_m and _is_int(n) and _is_int(m) and n >= 2 and m > n:
        out.append(f"config.loss.num_intervals: must be <= config.data.clip_length ({n}) "
                   f"(each interval needs a frame), got {m}")
    weights = [_get(config, f"loss.{t}_weight") for t in losses.TERMS]
    if weights and all(p and _is_number(w) for p, w in weights) and not any(w for _, w in weights):
        out.append("config.loss: every term weight is 0, so there is nothing to train; switch "
                   f"at least one of {'/'.join(losses.TERMS)}_weight on")
    return out


def validate(config) -> None:
    """UserError listing every problem of `config`, one per line (each printed after `error: `
    by `errors.report_user_errors`); nothing when the config is fine."""
    found = problems(config)
    if found:
        raise errors.UserError("\nerror: ".join(found))
