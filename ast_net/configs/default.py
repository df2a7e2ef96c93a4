"""Default AST-Net config: the paper's temporal model and loss on per-frame feature TFRecords.

Run (after `ast-net-synthetic --out_dir=/tmp/syn`):
  ast-net-train --config=ast_net/configs/default.py --workdir=/tmp/ast \
      --config.data.data_dir=/tmp/syn
  ast-net-evaluate --workdir=/tmp/ast --split=test

On the synthetic benchmark (128-d features, 2 CPU cores) the 1200 steps take about 80 s of
training and reach a mean test CC of 0.91 (valence) / 0.93 (arousal), measured 2026-12-04 (see
docs/training.md for the table).
On AVEC2012 with VGG16 fc6 features the paper reports a dev mean CC of 0.587 / 0.587.

Paper values: N = 50 frames per clip, Δt = 10 video frames between clip frames, LSTM (50, 40),
w1 = w2 = w3 = 10, λ = 1000. The paper does not give M (local-loss intervals): we use M = 5
(10 clip frames, i.e. 100 video frames, per interval).
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed = 0

    config.data = ml_collections.ConfigDict()
    config.data.data_dir = ""           # Directory of {split}-*.tfrecord feature records.
    config.data.train_split = "train"
    config.data.eval_split = "dev"       # Split evaluated during training (dev CC/CCC).
    config.data.clip_length = 50         # N
    config.data.frame_step = 10          # Δt (video frames between consecutive clip frames)
    config.data.clip_stride = 5          # Video frames between consecutive training clip starts.
    config.data.twin_shift = 1           # Twin clip B starts this many video frames after A.
    config.data.shuffle_buffer = 4096
    config.data.feature_scale = 1.0      # Features are multiplied by this before the model.

    config.model = ml_collections.ConfigDict()
    config.model.lstm_units = (50, 40)
    config.model.dropout = 0.0
    config.model.input_dropout = 0.0
    config.model.input_norm = True       # LayerNorm on input features (fc6 values are large).

    config.loss = ml_collections.ConfigDict()
    config.loss.label_weight = 1.0       # 0 switches a term off (Table 1 ablation).
    config.loss.trend_weight = 10.0      # w1
    config.loss.local_weight = 10.0      # w2
    config.loss.global_weight = 10.0     # w3
    config.loss.siamese_weight = 1000.0  # λ
    config.loss.num_intervals = 5        # M
    config.loss.trend_normalizer = "2N"  # "2N" (paper) or "2(N-1)".
    # Label term: "mse" (the paper, 1/(2N) Σ‖g − y‖²) or "ccc" (1 − CCC per dimension over
    # every valid frame of the batch pooled, averaged over dims; see ast_net/losses.py).
    config.loss.label = "mse"
    # Steps trained on the label loss alone before the other terms join (not in the paper;
    # without it the sign-blind range terms can lock a dimension anti-correlated).
    config.loss.warmup_steps = 300

    config.train = ml_collections.ConfigDict()
    config.train.batch_size = 32
    config.train.learning_rate = 1e-3
    config.train.grad_clip_norm = 0.0   # 0 = off. Clipping a loss this size (λ = 1000) slows Adam.
    config.train.num_steps = 1200
    config.train.steps_per_loop = 100    # Steps per compiled call (one keras "epoch").
    config.train.checkpoint_every = 100
    config.train.eval_every = 500
    config.train.jit_compile = False     # XLA; set True on GPU.
    # "auto" (MirroredStrategy over 2+ GPUs) | "none" | "mirrored" | "multi_worker"
    # (MultiWorkerMirroredStrategy over the cluster of TF_CONFIG; see
    # docs/distributed_training.md). batch_size is the global batch under each.
    config.train.distribute = "auto"
    config.train.eval_batch_size = 64
    # Dev score that picks checkpoints/best/ (kept besides the latest; `--step=best`): "mean_cc"
    # (mean over valence and arousal of the per-video mean CC), "mean_ccc", or "" (none).
    config.train.best_metric = "mean_cc"
    config.train.log_every = 10          # Steps between TensorBoard train scalars.
    config.train.eval_loss_batches = 50  # Dev batches of twin clips for the dev loss terms
    #                                      (a fixed, seeded sample; 0 = every dev clip).

    # How per-frame outputs are formed (evaluate, predict, realtime and the export alike; see
    # ast_net/windows.py, merge_phases).
    config.output = ml_collections.ConfigDict()
    config.output.merge_phases = True        # Causal mean of the last Δt frames (one per phase).
    config.output.label_range = (-1.0, 1.0)  # Outputs are clipped to it (the labels' range).
    return config
