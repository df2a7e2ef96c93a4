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
    """`absl.app.run(main)` where a bad flag value, including an unknown or mistyped
    `--config.<field>` of an ml_collections config flag, is one `error:` line and exit 2."""
    from absl import app, flags

    def parse(argv):
        try:
            return flags.FLAGS(argv)
        except flags.Error as e:
            message = str(e)
        except (AttributeError, KeyError, ValueError, TypeError) as e:
            message = " ".join(str(e).replace("\\n", " ").replace("\\'", "'").split()).strip("'\"")
        print(f"error: bad command-line flag: {message} (see --help)", file=sys.stderr,
              flush=True)
        sys.exit(2)

    app.run(main, flags_parser=parse)
