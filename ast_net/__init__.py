"""AST-Net: continuous facial emotion recognition (valence/arousal per frame) in video.

A TensorFlow 2 / Keras 3 reimplementation of the Attribute-based Siamese Temporal Network of
Wang & Hsu (BMVC 2017), with a video-to-TFRecord pipeline, attribute CNNs, training, evaluation,
export for TF Serving and a real-time predictor.

In Python (a notebook): `ast_net.predict_video(path)` returns the per-frame values of every
face as a pandas DataFrame, and `ast_net.Predictor()` loads the models once for many videos or
frames (`ast_net/api.py`, docs/python_api.md). `import ast_net` is light and changes nothing in
the process: TensorFlow is imported on first use, and log levels are the binaries' business
(`ast_net/startup.py`).
"""

__version__ = "0.1.0"

_API = ("predict_video", "Predictor", "PredictorInfo")
__all__ = ["__version__", *_API]


def __getattr__(name):
    if name in _API:  # Imported on first use: the API module pulls in pandas and OpenCV.
        from ast_net import api

        return getattr(api, name)
    raise AttributeError(f"module 'ast_net' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API))
