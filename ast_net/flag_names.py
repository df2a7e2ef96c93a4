"""One flag name per meaning across the binaries; an old name keeps working for now (binaries only).

    --backbone_weights  the CNN's weights file (was --weights in ast-net-extract-features)
    --tfds_dir          the TFDS folder of FER2013 (was --data_dir in ast-net-train-cnn;
                        --data_dir is the feature TFRecord folder everywhere else)

A binary calls `deprecated_alias("weights", "backbone_weights")` after defining the new flag;
`--weights=x` then sets `--backbone_weights` and prints one line
`warning: --weights is deprecated; use --backbone_weights` on stderr.
"""

from __future__ import annotations

import sys

from absl import flags


def deprecated_alias(old: str, new: str,
                     flag_values: flags.FlagValues = flags.FLAGS) -> flags.FlagHolder:
    """Defines `--old` as a deprecated alias of the flag `--new` (defined before)."""
    holder = flags.DEFINE_alias(old, new, flag_values=flag_values)
    alias = flag_values[old]
    alias.help = f"Deprecated name of --{new} (works, with a warning; will be removed)."
    forward = alias.parse

    def parse(argument):
        print(f"warning: --{old} is deprecated; use --{new}", file=sys.stderr, flush=True)
        forward(argument)

    alias.parse = parse
    return holder
