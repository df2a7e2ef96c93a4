"""The one exception type for errors a user can cause, and how binaries report it.

Library code raises `UserError("path/to/file: expected ..., got ...")` for bad paths, wrong
formats, missing keys, mismatched lengths or unknown config fields. Binaries wrap their `main`
with `report_user_errors`, which prints that one line to stderr and exits with status 2 instead
of a stack trace.
"""

from __future__ import annotations

import functools
import sys


class UserError(Exception):
    """An error caused by the user's input; its message is one line naming the file or key."""


def report_user_errors(main):
    """Decorates an absl `main(argv)`: a UserError becomes `error: <message>` and exit 2."""

    @functools.wraps(main)
    def wrapper(argv):
        try:
            return main(argv)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr, flush=True)
            sys.exit(130)

    return wrapper


def run_app(main) -> None:
    """`absl.app.run(main)` for a binary's `run()` (its console script's entry point).

    A bad flag value, including an unknown or mistyped `--config.<field>` of an ml_collections
    config flag, is one `error:` line and exit 2; `--help` lists the binary's own flags with
    their help (absl would list those of the console-script wrapper, i.e. none) and exits 0;
    TensorFlow's log level and start-up lines are set up (`startup.quiet_tensorflow`) and the
    visible devices logged once when TensorFlow starts.
    """
    from absl import app, flags

    from ast_net import startup

    startup.quiet_tensorflow()
    _own_flags_in_help(main, flags.FLAGS)

    def parse(argv):
        try:
            rest = flags.FLAGS(argv)
            message = _config_load_error(flags.FLAGS)
            if not message:
                return rest
        except flags.Error as e:
            message = _one_line(str(e))
        except (AttributeError, KeyError) as e:  # an unknown --config.<field>
            message = _unknown_field(e)
        except (ValueError, TypeError, OSError) as e:
            message = _one_line(str(e))
        except SystemExit as e:  # --help / --helpfull print the usage, then exit 1 in absl.
            if e.code == 1 and _asks_for_help(argv):
                sys.exit(0)
            raise
        print(f"error: bad command-line flag: {message} (see --help)", file=sys.stderr,
              flush=True)
        sys.exit(2)

    @functools.wraps(main)
    def logged_main(argv):
        startup.log_devices()  # If TensorFlow came in before the flags were parsed.
        return main(argv)

    app.run(logged_main, flags_parser=parse)


_HELP_FLAGS = ("--help", "-help", "--helpshort", "-helpshort", "--helpfull", "-helpfull",
               "-?", "--?")


def _asks_for_help(argv) -> bool:
    return any(a in _HELP_FLAGS for a in argv[1:])


def _own_flags_in_help(main, flag_values) -> None:
    """Makes the binary's flags (those defined by `ast_net` modules, `ast_net.pipelines`
    included; library modules define none) the key flags of the main module, which `--help`
    lists, and its module docstring the usage text of a console-script wrapper that has none."""
    main_module = sys.modules.get("__main__")
    binary = sys.modules.get(getattr(main, "__module__", ""))
    if main_module is not None and not main_module.__doc__ and binary is not None:
        main_module.__doc__ = binary.__doc__
    for module, defined in flag_values.flags_by_module_dict().items():
        if module.split(".")[0] == "ast_net" or module == sys.argv[0]:
            for flag in defined:
                flag_values.register_key_flag_for_module(sys.argv[0], flag)


def _one_line(text: str) -> str:
    """A flag error as one line; of an error raised inside a config file's `get_config` (which
    ml_collections reports with the whole traceback) only the exception's own line is kept."""
    text = text.replace("\\n", "\n").replace("\\'", "'")
    if "Traceback (most recent call last)" in text:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        head = text.split(": Error whilst parsing", 1)[0] if text.startswith("flag --") else ""
        last = lines[-1].strip("'\"")
        text = f"{head}: {last}" if head else last
    text = " ".join(text.split())
    if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
    return text


def _unknown_field(error: BaseException) -> str:
    """ml_collections' unknown-field error (a KeyError, maybe wrapped in an AttributeError) as
    `no such config field 'x'; Did you mean "y" ...`."""
    while error.args and isinstance(error.args[0], BaseException):
        error = error.args[0]
    text = error.args[0] if error.args and isinstance(error.args[0], str) else str(error)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return _one_line(str(error))
    return "; ".join([f"no such config field {lines[0]}"] + lines[1:])


def _config_load_error(flag_values) -> str:
    """The load error of an ml_collections config-file flag whose file could not be read
    (ml_collections defers it until the config is first used), or ''."""
    for name in flag_values:
        value = flag_values[name].value
        if type(value).__name__ == "_ErrorConfig":
            error = object.__getattribute__(value, "_error")
            lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
            path = flag_values[name].serialize().split("=", 1)[-1]
            return f"--{name}={path}: cannot load this config file ({lines[-1]})"
    return ""
