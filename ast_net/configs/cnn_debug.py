"""A seconds-long CNN fine-tuning for tests and smoke runs: tiny inputs, few steps.

  ast-net-train-cnn --config=ast_net/configs/cnn_debug.py --workdir=/tmp/cnn_dbg \
      --manual_dir=/tmp/fer_synthetic --config.backbone=vgg16

The real training path (TFDS FER2013, augmentation, checkpoints, export) on a 32x32 VGG16 with
64-wide fc layers, or the real mini-Xception (`--config.backbone=mini_xception`). On the
synthetic fer2013.csv of the tests (`fer2013.write_synthetic_csv`) the loss falls within the
20 steps; the scores mean nothing beyond that.
"""

from ast_net.configs import cnn_vgg16


def get_config():
    config = cnn_vgg16.get_config()
    config.data.shuffle_buffer = 512
    config.model.input_size = 32
    config.model.fc_width = 64
    config.model.dropout = 0.0
    config.augment.max_rotation_deg = 5.0
    config.augment.max_shift = 0.05
    config.train.batch_size = 16
    config.train.optimizer = "sgd"       # Keras' Adam takes 3x longer to trace: tests stay fast.
    config.train.learning_rate = 0.01
    config.train.momentum = 0.0
    config.train.weight_decay = 0.0
    config.train.num_steps = 20
    config.train.steps_per_loop = 10
    config.train.eval_every_loops = 1
    config.train.eval_batch_size = 64
    return config
