"""Multi-worker training (`config.train.distribute = "multi_worker"`, ast_net/distribute.py).

The slow test starts two real `ast-net-train` worker processes on localhost (CPU, gRPC over
loopback ports, TF_CONFIG in their environment), kills worker 1 (SIGKILL) once the chief has
written its step-10 checkpoint, checks that the chief then stops with one error line, restarts
both to 30 steps, and checks: the restarted job resumed from the chief's checkpoint on both
workers; the losses and final weights equal those of a single-process run on the same global
batch; only the chief wrote into the work directory, and the non-chief's temporary checkpoints
are gone. The other tests check that a MirroredStrategy run (2 logical CPUs) equals a
one-process run too, and the TF_CONFIG and config handling without starting a cluster.
"""

import glob
import json
import os
import re
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from ast_net import config_check, distribute, errors, train_lib, training_run
from ast_net.configs import debug

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKERS = 2
TIMEOUT_S = 180  # per phase; a phase takes about 15 s on our 2-core machines


def _free_ports(count):
    """Ports the OS hands out as free (bound then released: a small race, fine on loopback)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _overrides(data_dir, num_steps):
    return [f"--config.data.data_dir={data_dir}", f"--config.train.num_steps={num_steps}",
            "--config.train.steps_per_loop=5", "--config.train.checkpoint_every=10",
            "--config.train.eval_every=1000", "--config.train.learning_rate=0.01"]


def _start_workers(data_dir, wd, num_steps, tmp):
    """Starts the job (WORKERS local processes, fresh loopback ports); returns the Popens, their
    stdout and stderr going to files beside `tmp` (a pipe nobody reads could block them)."""
    cluster = {"worker": [f"localhost:{p}" for p in _free_ports(WORKERS)]}
    procs = []
    for index in range(WORKERS):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = dict(os.environ, TF_CONFIG=json.dumps(tf_config), TMPDIR=str(tmp),
                   TF_CPP_MIN_LOG_LEVEL="3")
        cmd = [sys.executable, "-m", "ast_net.train", "--config=ast_net/configs/debug.py",
               f"--workdir={wd}", "--config.train.distribute=multi_worker",
               *_overrides(data_dir, num_steps)]
        logs = [open(f"{tmp}-{num_steps}-{index}.{k}", "w+") for k in ("out", "err")]
        procs.append(subprocess.Popen(cmd, cwd=REPO, env=env, stdout=logs[0], stderr=logs[1]))
        procs[-1].logs = logs
    return procs


def _wait(procs):
    """[(pid, exit status, stdout, stderr)] of every process; none is left running."""
    try:
        for p in procs:
            p.wait(timeout=TIMEOUT_S)
    finally:
        for p in procs:  # A worker left alone waits on its peer: never leave one behind.
            if p.poll() is None:
                p.kill()
                p.wait()
    results = []
    for p in procs:
        texts = []
        for f in p.logs:
            f.seek(0)
            texts.append(f.read())
            f.close()
        results.append((p.pid, p.returncode, *texts))
    return results


def _scalars(event_dir, tag):
    import tensorflow as tf

    out = {}
    for path in sorted(glob.glob(os.path.join(event_dir, "events.out.tfevents.*"))):
        for e in tf.compat.v1.train.summary_iterator(path):
            for v in e.summary.value:
                if v.tag == tag:
                    out[e.step] = float(tf.make_ndarray(v.tensor))
    return out


def _event_pids(tb_root):
    """Process ids in the names of the event files (events.out.tfevents.<t>.<host>.<pid>...)."""
    names = glob.glob(os.path.join(tb_root, "**", "events.out.tfevents.*"), recursive=True)
    return {int(re.match(r"events\.out\.tfevents\.\d+\.(.+)\.(\d+)\.\d+\.v2$",
                         os.path.basename(n)).group(2)) for n in names}


@pytest.mark.slow  # Two real worker processes, twice: about 55 s.
def test_killed_worker_stops_the_job_which_resumes_and_equals_one_process(toy_dataset,
                                                                           tmp_path):
    wd, tmp_1, tmp_2 = str(tmp_path / "mw"), tmp_path / "tmp_1", tmp_path / "tmp_2"
    tmp_1.mkdir()
    tmp_2.mkdir()
    ckpt_10 = os.path.join(training_run.checkpoint_dir(wd), "ckpt-10.index")
    first = _start_workers(toy_dataset, wd, 2000, tmp_1)
    deadline = time.time() + TIMEOUT_S
    while not os.path.exists(ckpt_10) and time.time() < deadline and first[0].poll() is None:
        time.sleep(0.05)
    first[1].kill()  # SIGKILL worker 1 in the middle of the job
    (chief_pid, chief_code, _, chief_err), _ = _wait(first)
    assert os.path.exists(ckpt_10), chief_err[-3000:]
    # The chief's next all-reduce is aborted (TF's coordination service misses worker 1's
    # heartbeats): one error line and exit 2, not a hang and not a traceback.
    assert chief_code == 2, chief_err[-3000:]
    assert chief_err.strip().splitlines()[-1].startswith(
        "error: a worker of the multi-worker job stopped or cannot be reached")
    resumed = training_run.checkpoint_steps(training_run.checkpoint_dir(wd))[-1]
    assert resumed in (10, 20)  # no step without worker 1 (20: it died just after 10 more)

    second = _wait(_start_workers(toy_dataset, wd, 30, tmp_2))  # the restarted job
    for index, (_, code, out, err) in enumerate(second):
        assert code == 0, f"worker {index} exited {code}:\n{err[-3000:]}"
        assert f"worker {index}: resuming from step {resumed}" in out, out[-2000:]
        assert "finished at step 30" in out

    # Only the chief (worker 0) wrote: its checkpoints, its event files; the non-chief's
    # temporary checkpoints (under TMPDIR) were removed after each save (checked on the run
    # that ended normally: the killed worker may have died inside a save).
    assert training_run.checkpoint_steps(training_run.checkpoint_dir(wd)) == sorted(
        {10, resumed, 20, 30})
    assert _event_pids(os.path.join(wd, "tensorboard")) == {chief_pid, second[0][0]}
    saved = re.findall(r"non-chief checkpoint written to (\S+) and deleted", second[1][3])
    assert len(saved) == (30 - resumed) // 10  # one per checkpoint of the chief (20, 30)
    assert all(p.startswith(str(tmp_2)) for p in saved)
    assert glob.glob(str(tmp_2 / "ast_net_worker_ckpt_*")) == []

    # The same run in one process: same config, same global batch of 8 twin clips.
    config = debug.get_config()
    for flag in _overrides(toy_dataset, 30):
        key, value = flag[len("--config."):].split("=")
        section, field = key.split(".")
        config[section][field] = type(config[section][field])(value)
    config.train.distribute = "none"
    single = str(tmp_path / "single")
    train_lib.train_and_evaluate(config, single)

    for tag in ("loss/total", "loss/label", "loss/siamese"):
        multi = _scalars(os.path.join(wd, "tensorboard", "train"), tag)
        one = _scalars(os.path.join(single, "tensorboard", "train"), tag)
        assert sorted(multi) == sorted(one) == [5, 10, 15, 20, 25, 30]
        for step in one:  # rel 1e-5: float32 round-off of a mean of 2 means vs a mean of 8
            assert multi[step] == pytest.approx(one[step], rel=1e-5), (tag, step)
    net_multi, _, _, step_multi = training_run.load_temporal(wd)
    net_one, _, _, step_one = training_run.load_temporal(single)
    assert step_multi == step_one == 30
    for a, b in zip(net_multi.get_weights(), net_one.get_weights()):
        # Each worker's replica takes the mean over its 4 clips and divides it by 2; the
        # all-reduce sums the two: the mean over 8 clips, summed in another order. In float32
        # that differs by round-off (~1e-7 relative) per step; Adam (lr 1e-2) turns it into
        # weight differences of 2.1e-7 at most after 30 steps (measured). A wrong data split or
        # gradient scale moves weights by 1e-2 to 1e-1 (measured with Keras reshuffling the
        # data of the multi-worker run), so 1e-5 is far from both.
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_tf_config_is_read_and_checked():
    cluster = {"worker": ["a:1", "b:2"]}
    text = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}})
    assert distribute.task_of_tf_config(text) == (cluster, "worker", 1)
    with pytest.raises(errors.UserError, match="needs the TF_CONFIG environment variable"):
        distribute.task_of_tf_config(None)
    with pytest.raises(errors.UserError, match="^TF_CONFIG: expected JSON"):
        distribute.task_of_tf_config("{not json")
    with pytest.raises(errors.UserError, match="task worker 2 is not in cluster"):
        distribute.task_of_tf_config(json.dumps({"cluster": cluster,
                                                 "task": {"type": "worker", "index": 2}}))


def test_chief_is_the_chief_task_else_worker_0():
    workers = {"worker": ["a:1", "b:2"]}
    assert distribute.chief_of(workers, "worker", 0)
    assert not distribute.chief_of(workers, "worker", 1)
    with_chief = {"chief": ["c:0"], **workers}
    assert distribute.chief_of(with_chief, "chief", 0)
    assert not distribute.chief_of(with_chief, "worker", 0)


def test_config_names_every_strategy():
    assert config_check.DISTRIBUTE == distribute.STRATEGIES
    config = debug.get_config()
    config.train.distribute = "multi_worker"
    assert config_check.problems(config) == []
    config.train.distribute = "multiworker"
    assert config_check.problems(config) == [
        "config.train.distribute: must be one of 'auto', 'none', 'mirrored', 'multi_worker', "
        "got 'multiworker'"]


def test_binary_without_tf_config_is_one_line(toy_dataset, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    cmd = [sys.executable, "-m", "ast_net.train", "--config=ast_net/configs/debug.py",
           f"--workdir={tmp_path / 'wd'}", f"--config.data.data_dir={toy_dataset}",
           "--config.train.distribute=multi_worker"]
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith(
        "error: config.train.distribute: multi_worker needs the TF_CONFIG")
    assert not os.path.exists(tmp_path / "wd")  # nothing written


_MIRRORED_SCRIPT = """
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from ast_net import train_lib
from ast_net import training_run
from ast_net.configs import debug
weights = {{}}
for name in ("none", "mirrored"):
    c = debug.get_config()
    c.data.data_dir, c.data.eval_split = {data!r}, ""
    c.train.distribute, c.train.num_steps, c.train.learning_rate = name, 10, 0.01
    wd = {wd!r} + "/" + name
    train_lib.train_and_evaluate(c, wd)
    weights[name] = [w.tolist() for w in training_run.load_temporal(wd)[0].get_weights()]
print("RESULT" + json.dumps(weights))
"""


def test_mirrored_run_equals_one_process(toy_dataset, tmp_path):
    """MirroredStrategy over 2 logical CPUs trains on the batches a one-process run sees (two
    10-step trainings in a subprocess: about 15 s)."""
    script = _MIRRORED_SCRIPT.format(data=toy_dataset, wd=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                         text=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT")]
    assert line, out.stderr[-3000:]
    weights = json.loads(line[0][len("RESULT"):])
    for a, b in zip(weights["none"], weights["mirrored"]):
        # Measured: 1.8e-7 at most (float32 round-off, as in the multi-worker test); 0.12 when
        # Keras' symbolic build restarted the reshuffled dataset (DistributedSiameseModel).
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
