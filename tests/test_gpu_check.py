"""benchmarks/gpu_check.sh and gpu_check.py off a GPU: the no-GPU exit, and a --cpu-smoke run of
every measurement with tiny settings (the figures are not tested: they depend on the machine).
"""

import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "benchmarks", "gpu_check.sh")


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None,
                    reason="nvidia-smi is here: the script would install and measure")
def test_shell_script_exits_0_without_a_gpu():
    out = subprocess.run(["bash", SCRIPT], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ("gpu_check: no NVIDIA GPU found (nvidia-smi is not "
                                  "installed): nothing to measure")


def test_python_part_exits_0_when_tensorflow_sees_no_gpu():
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "benchmarks/gpu_check.py"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("gpu_check: no GPU found by TensorFlow: nothing to measure")


@pytest.mark.slow  # VGG16 (tiny), the Siamese step, MTCNN, an export, XLA: 30 to 80 s here.
def test_cpu_smoke_runs_every_measurement():
    env = dict(os.environ, PYTHON=sys.executable, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(["bash", SCRIPT, "--cpu-smoke"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = out.stdout.splitlines()
    start = lines.index("| measurement | result | detail |")
    rows = [line.split(" | ") for line in lines[start + 2:] if line.startswith("|")]
    names = [r[0].lstrip("| ") for r in rows]
    assert len(rows) == 9, names  # 4 VGG16 cells, 2 train steps, end to end, 2 signatures
    assert sum(n.startswith("VGG16 fc6 features, batch") for n in names) == 4
    assert sum(n.startswith("Siamese train step") for n in names) == 2
    assert sum(n.startswith("SavedModel `") for n in names) == 2
    assert not [r for r in rows if "FAILED" in r[1] or "skipped" in r[1]]
    e2e = next(r for r in rows if r[0].lstrip("| ").startswith("end-to-end predict"))
    assert e2e[1].endswith("frames/s") and float(e2e[1].split()[0]) > 0
    assert "a face in 0 of" not in e2e[2]  # MTCNN found the astronaut: the CNN really ran
