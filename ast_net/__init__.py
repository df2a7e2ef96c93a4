"""AST-Net: continuous facial emotion recognition (valence/arousal per frame) in video.

A TensorFlow 2 / Keras 3 reimplementation of the Attribute-based Siamese Temporal Network of
Wang & Hsu (BMVC 2017), with a video-to-TFRecord pipeline, attribute CNNs, training, evaluation,
export for TF Serving and a real-time predictor.
"""

__version__ = "0.1.0"

import os as _os

# TensorFlow's C++ start-up chatter (CPU instruction sets, oneDNN, CUDA probing) is not for users;
# real warnings and errors still show. Set TF_CPP_MIN_LOG_LEVEL=0 to see everything.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
