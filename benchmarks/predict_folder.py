"""Videos/s of batch prediction over a folder with 1 and 2 Beam workers, side by side.

  .venv/bin/python benchmarks/predict_folder.py [--copies=4] [--workers=1,2]

Makes a folder of `--copies` links to the sample video `WolfgangLanger_Pexels.mp4` (472 frames,
640x360, one face) and runs the batch job (`pipelines/predict_videos_lib.py`, zero-shot
mini_xception, DirectRunner) over it once per worker count, each into a fresh output folder,
in one process run. Reports wall time, videos/s, frames/s and the speed-up over the first
worker count, with the load average before and after (the machine may be shared). The job's
fixed cost (Beam start-up, each worker importing TensorFlow and loading the engine) is in the
figure, as a user pays it. `CPU cores busy` is the CPU time of the run (driver and worker
processes) over its wall time. Also checks that every worker count wrote the same CSV bytes.
"""

import os
import pathlib
import resource
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags  # noqa: E402

_COPIES = flags.DEFINE_integer("copies", 4, "Videos in the folder (links to the sample).")
_WORKERS = flags.DEFINE_list("workers", ["1", "2"], "DirectRunner worker counts to compare.")


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (the workers)."""
    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,
                                                 resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv):
    del argv
    from ast_net.pipelines import predict_videos_lib

    from ast_net import sample_media

    video = sample_media.path("WolfgangLanger_Pexels.mp4")
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp) / "videos"
        folder.mkdir()
        for i in range(_COPIES.value):
            os.symlink(video, folder / f"clip{i:02d}.mp4")
        rows, csvs = [], {}
        print(f"cores: {os.cpu_count()}; load average before: {os.getloadavg()}", flush=True)
        for workers in map(int, _WORKERS.value):
            out = pathlib.Path(tmp) / f"out{workers}"
            start, cpu0 = time.perf_counter(), _cpu_seconds()
            summary = predict_videos_lib.predict_videos(predict_videos_lib.Config(
                inputs=[str(folder)], out_dir=str(out), direct_num_workers=workers))
            seconds = time.perf_counter() - start
            cores = (_cpu_seconds() - cpu0) / seconds
            rows.append((workers, seconds, summary.predicted, summary.frames, cores))
            csvs[workers] = sorted((p.name, p.read_bytes()) for p in out.glob("*.csv"))
            print(f"{workers} worker(s): {seconds:.1f} s, load average {os.getloadavg()}",
                  flush=True)
        base = rows[0][1]
        print("| workers | wall s | videos/s | frames/s | speed-up | CPU cores busy |")
        print("|---|---|---|---|---|---|")
        for workers, seconds, videos, frames, cores in rows:
            print(f"| {workers} | {seconds:.1f} | {videos / seconds:.3f} | "
                  f"{frames / seconds:.1f} | {base / seconds:.2f}x | {cores:.2f} |")
        same = all(c == csvs[rows[0][0]] for c in csvs.values())
        print(f"CSV bytes identical across worker counts: {same}; load average after: "
              f"{os.getloadavg()}")


if __name__ == "__main__":
    app.run(main)
