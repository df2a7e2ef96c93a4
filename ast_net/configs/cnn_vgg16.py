"""CNN stage of the paper: VGG16 from VGG-Face weights, fine-tuned on FER2013 at 224x224.

Run (GPU; needs rcmalli_vggface_tf_vgg16.h5 and fer2013.csv, see docs/attribute_cnn.md):
  ast-net-train-cnn --config=ast_net/configs/cnn_vgg16.py --workdir=/tmp/cnn_vgg16 \
      --manual_dir=~/data/fer2013 \
      --config.model.init_weights=~/weights/rcmalli_vggface_tf_vgg16.h5 \
      --config.train.mixed_precision=True --config.train.jit_compile=True

Writes /tmp/cnn_vgg16/vgg16_fer2013.h5, which `load_backbone("vgg16", weights_path=...)` and
`ast-net-extract-features --backbone=vgg16 --backbone_weights=...` read. 9,000 steps of 64 faces
is about 20 epochs of FER2013. The paper gives no CNN training details nor its FER2013 accuracy;
published VGG-Face fine-tunes on FER2013 reach roughly 70% PublicTest accuracy. Not measured
here (no GPU, no data): treat 65-72% as what "good" looks like, well below 60% as a problem.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.backbone = "vgg16"            # "vgg16" | "mini_xception"
    config.seed = 0

    config.data = ml_collections.ConfigDict()
    config.data.data_dir = ""            # TFDS data dir ("" = ~/tensorflow_datasets).
    config.data.manual_dir = ""          # Directory holding fer2013.csv.
    config.data.train_split = "train"
    config.data.eval_split = "public_test"
    config.data.max_train_examples = 0   # 0 = all; >0 keeps the first k (smoke runs).
    config.data.max_eval_examples = 0
    config.data.shuffle_buffer = 30000

    config.augment = ml_collections.ConfigDict()
    config.augment.flip = True             # Random left-right flip.
    config.augment.max_rotation_deg = 10.0
    config.augment.max_shift = 0.1         # Fraction of the 48 px side.
    config.augment.max_zoom = 0.1          # Scale in [1 - z, 1 + z].
    config.augment.max_brightness = 0.1    # Added brightness, fraction of 255.
    config.augment.max_contrast = 0.2      # Contrast factor in [1 - c, 1 + c].

    config.model = ml_collections.ConfigDict()
    config.model.init_weights = ""       # VGG-Face / ImageNet .h5 ("" = random, with a warning).
    config.model.input_size = 224        # FER2013's 48x48 faces are resized to this.
    config.model.fc_width = 4096
    config.model.dropout = 0.5

    config.train = ml_collections.ConfigDict()
    config.train.batch_size = 64
    config.train.optimizer = "sgd"       # "sgd" (momentum) | "adam"
    config.train.learning_rate = 1e-3    # Peak; cosine decay to 1% over num_steps.
    config.train.momentum = 0.9
    config.train.weight_decay = 5e-4
    config.train.num_steps = 9000
    config.train.steps_per_loop = 450    # Steps per Keras "epoch": checkpoint + TensorBoard.
    config.train.eval_every_loops = 2    # Accuracy on eval_split every k loops (and at the end).
    config.train.eval_batch_size = 128
    config.train.mixed_precision = False  # mixed_float16 (GPU); VGG16 only.
    config.train.jit_compile = False      # XLA (GPU).
    return config
