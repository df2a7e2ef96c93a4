"""How prepare-videos throughput grows from 1 to 2 Apache Beam workers (DirectRunner).

  .venv/bin/python benchmarks/beam_workers.py [--copies=4] [--workers=1,2] [--repeats=1]

Builds a `--dataset=csv` layout of `--copies` links to one real video (default the sample
`WolfgangLanger_Pexels.mp4`, 472 frames) and runs the whole `prepare_videos` job on it (decode,
MTCNN detection and tracking, alignment to 224, JPEG, sharded TFRecords, manifest) once per
worker count, each into a fresh output directory, side by side in one process run. Reports
the wall time, videos/s, frames/s and the speed-up over the first worker count. Worker counts
above 1 run Beam's multi-processing mode (one face detector per worker process); the job's
fixed cost (Beam start-up, each worker importing TensorFlow and building MTCNN) is in the
figure, as a user pays it.
"""

import os
import pathlib
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from ast_net import startup  # noqa: E402

startup.quiet_tensorflow()  # Before TensorFlow: its start-up lines filtered.

from absl import app, flags  # noqa: E402

_VIDEO = flags.DEFINE_string("video", None, "Video to copy into the layout (default: the "
                             "sample video WolfgangLanger_Pexels.mp4, fetched if needed).")
_COPIES = flags.DEFINE_integer("copies", 4, "Videos in the layout (links to --video).")
_WORKERS = flags.DEFINE_list("workers", ["1", "2"], "DirectRunner worker counts to compare.")
_REPEATS = flags.DEFINE_integer("repeats", 1, "Runs per worker count; the table shows medians.")
_FACE_SIZE = flags.DEFINE_integer("face_size", 224, "Side S of the aligned face crops.")


def _layout(root: pathlib.Path, video: str, copies: int) -> None:
    folder = root / "all"
    folder.mkdir(parents=True)
    for i in range(copies):
        os.symlink(os.path.abspath(video), folder / f"clip{i:02d}{pathlib.Path(video).suffix}")


def _run_once(root, out_dir, workers, face_size):
    from ast_net.pipelines import prepare_videos_lib, video_records

    config = prepare_videos_lib.Config(
        dataset="csv", root=str(root), out_dir=str(out_dir),
        options=video_records.Options(face_size=face_size), direct_num_workers=workers,
        progress=False)
    start = time.perf_counter()
    summary = prepare_videos_lib.prepare_videos(config)
    seconds = time.perf_counter() - start
    if summary.ok != summary.videos:
        raise SystemExit(f"error: {summary.videos - summary.ok} video(s) not ok: "
                         f"{summary.manifest_path}")
    return seconds


def main(argv):
    del argv
    from ast_net import sample_media

    video = _VIDEO.value or sample_media.path("WolfgangLanger_Pexels.mp4")
    import cv2
    cap = cv2.VideoCapture(video)
    frames = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    workers = [int(w) for w in _WORKERS.value]
    print(f"video {video}: {frames} frames x {_COPIES.value} copies; "
          f"load average {os.getloadavg()[0]:.2f}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp) / "root"
        _layout(root, video, _COPIES.value)
        for w in workers:
            times = []
            for r in range(_REPEATS.value):
                out_dir = pathlib.Path(tmp) / f"out_w{w}_r{r}"
                times.append(_run_once(root, out_dir, w, _FACE_SIZE.value))
            times.sort()
            rows.append((w, times[len(times) // 2]))
    total = frames * _COPIES.value
    base = rows[0][1]
    print(f"\n| Beam workers | wall s | videos/s | frames/s | speed-up vs {rows[0][0]} |")
    print("| --- | --- | --- | --- | --- |")
    for w, s in rows:
        print(f"| {w} | {s:.1f} | {_COPIES.value / s:.3f} | {total / s:.1f} | {base / s:.2f}x |")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    app.run(main)
