"""A tiny config for tests and smoke runs: short clips, few steps, small batches.

  ast-net-train --config=ast_net/configs/debug.py --workdir=/tmp/dbg \
      --config.data.data_dir=/tmp/syn

Runs in seconds on a CPU; the scores mean nothing.
"""

from ast_net.configs import default


def get_config():
    config = default.get_config()
    config.data.clip_length = 10
    config.data.frame_step = 3
    config.data.clip_stride = 7
    config.data.shuffle_buffer = 256
    config.model.lstm_units = (16, 8)
    config.train.batch_size = 8
    config.train.num_steps = 20
    config.loss.warmup_steps = 10
    config.train.steps_per_loop = 5
    config.train.checkpoint_every = 10
    config.train.eval_every = 20
    config.train.eval_batch_size = 32
    return config
