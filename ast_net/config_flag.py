"""The `--config` flag of the training binaries, for binaries only (it defines a flag when called).

`define()` is ml_collections' `DEFINE_config_file` (any field overridable as
`--config.<field>=<value>`, the config locked) whose value may also be the name of a bundled
config (`--config=debug`, `--config=ablation:la_t`), resolved by `ast_net.configs.resolve` in
the installed package, so the same command works from any directory. Every way a config can
fail to load (unknown name, missing file, an exception in the file itself) is a ValueError of
one line, which absl reports as a bad flag value: `errors.run_app` prints it as one `error:`
line and exits 2.
"""

from __future__ import annotations

from typing import Sequence

from absl import flags
from ml_collections import config_flags

from ast_net import configs

# As ml_collections' config_flags does: the flag belongs to the binary calling `define`, so
# its `--help` lists `--config` (absl's mechanism for modules with DEFINE_xxx helpers).
flags.disclaim_key_flags()


class _NameOrPathParser(flags.ArgumentParser):
    """Wraps ml_collections' config-file parser: resolves a bundled name first."""

    def __init__(self, inner: flags.ArgumentParser, allowed: Sequence[str]):
        self._inner = inner
        self._allowed = list(allowed)

    def flag_type(self):
        return self._inner.flag_type()

    def parse(self, argument):
        resolved = configs.resolve(argument, self._allowed)
        file = resolved.split(":", 1)[0]
        try:
            config = self._inner.parse(resolved)
        except (TypeError, ValueError):
            raise  # ml_collections already adds the config file's traceback; shown as one line
        except Exception as e:  # ImportError, SyntaxError, NameError, ... in the file
            raise ValueError(f"cannot load config file {file} ({type(e).__name__}: {e})") \
                from None
        if type(config).__name__ == "_ErrorConfig":  # an OSError, which ml_collections defers
            error = object.__getattribute__(config, "_error")
            last = [ln.strip() for ln in str(error).splitlines() if ln.strip()][-1:]
            raise ValueError(f"cannot load config file {file} ({' '.join(last)})")
        return config


def define(help_string: str, cnn: bool, name: str = "config",
           flag_values: flags.FlagValues = flags.FLAGS, **kwargs) -> flags.FlagHolder:
    """Defines `--<name>` (required by the caller) taking a bundled config name or a path.

    Args:
      help_string: the flag's help; the bundled names it accepts are appended.
      cnn: True for `ast-net-train-cnn` (the `cnn_*` configs), False for `ast-net-train`.
      name: the flag's name.
      flag_values: where to define it (tests pass their own `flags.FlagValues()`).
      **kwargs: passed on to `config_flags.DEFINE_config_file` (e.g. `sys_argv`).
    """
    allowed = configs.names(cnn=cnn)
    holder = config_flags.DEFINE_config_file(
        name, None, f"{help_string} Bundled configs, by name: {', '.join(allowed)}.",
        flag_values=flag_values, lock_config=True, **kwargs)
    flag_values[name].parser = _NameOrPathParser(flag_values[name].parser, allowed)
    return holder
