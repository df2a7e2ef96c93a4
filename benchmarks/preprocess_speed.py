"""Preprocessing throughput on a real video: decode -> detect/track -> align -> JPEG, per stage.

  .venv/bin/python benchmarks/preprocess_speed.py [--video=PATH] [--tf_threads=1] [--repeats=3]

Default video: WolfgangLanger_Pexels.mp4 (640x360, 472 frames) from the sample media. Rows:

* decode only: `video.iter_frames` (OpenCV decode + BGR->RGB), the ceiling of everything else;
* tracker (k=10): `FaceTracker` with full MTCNN every 10 frames and O-Net refinement between;
* full detection: full MTCNN cascade on every frame (`detect_every=1`);

each end to end (align to `--face_size` and JPEG-encode every tracked face, as the TFRecord
pipeline does) with the frame reader prefetching in a background thread, and the same loop
serial (`prefetch=0`). Per-stage figures come from the serial loop and are CPU milliseconds
(process CPU time, all threads: decoder, TensorFlow, numpy): decode per frame, detect and
refine per call (with the number of calls), align and JPEG per face. "CPU ms/frame" is the
whole prefetching run's CPU time per frame. CPU times are disturbed much less than wall-clock
rates by other jobs on the machine; the load average is printed too. Medians over `--repeats`.

`--tf_threads=N` sets TensorFlow's intra- and inter-op thread pools before TF starts (0 keeps
TF's default, one thread per core); MTCNN's small networks run best on one thread.
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ast_net import startup  # noqa: E402

startup.quiet_tensorflow()  # Before TensorFlow: its start-up lines filtered.

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

_VIDEO = flags.DEFINE_string("video", None, "Video to process (default: the sample video "
                             "WolfgangLanger_Pexels.mp4, fetched into the cache if needed).")
_FACE_SIZE = flags.DEFINE_integer("face_size", 224, "Side S of the aligned face crops.")
_DETECT_EVERY = flags.DEFINE_integer("detect_every", 10, "k of the tracker row: a full "
                                     "detection every k frames, O-Net refinement in between.")
_MIN_FACE = flags.DEFINE_integer("min_face_size", 40, "MTCNN minimum face size in pixels.")
_REPEATS = flags.DEFINE_integer("repeats", 3, "Runs per row; the table shows medians.")
_MAX_FRAMES = flags.DEFINE_integer("max_frames", 0, "Stop after this many frames (0 = all); "
                                   "for a quick smoke run.")
_TF_THREADS = flags.DEFINE_integer("tf_threads", 0, "TensorFlow intra/inter-op threads "
                                   "(0 = TF's default).")
_JPEG_QUALITY = flags.DEFINE_integer("jpeg_quality", 90, "JPEG quality of the encoded crops.")


class _Timer:
    """Accumulates the process CPU time (all threads) of one stage over its calls."""

    def __init__(self):
        self.seconds, self.calls, self._start = 0.0, 0, 0.0

    def __enter__(self):
        self._start = time.process_time()
        return self

    def __exit__(self, *exc):
        self.seconds += time.process_time() - self._start
        self.calls += 1

    def ms(self):
        return 1000.0 * self.seconds / self.calls if self.calls else float("nan")


class _TimedDetector:
    """Wraps an MtcnnDetector and times its two entry points."""

    def __init__(self, detector):
        self.detector, self.detect_t, self.refine_t = detector, _Timer(), _Timer()

    def detect(self, rgb):
        with self.detect_t:
            return self.detector.detect(rgb)

    def refine_many(self, rgb, boxes):
        with self.refine_t:
            return self.detector.refine_many(rgb, boxes)


def _decode_only(path, max_frames):
    from ast_net.faces import video

    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    for _ in video.iter_frames(path):
        n += 1
        if max_frames and n >= max_frames:
            break
    cpu = 1000.0 * (time.process_time() - c0) / max(n, 1)
    return {"fps": n / (time.perf_counter() - t0), "frames": n, "decode": cpu, "cpu": cpu}


def _pipeline(path, detector, detect_every, prefetch, max_frames):
    from ast_net.faces import align, tracker, video, video_faces

    timed = _TimedDetector(detector)
    face_tracker = tracker.FaceTracker(timed, detect_every=detect_every)
    decode_t, align_t, jpeg_t = _Timer(), _Timer(), _Timer()
    frames = video.iter_frames(path, prefetch=prefetch)
    n = faces = 0
    t0, c0 = time.perf_counter(), time.process_time()
    while True:
        with decode_t:
            item = next(frames, None)
        if item is None:
            break
        _, _, rgb = item
        for tracked in face_tracker.update(rgb):
            marks = tracked.face.landmarks
            with align_t:
                crop = align.align_face(rgb, marks["left_eye"], marks["right_eye"],
                                        _FACE_SIZE.value).crop
            with jpeg_t:
                video_faces.encode_jpeg(crop, _JPEG_QUALITY.value)
            faces += 1
        n += 1
        if max_frames and n >= max_frames:
            break
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    frames.close()
    return {"fps": n / elapsed, "frames": n, "faces": faces, "decode": decode_t.ms(),
            "cpu": 1000.0 * cpu / max(n, 1),
            "detect": timed.detect_t.ms(), "detect_calls": timed.detect_t.calls,
            "refine": timed.refine_t.ms(), "refine_calls": timed.refine_t.calls,
            "align": align_t.ms(), "jpeg": jpeg_t.ms()}


def _median(runs, key):
    return float(np.median([r[key] for r in runs]))


def main(argv):
    del argv
    import tensorflow as tf

    if _TF_THREADS.value:
        tf.config.threading.set_intra_op_parallelism_threads(_TF_THREADS.value)
        tf.config.threading.set_inter_op_parallelism_threads(_TF_THREADS.value)
    from ast_net import sample_media
    from ast_net.faces import detector as detector_lib
    from ast_net.faces import video

    path = _VIDEO.value or sample_media.path("WolfgangLanger_Pexels.mp4")
    info = video.probe(path)
    detector = detector_lib.MtcnnDetector(min_face_size=_MIN_FACE.value)
    _pipeline(path, detector, 1, 0, 5)  # Warm-up: traces the graphs once.
    max_frames, repeats = _MAX_FRAMES.value, _REPEATS.value

    rows = [("decode only", [_decode_only(path, max_frames) for _ in range(repeats)], None)]
    for label, k in ((f"tracker (k={_DETECT_EVERY.value})", _DETECT_EVERY.value),
                     ("full detection every frame", 1)):
        ends = [_pipeline(path, detector, k, 4, max_frames) for _ in range(repeats)]
        serial = [_pipeline(path, detector, k, 0, max_frames) for _ in range(repeats)]
        rows.append((label, ends, serial))

    load = os.getloadavg()
    print(f"\n{os.path.basename(path)}: {info.width}x{info.height}, {info.num_frames} frames, "
          f"{info.fps:.3f} fps; face crops {_FACE_SIZE.value}px + JPEG q{_JPEG_QUALITY.value}; "
          f"TF threads: {_TF_THREADS.value or 'default'}; {os.cpu_count()} CPUs; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; median of {repeats}\n")
    print("| mode | frames/s (prefetch) | frames/s (serial) | CPU ms/frame | decode CPU ms "
          "| detect CPU ms (calls) | refine CPU ms (calls) | align CPU ms | JPEG CPU ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, ends, serial in rows:
        if serial is None:
            print(f"| {label} | {_median(ends, 'fps'):.0f} | {_median(ends, 'fps'):.0f} | "
                  f"{_median(ends, 'cpu'):.2f} | {_median(ends, 'decode'):.2f} | - | - | - | - |")
            continue
        print(f"| {label} | {_median(ends, 'fps'):.1f} | {_median(serial, 'fps'):.1f} | "
              f"{_median(ends, 'cpu'):.2f} | "
              f"{_median(serial, 'decode'):.2f} | {_median(serial, 'detect'):.1f} "
              f"({int(_median(serial, 'detect_calls'))}) | {_median(serial, 'refine'):.2f} "
              f"({int(_median(serial, 'refine_calls'))}) | {_median(serial, 'align'):.2f} | "
              f"{_median(serial, 'jpeg'):.2f} |")
    tracker_fps = _median(rows[1][1], "fps")
    print(f"\nframes with a face (tracker): {rows[1][1][0]['faces']} of {rows[1][1][0]['frames']}"
          f"; tracker end to end {tracker_fps:.1f} frames/s "
          f"({'meets' if tracker_fps >= 60 else 'BELOW'} the 60 frames/s target)")


def run():
    app.run(main)


if __name__ == "__main__":
    run()
