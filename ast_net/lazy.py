"""Modules imported on first use: `tf = lazy.module("tensorflow")` costs nothing until `tf.x`.

The backbone modules (`ast_net/models/backbones.py`, `mini_xception.py`, `vgg_face.py`) are the
one table of backbone names, input sizes and weight defaults that flags, the preprocessing
contract and prepare-videos read before any model runs. Those readers must not pay for
importing TensorFlow and Keras (seconds), so that a bad path or source still fails at once;
the backbone modules name `tf` and `keras` through this proxy, and the real import happens on
the first attribute access (`tf.function`, `keras.Model`, ...).
"""

from __future__ import annotations

import importlib
import types


class _LazyModule(types.ModuleType):
    """Stands for the module `__name__`; every attribute is read from the real module."""

    def __getattr__(self, attr):
        return getattr(importlib.import_module(self.__name__), attr)


def module(name: str) -> types.ModuleType:
    """A proxy of the module `name` that imports it on its first attribute access."""
    return _LazyModule(name)
