"""`import ast_net` changes nothing process-wide; the binaries' entry point (`ast_net/startup.py`)
filters exactly TensorFlow's expected start-up lines and logs the devices once."""

import os
import subprocess
import sys

from ast_net import startup

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_START_UP = (b"WARNING: All log messages before absl::InitializeLog() is called are written to "
             b"STDERR\n"
             b"I0000 00:00:1796353887.765981   13929 port.cc:153] oneDNN custom operations\n"
             b"To enable the following instructions: AVX2 FMA, in other operations, rebuild "
             b"TensorFlow with the appropriate compiler flags.\n"
             b"W0000 00:00:1796353887.766231   13929 some.cc:31] a C++ warning\n")
_NO_GPU = (b"E0000 00:00:1796583906.632256   16571 cuda_platform.cc:52] failed call to cuInit: "
           b"INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n")
_BROKEN_GPU = (b"E0000 00:00:1796583906.632256   16571 cuda_platform.cc:52] failed call to "
               b"cuInit: INTERNAL: CUDA error: Failed call to cuInit: CUDA_ERROR_SYSTEM_DRIVER_"
               b"MISMATCH: system has unsupported display driver / cuda driver combination\n")
_OTHER = (b"E0000 00:00:1796353890.190864   13929 x.cc:7] some C++ error\n"
          b"F0000 00:00:1796353890.190864   13929 x.cc:1] fatal\n"
          b"/a/module.py:3: UserWarning: a Python warning\n")


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(extra)
    return env


def test_import_ast_net_changes_nothing_and_imports_no_tensorflow():
    code = ("import os, sys\n"
            "hooks, fd2, env = list(sys.meta_path), os.fstat(2).st_ino, dict(os.environ)\n"
            "import ast_net\n"
            "assert os.fstat(2).st_ino == fd2 and dict(os.environ) == env\n"
            "assert sys.meta_path == hooks, sys.meta_path\n"
            "ast_net.Predictor, ast_net.predict_video  # The API's module: cv2 sets\n"
            "new = [f for f in sys.meta_path if f not in hooks]  # LD_LIBRARY_PATH, absl\n"
            "assert not [f for f in new if 'ast_net' in repr(f)], new  # its ReloadDetector\n"
            "heavy = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout == "ok\n", proc.stderr[-2000:]


def test_filter_drops_the_expected_start_up_lines_only():
    text = _START_UP + _NO_GPU + _BROKEN_GPU + _OTHER
    assert startup.filter_text(text, 2) == _BROKEN_GPU + _OTHER  # The binaries' default.
    assert startup.filter_text(text, 3) == _OTHER.split(b"\n", 1)[1]  # The F line + Python.
    warning = _START_UP.splitlines(keepends=True)[-1]  # Level 1 hides INFO lines only.
    assert startup.filter_text(text, 1) == warning + _NO_GPU + _BROKEN_GPU + _OTHER
    assert startup.filter_text(text, 0) == text


def test_filtered_stderr_keeps_a_fatal_line_of_a_process_that_aborts():
    """The filter is a process of its own: the last lines of an import that aborts (TF's
    `F...` line, then abort()) still reach the terminal."""
    code = ("import os\n"
            "from ast_net import startup\n"
            "with startup.filtered_stderr(2):\n"
            f"    os.write(2, {_START_UP + _NO_GPU!r})\n"
            "    os.write(2, b'F0000 00:00:1.0   1 x.cc:1] Check failed: it broke\\n')\n"
            "    os.abort()\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=_env(),
                          capture_output=True, timeout=60)
    assert proc.returncode != 0
    assert proc.stderr.splitlines() == [b"F0000 00:00:1.0   1 x.cc:1] Check failed: it broke"]


def test_binary_shows_no_start_up_lines_and_one_devices_line(tmp_path):
    """TensorFlow imported by a real binary, at its default log level: of TF's lines only the
    devices line is left (on this CPU-only machine, the cuInit failure is not shown)."""
    proc = subprocess.run([sys.executable, "-m", "ast_net.evaluate", f"--workdir={tmp_path}"],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 2, lines
    assert lines[0].startswith("I") and lines[0].endswith("] devices: CPU only (no GPU visible)")
    assert lines[1].startswith(f"error: {tmp_path}: not an ast-net-train work directory")
    shown = subprocess.run([sys.executable, "-m", "ast_net.evaluate", f"--workdir={tmp_path}"],
                           cwd=tmp_path, env=_env(TF_CPP_MIN_LOG_LEVEL="0"),
                           capture_output=True, text=True, timeout=180)
    assert "failed call to cuInit" in shown.stderr  # Level 0: everything, unfiltered.
