"""End-to-end speed of the streaming predictor vs the `fer` package, on one real video, same run.

  .venv/bin/python benchmarks/realtime.py [--video=PATH] [--repeats=3] [--drift]

Default video: WolfgangLanger_Pexels.mp4 (640x360, 472 frames, one face) from the sample media.
Rows, run side by side in rounds (decode, fer, ours, ... then the next round) so that other jobs
on the machine disturb them alike; the table shows medians over rounds and the ratio of medians
of the per-round ratios:

* decode only: `video.iter_frames`, the ceiling of everything else;
* fer Haar: the peer as users meet it, `fer.fer.FER(mtcnn=False).detect_emotions(bgr)` on every
  frame (its fast mode; DESIGN section 6);
* AST-Net mini_xception: decode (prefetch thread) -> tracker (full MTCNN every --detect_every
  frames, O-Net every --refine_every) -> eye alignment -> mini-Xception 128-d features batched
  over --batch_size frames -> stacked LSTM (50, 40) over 50-frame windows Δt = 10 apart, per
  track (random weights: speed does not depend on them);
* zero-shot: the same with the 7-class head and the circumplex mapping instead of the LSTM;
* VGG16: the AST-Net row with VGG16 fc6 (4096-d, random weights, none can be downloaded) on the
  first --vgg_frames frames.

Per-stage milliseconds per frame come from a serial run (no threads) of the AST-Net row. "CPU
ms/frame" is process CPU time (all threads) per frame, steadier than wall time on a shared
machine. `--drift` measures what holding the box between refinements costs: on every frame the
eye centres the engine aligned with are compared with a full MTCNN detection of the same frame.
"""

import itertools
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ast_net import startup  # noqa: E402

startup.quiet_tensorflow()  # Before TensorFlow: its start-up lines filtered.

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

_VIDEO = flags.DEFINE_string("video", None, "Video (default: the sample WolfgangLanger_Pexels"
                             ".mp4, fetched into the cache if needed).")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Rounds; the table shows medians.")
_DETECT_EVERY = flags.DEFINE_integer("detect_every", 30, "Frames between full detections.")
_REFINE_EVERY = flags.DEFINE_integer("refine_every", 2, "Frames between O-Net refinements.")
_BATCH = flags.DEFINE_integer("batch_size", 32, "Frames per CNN batch (file-mode latency).")
_MAX_FRAMES = flags.DEFINE_integer("max_frames", 0, "Use only the first N frames (0 = all).")
_VGG_FRAMES = flags.DEFINE_integer("vgg_frames", 96, "Frames for the VGG16 row (0 = skip).")
_FER = flags.DEFINE_boolean("fer", True, "Run the fer peer row.")
_DRIFT = flags.DEFINE_boolean("drift", False, "Measure eye drift of refine_every 1, 2, 3.")
_DRIFT_FRAMES = flags.DEFINE_integer("drift_frames", 240, "Frames for --drift.")
_TF_THREADS = flags.DEFINE_integer("tf_threads", 1, "TensorFlow intra/inter-op threads for "
                                   "the whole run, fer included (0 = TF's default); the "
                                   "predictor's default for mini_xception is 1.")
_INTER_OP = flags.DEFINE_integer("inter_op_threads", 0, "TensorFlow inter-op threads instead "
                                 "of the engine's (max(--tf_threads, 2): the face and network "
                                 "stages each run TF graphs); 1 shows what one pool costs.")
_JIT_LSTM = flags.DEFINE_boolean("jit_lstm", True, "XLA-compile the LSTM's full-length "
                                 "window calls (as the predictor does).")


def _timed(fn):
    t, c = time.perf_counter(), time.process_time()
    n = fn()
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    return {"fps": n / wall, "cpu_ms": 1000 * cpu / n, "frames": n}


def _decode(path, limit):
    from ast_net.faces import video

    n = 0
    for _ in video.iter_frames(path):
        n += 1
        if limit and n >= limit:
            break
    return n


def _fer_rows(path, limit):
    import cv2
    from fer import fer

    detector = fer.FER(mtcnn=False)

    def run():
        cap, n = cv2.VideoCapture(path), 0
        while True:
            ok, bgr = cap.read()
            if not ok or (limit and n >= limit):
                break
            detector.detect_emotions(bgr)
            n += 1
        cap.release()
        return n

    run()  # Warm-up (model load, first predict).
    return run


def _engine(backbone, temporal_head, **kw):
    from ast_net import inference, inference_heads
    from ast_net.configs import default
    from ast_net.models import backbones, temporal

    net = backbones.load_backbone(backbone)
    if temporal_head:
        config = default.get_config()
        model = temporal.from_config(config.model, net.feature_dim)
        head = inference_heads.TemporalHead(model, config.data.clip_length,
                                            config.data.frame_step, jit_compile=_JIT_LSTM.value)
    else:
        head = inference_heads.ZeroShotHead(0.5)
    engine = inference.Engine(net, head, detect_every=_DETECT_EVERY.value,
                              refine_every=_REFINE_EVERY.value, batch_frames=_BATCH.value, **kw)
    engine.warmup()
    return engine


def _ours(engine, path, limit, threaded=True):
    from ast_net.faces import video

    def run():
        engine.reset()
        reader = video.iter_frames(path, prefetch=32 if threaded else 0)
        frames = itertools.islice(reader, limit) if limit else reader
        n = sum(1 for _ in engine.run(frames, threaded=threaded))
        reader.close()
        return n

    run()  # Warm-up pass (traces every batch size once).
    return run


def _drift(path, frames_limit):
    from ast_net import inference, inference_heads
    from ast_net.faces import video
    from ast_net.models import backbones

    frames = list(itertools.islice(video.iter_frames(path), frames_limit))
    net = backbones.load_backbone("mini_xception")
    engine = inference.Engine(net, inference_heads.ZeroShotHead(0.0),
                              detect_every=_DETECT_EVERY.value)
    truth = []
    for _, _, rgb in frames:
        faces = engine.detector.detect(rgb)
        truth.append(max(faces, key=lambda f: f.box[2] * f.box[3]) if faces else None)
    print(f"\neye drift vs full MTCNN on every frame ({len(frames)} frames, detect_every="
          f"{_DETECT_EVERY.value}):")
    print("| refine_every | mean eye error px | p95 px | mean % of inter-ocular | track ms/frame |")
    print("| --- | --- | --- | --- | --- |")
    for refine in (1, 2, 3):
        engine.refine_every = refine
        engine.reset()
        errs, rel, t0 = [], [], time.perf_counter()
        for (i, ts, rgb), ref in zip(frames, truth):
            out = engine.faces(i, ts, rgb)
            if ref is None or not out.faces:
                continue
            got = out.faces[0].landmarks
            iod = np.hypot(*np.subtract(ref.landmarks["right_eye"], ref.landmarks["left_eye"]))
            for eye in ("left_eye", "right_eye"):
                e = float(np.hypot(*np.subtract(got[eye], ref.landmarks[eye])))
                errs.append(e)
                rel.append(100 * e / iod)
        ms = 1000 * (time.perf_counter() - t0) / len(frames)
        print(f"| {refine} | {np.mean(errs):.2f} | {np.percentile(errs, 95):.2f} | "
              f"{np.mean(rel):.1f} | {ms:.1f} |")


def main(argv):
    del argv
    from ast_net import inference, sample_media

    inference.set_tf_threads(_TF_THREADS.value)
    if _INTER_OP.value:
        import tensorflow as tf

        tf.config.threading.set_inter_op_parallelism_threads(_INTER_OP.value)
    path = _VIDEO.value or sample_media.path("WolfgangLanger_Pexels.mp4")
    limit = _MAX_FRAMES.value
    print(f"video {path}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"TF threads {_TF_THREADS.value or 'default'}, inter-op "
          f"{_INTER_OP.value or 'the engine default'}")
    rows = {"decode only": lambda: _decode(path, limit)}
    if _FER.value:
        rows["fer 25.10.3, Haar, every frame"] = _fer_rows(path, limit)
    ast = _engine("mini_xception", True)
    rows["AST-Net mini_xception (end to end)"] = _ours(ast, path, limit)
    rows["zero-shot mini_xception (end to end)"] = _ours(_engine("mini_xception", False),
                                                         path, limit)
    results = {name: [] for name in rows}
    for _ in range(_REPEATS.value):
        for name, fn in rows.items():
            results[name].append(_timed(fn))
    if _VGG_FRAMES.value:
        vgg = _ours(_engine("vgg16", True), path, _VGG_FRAMES.value)
        results[f"AST-Net VGG16 random weights ({_VGG_FRAMES.value} frames)"] = [_timed(vgg)]

    ours = "AST-Net mini_xception (end to end)"
    print(f"\n| pipeline (detect_every={_DETECT_EVERY.value}, refine_every="
          f"{_REFINE_EVERY.value}, batch={_BATCH.value}) | frames/s | CPU ms/frame | "
          f"AST-Net / this |")
    print("| --- | --- | --- | --- |")
    for name, runs in results.items():
        fps = statistics.median(r["fps"] for r in runs)
        cpu = statistics.median(r["cpu_ms"] for r in runs)
        if len(runs) == len(results[ours]):
            ratio = statistics.median(o["fps"] / r["fps"] for o, r in zip(results[ours], runs))
            ratio_s = f"{ratio:.2f}x"
        else:
            ratio_s = "-"
        print(f"| {name} | {fps:.1f} | {cpu:.2f} | {ratio_s} |")

    serial = _ours(ast, path, limit, threaded=False)
    ast.times = inference.StageTimes()
    _timed(serial)
    decode_ms = 1000 / statistics.median(r["fps"] for r in results["decode only"])
    stages = ast.times.ms_per_frame()
    print("\nper stage, serial run (ms per frame, wall):")
    print("| decode | track (MTCNN + O-Net) | align | CNN | LSTM |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| {decode_ms:.2f} | {stages['track']:.2f} | {stages['align']:.2f} | "
          f"{stages['cnn']:.2f} | {stages['head']:.3f} |")
    stats = ast.tracker.stats
    print(f"tracker calls on {stats['frames']} of {ast.times.frames} frames: "
          f"{stats['detections']} full detections, {stats['refinements']} O-Net refinements")
    fps = statistics.median(r["fps"] for r in results[ours])
    if _FER.value:
        fer_ratio = statistics.median(
            o["fps"] / r["fps"] for o, r in zip(results[ours], results[
                "fer 25.10.3, Haar, every frame"]))
        print(f"\ntargets (issue 14): >= 350 frames/s end to end: {fps:.1f} "
              f"({'met' if fps >= 350 else 'NOT met'}); >= 10x fer Haar: {fer_ratio:.2f}x "
              f"({'met' if fer_ratio >= 10 else 'NOT met'})")
    if _DRIFT.value:
        _drift(path, _DRIFT_FRAMES.value)


if __name__ == "__main__":
    app.run(main)
