"""What a binary's entry point does to the process: TensorFlow's log level and start-up lines.

Binaries only (each calls `quiet_tensorflow()` before its other imports, and `errors.run_app`
calls it again); `import ast_net` and the library modules change nothing process-wide.

`quiet_tensorflow()`:

* sets `TF_CPP_MIN_LOG_LEVEL=2` unless the user set a level (C++ errors stay visible, INFO and
  WARNING lines do not; `TF_CPP_MIN_LOG_LEVEL=0` shows everything and turns the filter below
  off);
* wraps the first `import tensorflow` and its first device enumeration (where TF calls cuInit)
  in `filtered_stderr`: TF 2.21 writes its shared libraries' start-up lines (oneDNN, CUDA stub,
  absl's "All log messages before absl::InitializeLog()" notice) before it reads the level, and
  on a machine without a GPU one `E ... failed call to cuInit: ... UNKNOWN ERROR (303)` line.
  Those expected lines are dropped; everything else (a CUDA library that fails to load, a
  fatal line, a Python warning) goes through, line by line, from a filter process that
  outlives an import that aborts;
* logs the visible devices once per run at INFO (`devices: CPU only (no GPU visible)` or
  `devices: GPU:0 (NVIDIA H100 80GB HBM3)`), through absl logging when the binary's flags are
  parsed (at the start of `main` if TensorFlow came in before).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from typing import Optional

DEFAULT_LOG_LEVEL = "2"
_LOG_LINE = re.compile(rb"^([IWEF])\d{4} ")
_SEVERITY = {b"I": 0, b"W": 1, b"E": 2, b"F": 3}
_ABSL_NOTICE = b"WARNING: All log messages before absl::InitializeLog() is called"
# The second line of the CPU-instructions notice (an INFO line of cpu_feature_guard.cc).
_CPU_NOTICE = re.compile(rb"^To enable the following instructions: .* rebuild TensorFlow")
# No GPU at all: no driver library (TF's stub: 303) or no device (CUDA_VISIBLE_DEVICES="").
# Any other cuInit failure (a driver/library mismatch ...) is a broken GPU install: shown.
_NO_GPU = re.compile(rb"\] failed call to cuInit: .*(UNKNOWN ERROR \(303\)|CUDA_ERROR_NO_DEVICE)")

_state = {"devices": None, "logged": False}


def log_level() -> int:
    """TF_CPP_MIN_LOG_LEVEL as a number (0 when unset or not a number)."""
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def keep_line(line: bytes, level: int) -> bool:
    """False for an expected TF start-up line hidden at `level`: a C++ log line of a lower
    severity, absl's pre-init notice and the CPU notice (levels >= 1), and the no-GPU cuInit
    error (levels >= 2)."""
    match = _LOG_LINE.match(line)
    if match:
        severity = _SEVERITY[match.group(1)]
        if severity == 2 and level >= 2 and _NO_GPU.search(line):
            return False
        return severity >= level
    if line.startswith(_ABSL_NOTICE) or _CPU_NOTICE.match(line):
        return level < 1
    return True


def filter_text(text: bytes, level: int) -> bytes:
    """`text` without the lines `keep_line` drops."""
    return b"".join(ln for ln in text.splitlines(keepends=True) if keep_line(ln, level))


# The filter process: reads what fd 2 gets, writes the kept lines to the real stderr as they
# come. Being a process of its own, it still forwards the last lines of a parent that aborts;
# it ignores Ctrl-C (sent to the whole process group) and ends when the parent closes its end.
_FILTER_CODE = """\
import signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
from ast_net import startup
level = int(sys.argv[1])
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    if startup.keep_line(line, level):
        out.write(line)
        out.flush()
"""


@contextlib.contextmanager
def filtered_stderr(level: int):
    """Within the block, file descriptor 2 goes through `keep_line` (a filter process)."""
    try:
        saved = os.dup(2)
    except OSError:  # No stderr at all.
        yield
        return
    try:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (root, os.environ.get("PYTHONPATH")) if p))
        proc = subprocess.Popen([sys.executable, "-S", "-c", _FILTER_CODE, str(level)],
                                stdin=subprocess.PIPE, stdout=saved, stderr=saved, env=env,
                                close_fds=True)
    except OSError:
        os.close(saved)
        yield
        return
    sys.stderr.flush()
    os.dup2(proc.stdin.fileno(), 2)
    try:
        yield
    finally:
        try:
            sys.stderr.flush()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            proc.stdin.close()
            try:  # A process started inside the block may still hold the pipe: then the
                proc.wait(timeout=10)  # filter goes on forwarding its lines, and we go on.
            except subprocess.TimeoutExpired:
                pass


def _describe_devices(tf) -> str:
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "devices: CPU only (no GPU visible)"
    names = []
    for gpu in gpus:
        try:
            detail = tf.config.experimental.get_device_details(gpu).get("device_name", "")
        except (RuntimeError, ValueError):
            detail = ""
        name = gpu.name.replace("/physical_device:", "")
        names.append(f"{name} ({detail})" if detail else name)
    return "devices: " + ", ".join(names)


class _QuietLoader:
    """Runs the real loader of `tensorflow`, then its first device enumeration, filtered."""

    def __init__(self, loader, log_devices: bool):
        self._loader = loader
        self._log_devices = log_devices

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        module.__spec__.loader = module.__loader__ = self._loader  # Out of the way from now.
        level = log_level()
        with filtered_stderr(level) if level >= 1 else contextlib.nullcontext():
            self._loader.exec_module(module)
            devices = _describe_devices(module)  # cuInit runs here, inside the filter.
        if self._log_devices:
            _state["devices"] = devices
            log_devices()


class _QuietTensorFlowImport:
    """A meta path finder that wraps the first `import tensorflow` in `_QuietLoader`."""

    log_devices = True

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname != "tensorflow":
            return None
        sys.meta_path[:] = [f for f in sys.meta_path if f is not cls]
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _QuietLoader(spec.loader, cls.log_devices)
        return spec


def quiet_tensorflow(*, log_devices: bool = True) -> None:
    """Sets TensorFlow's log level (default 2) and filters its start-up; see the docstring.

    Call it before TensorFlow is imported (a binary's first statement); later it only logs
    the devices. `log_devices=False` (Beam worker processes) logs nothing.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", DEFAULT_LOG_LEVEL)
    _QuietTensorFlowImport.log_devices = log_devices
    if "tensorflow" not in sys.modules and _QuietTensorFlowImport not in sys.meta_path:
        sys.meta_path.insert(0, _QuietTensorFlowImport)


def log_devices() -> Optional[str]:
    """Logs the devices line once per process, as soon as it is known and absl's flags are
    parsed (called again at the start of `main` by `errors.run_app`); returns the line."""
    line = _state["devices"]
    if line is None and "tensorflow" in sys.modules and _QuietTensorFlowImport.log_devices:
        level = log_level()  # TensorFlow came in before `quiet_tensorflow`.
        with filtered_stderr(level) if level >= 1 else contextlib.nullcontext():
            line = _state["devices"] = _describe_devices(sys.modules["tensorflow"])
    if line is None or _state["logged"]:
        return line
    from absl import flags, logging

    if flags.FLAGS.is_parsed():
        _state["logged"] = True
        logging.info(line)
    return line


@contextlib.contextmanager
def quiet_beam_import():
    """Imports Apache Beam (or a module that imports it) without its import-time warning
    "apitools not found, and bigquery client libraries are not available ..." on the root
    logger: a Google Cloud extra we do not use, not a problem of the user's run. Only the root
    logger's level is raised, for the import only."""
    import logging

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def beam_args(argv) -> tuple:
    """The Beam pipeline options of a Beam binary's command line: what follows `--` (absl
    leaves it in `argv[1:]`). Anything there that is not a `--name=value` option is one
    `UserError` line, not Beam's own error about it later."""
    from ast_net import errors

    args = tuple(argv[1:])
    if any(not a.startswith("--") for a in args):
        raise errors.UserError(f"unexpected arguments: {' '.join(args)} (Beam pipeline "
                               "options go after `--`, as --name=value)")
    return args


def quiet_beam_logs() -> None:
    """Keeps a Beam binary's terminal readable unless the user asked for `--verbosity`: absl
    at WARNING, Beam's INFO lines off, the worker processes' forwarded start-up records
    (a failure is listed at the end anyway) errors only, and RunInference's "Resource module
    is not available" warning (on the root logger) dropped."""
    import logging

    from absl import flags
    from absl import logging as absl_logging

    if flags.FLAGS["verbosity"].present:  # --verbosity=0 shows everything.
        return
    absl_logging.set_verbosity(absl_logging.WARNING)
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    logging.getLogger("apache_beam.runners.portability.local_job_service").setLevel(
        logging.ERROR)
    logging.getLogger().addFilter(
        lambda record: "Resource module is not available" not in record.getMessage())
