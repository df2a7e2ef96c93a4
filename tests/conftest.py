"""Shared test fixtures: quiet TensorFlow and tiny feature TFRecords written in the real schema."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def write_feature_videos(path, videos, *, split="train", backbone="test"):
    """Writes `videos` (list of dicts: id, features [T, D], labels [T, 2], mask [T] optional,
    face [T] optional, first_frame optional) as SequenceExamples to one TFRecord file."""
    import tensorflow as tf

    from ast_net.data import schema

    with tf.io.TFRecordWriter(str(path)) as w:
        for v in videos:
            t = len(v["features"])
            ex = schema.make_sequence_example(
                video_id=v["id"], fps=v.get("fps", 25.0), subject=v.get("subject", v["id"]),
                split=split, timestamps=np.arange(t) / v.get("fps", 25.0),
                face_present=v.get("face", np.ones(t, int)),
                valence=v["labels"][:, 0], arousal=v["labels"][:, 1],
                label_mask=v.get("mask", np.ones(t, int)), features=v["features"],
                first_frame=v.get("first_frame", 0), backbone=backbone)
            w.write(ex.SerializeToString())
    return str(path)


@pytest.fixture
def feature_videos():
    return write_feature_videos


@pytest.fixture
def fake_checkpoint(tmp_path, monkeypatch):
    """A function `(videos) -> (config, calls)` for evaluating without a trained model: writes
    `videos` (`write_feature_videos` dicts, D = 4) as the test split under `tmp_path/data`,
    and replaces `training_run.load_temporal` with a per-frame net (prediction = the first two
    features) and the debug config (N = 4, Δt = 2, that data dir), and
    `training_run.check_compatible` with a no-op; both record their arguments in `calls`
    ("load": (workdir, step), "check": (workdir, config, feature_dim))."""
    from ast_net import training_run
    from ast_net.configs import debug

    def make(videos):
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        write_feature_videos(data_dir / "test-00000-of-00001.tfrecord", videos, split="test")
        config = debug.get_config()
        config.data.data_dir = str(data_dir)
        config.data.clip_length, config.data.frame_step = 4, 2
        calls = {}

        def load_temporal(workdir, step=None):
            calls["load"] = (workdir, step)
            return (lambda x, training=False: x[..., :2]), config, {"feature_dim": 4}, 1

        def check_compatible(workdir, cfg, feature_dim):
            calls["check"] = (workdir, cfg, feature_dim)

        monkeypatch.setattr(training_run, "load_temporal", load_temporal)
        monkeypatch.setattr(training_run, "check_compatible", check_compatible)
        return config, calls

    return make


def toy_video(vid, num_frames, dim=4, seed=0):
    """A video whose valence/arousal are smooth curves carried by the first two features."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames)
    va = np.stack([np.sin(t / 17.0 + seed), np.cos(t / 23.0 + 2 * seed)], -1) * 0.8
    feats = np.concatenate([va, rng.normal(scale=0.1, size=(num_frames, dim - 2))], -1)
    return {"id": vid, "features": feats.astype(np.float32), "labels": va.astype(np.float32)}


@pytest.fixture(scope="module")
def toy_dataset(tmp_path_factory):
    """train/dev/test feature records of smooth toy videos (one directory per test module)."""
    d = tmp_path_factory.mktemp("data")
    for k, split in enumerate(["train", "dev", "test"]):
        vids = [toy_video(f"{split}{i:02d}", 160 + 20 * i, seed=10 * k + i) for i in range(3)]
        write_feature_videos(d / f"{split}-00000-of-00001.tfrecord", vids, split=split)
    return str(d)


@pytest.fixture(scope="module")
def tiny_workdir(tmp_path_factory):
    """A workdir trained for 2 steps (debug config) on two 40-frame videos of random 128-d
    "mini_xception" features, feature_scale 0.5 (the export and serving-client tests')."""
    import tensorflow as tf

    from ast_net import train_lib
    from ast_net.configs import debug
    from ast_net.data import schema

    data = tmp_path_factory.mktemp("tiny_data")
    rng = np.random.default_rng(0)
    with tf.io.TFRecordWriter(str(data / "train-00000-of-00001.tfrecord")) as writer:
        for i in range(2):
            t = 40
            writer.write(schema.make_sequence_example(
                video_id=f"v{i}", fps=25.0, timestamps=np.arange(t) / 25.0,
                face_present=np.ones(t, int), valence=rng.uniform(-1, 1, t),
                arousal=rng.uniform(-1, 1, t), label_mask=np.ones(t, int),
                features=rng.normal(size=(t, 128)), split="train",
                backbone="mini_xception").SerializeToString())
    config = debug.get_config()
    config.data.data_dir = str(data)
    config.data.eval_split = ""
    config.data.feature_scale = 0.5
    config.train.num_steps = config.train.steps_per_loop = config.train.checkpoint_every = 2
    wd = str(tmp_path_factory.mktemp("tiny_wd"))
    train_lib.train_and_evaluate(config, wd)
    return wd


@pytest.fixture
def stop_realtime_midway():
    """`_stop_realtime_midway` (a function: the signal is the test's own)."""
    return _stop_realtime_midway


@pytest.fixture
def realtime_child():
    """`_realtime_child` (a function: each test gives its own flags)."""
    return _realtime_child


def _default_sigint():
    """In the child: SIGINT back to its default, so Python installs its Ctrl-C handler even
    when the test worker inherited an ignored SIGINT (a child keeps an ignored signal)."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _realtime_child(*flags):
    """`python -m ast_net.realtime *flags` started in the repository for the signal tests:
    stderr piped (text), stdout dropped, SIGINT at its default in the child."""
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return subprocess.Popen([sys.executable, "-m", "ast_net.realtime", *flags],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            cwd=repo, preexec_fn=_default_sigint)


def _stop_realtime_midway(out_dir, sig):
    """Runs `ast-net-realtime` on WolfgangLanger_Pexels.mp4 (--no-pace) into `out_dir`, sends
    `sig` once its first status line (`frames/s |`) is on stderr, and returns (that line or
    None, the rest of stderr, the exit status). The process is killed if it outlives the test."""
    from ast_net import sample_media

    proc = _realtime_child(f"--source={sample_media.path('WolfgangLanger_Pexels.mp4')}",
                           f"--out_dir={out_dir}", "--no-pace", "--max_seconds=120")
    status = None
    try:
        for line in proc.stderr:
            if "frames/s |" in line:
                status = line
                proc.send_signal(sig)
                break
        rest = proc.stderr.read()
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return status, rest, code
