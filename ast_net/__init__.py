"""AST-Net: continuous facial emotion recognition (valence/arousal per frame) in video.

A TensorFlow 2 / Keras 3 reimplementation of the Attribute-based Siamese Temporal Network of
Wang & Hsu (BMVC 2017), with a video-to-TFRecord pipeline, attribute CNNs, training, evaluation,
export for TF Serving and a real-time predictor.
"""

__version__ = "0.1.0"

import os as _os
import re as _re
import sys as _sys
import tempfile as _tempfile

# TensorFlow's C++ log lines are not for users of the binaries (every one imports `ast_net`
# before TensorFlow). Level 3 hides C++ INFO, WARNING and ERROR lines: on a CPU-only machine
# the oneDNN notice, "Could not find cuda drivers", the CPU instruction-set notice and the
# "E ... failed call to cuInit" line. Python exceptions, our own `error:` lines and absl/Python
# warnings are not affected. A value the user set is kept: TF_CPP_MIN_LOG_LEVEL=0 shows
# everything again (2 shows C++ errors, not warnings).
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# TF 2.21 writes the lines of its shared libraries' start-up (oneDNN, CUDA stub, and absl's
# "All log messages before absl::InitializeLog() ..." notice) before it reads
# TF_CPP_MIN_LOG_LEVEL, so that level alone does not hide them. `import tensorflow` therefore
# runs with file descriptor 2 sent to a temporary file, which is then replayed to stderr
# without the C++ log lines below the level (other output, e.g. a Python warning, is kept).
_LOG_LINE = _re.compile(rb"^([IWEF])\d{4} ")
_ABSL_NOTICE = b"WARNING: All log messages before absl::InitializeLog() is called"
_SEVERITY = {b"I": 0, b"W": 1, b"E": 2, b"F": 3}


def _min_log_level() -> int:
    try:
        return int(_os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def _filter_tf_log(text: bytes, level: int) -> bytes:
    """`text` without TensorFlow C++ log lines of a severity below `level`."""
    kept = []
    for line in text.splitlines(keepends=True):
        match = _LOG_LINE.match(line)
        severity = (_SEVERITY[match.group(1)] if match
                    else 1 if line.startswith(_ABSL_NOTICE) else None)
        if severity is None or severity >= level:
            kept.append(line)
    return b"".join(kept)


class _QuietLoader:
    """Runs the real loader of `tensorflow` with fd 2 captured, then replays it filtered."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        module.__spec__.loader = module.__loader__ = self._loader  # Out of the way from now.
        level = _min_log_level()
        try:
            saved = _os.dup(2)
        except OSError:  # No stderr at all.
            return self._loader.exec_module(module)
        with _tempfile.TemporaryFile() as capture:
            _sys.stderr.flush()
            _os.dup2(capture.fileno(), 2)
            try:
                self._loader.exec_module(module)
            finally:
                try:
                    _sys.stderr.flush()
                finally:
                    _os.dup2(saved, 2)
                    _os.close(saved)
                    capture.seek(0)
                    text = _filter_tf_log(capture.read(), level)
                    if text:
                        _os.write(2, text)


class _QuietTensorFlowImport:
    """A meta path finder that wraps the first `import tensorflow` in `_QuietLoader`."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        _sys.meta_path[:] = [f for f in _sys.meta_path if f is not cls]
        if _min_log_level() < 1:  # The user asked for everything.
            return None
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _QuietLoader(spec.loader)
        return spec


if "tensorflow" not in _sys.modules and _QuietTensorFlowImport not in _sys.meta_path:
    _sys.meta_path.insert(0, _QuietTensorFlowImport)
