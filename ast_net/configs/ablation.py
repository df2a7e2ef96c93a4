"""One config per row of the paper's Table 1 (ablation of the loss terms).

Run one row:
  ast-net-train --config=ast_net/configs/ablation.py:la_t_lo_g_s --workdir=/tmp/abl/la_t_lo_g_s \
      --config.data.data_dir=/tmp/syn
The same row on the paper's exact setting (`paper.py`: no label warm-up, no input LayerNorm):
  ast-net-train --config=ast_net/configs/ablation.py:paper.la_t_lo_g_s ...
Run them all, 3 seeds each, and write the table (Max / Min / Mean CC on the test split, mean ±
sd over the seeds; 10 rows x 3 seeds x 1200 steps, about 40 min on 2 idle CPU cores):
  ast-net-ablation --data_dir=/tmp/syn --workdir=/tmp/abl [--base=paper]

Rows use the default config (or, with the `paper.` prefix, the paper config), whose weights are
the paper's (w1 = w2 = w3 = 10, λ = 1000), with the terms not in the row switched off. The
paper's Table 1 (AVEC2012 valence, dev) has the full loss (La + T + Lo + G + S) best at mean CC
0.5874; our synthetic figures (mean ± sd over seeds) are in docs/ablation.md.
"""

from ast_net.configs import default, paper

# Row name -> (label, trend, local, global, siamese) switched on. Order as in Table 1.
ROWS = {
    "la": "La",
    "t": "T",
    "la_t": "La + T",
    "la_s": "La + S",
    "la_t_s": "La + T + S",
    "la_t_g": "La + T + G",
    "la_t_lo": "La + T + Lo",
    "la_lo_g": "La + Lo + G",
    "la_t_lo_g": "La + T + Lo + G",
    "la_t_lo_g_s": "La + T + Lo + G + S",
}

_TERMS = {"La": "label_weight", "T": "trend_weight", "Lo": "local_weight",
          "G": "global_weight", "S": "siamese_weight"}
# Config the rows are built on: the stabilised default, or the paper's exact setting.
BASES = {"default": default, "paper": paper}


def get_config(row: str = "la_t_lo_g_s"):
    """`row` is a key of ROWS, optionally prefixed with a base and a dot (`paper.la_t`)."""
    base, _, name = row.rpartition(".")
    base = base or "default"
    if base not in BASES:
        raise ValueError(f"unknown ablation base {base!r}; expected one of {sorted(BASES)}")
    row = name
    if row not in ROWS:
        raise ValueError(f"unknown ablation row {row!r}; expected one of {sorted(ROWS)}")
    config = BASES[base].get_config()
    on = set(ROWS[row].split(" + "))
    for term, field in _TERMS.items():
        if term not in on:
            config.loss[field] = 0.0
    config.ablation_row = row
    config.ablation_base = base
    return config
