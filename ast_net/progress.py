"""The one way a long job shows a progress bar: tqdm on stderr, only on a terminal.

A bar redrawn with carriage returns is noise in a log file or a pipe, so every bar of the
package goes through `bar`: shown when the caller enables it (the binaries' `--progress`) and
stderr is a terminal, never written into a non-terminal log.
"""

from __future__ import annotations

import tqdm


def bar(iterable=None, *, enabled: bool = True, **kwargs) -> tqdm.tqdm:
    """`tqdm.tqdm(iterable, **kwargs)`, disabled unless `enabled` and stderr is a terminal."""
    # tqdm's `disable=None` means: disabled when the output stream is not a TTY.
    return tqdm.tqdm(iterable, disable=None if enabled else True, **kwargs)
