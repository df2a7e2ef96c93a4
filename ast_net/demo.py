"""`make demo`: the main job, end to end on data made on the spot.

  python -m ast_net.demo --out_dir=demo_out

Step 1 writes the synthetic feature benchmark (`ast_net.data.synthetic`), step 2 trains AST-Net
with the default config (Siamese stacked LSTM, full composite loss), step 3 evaluates on the
held-out test subjects and prints the paper-style CC table. Every step is skipped when its
output already exists, so a re-run resumes.
"""

import os
import time

from absl import flags

from ast_net import errors, evaluate_lib, train_lib
from ast_net.configs import default
from ast_net.data import synthetic

_OUT_DIR = flags.DEFINE_string("out_dir", "demo_out", "Where the demo writes its data, "
                               "checkpoints, CSVs and plots.")
_STEPS = flags.DEFINE_integer("num_steps", None, "Training steps (default: the default "
                              "config's num_steps).")


def _banner(text):
    print(f"\n=== {text}", flush=True)


@errors.report_user_errors
def main(argv):
    del argv
    out = os.path.abspath(_OUT_DIR.value)
    t0 = time.time()
    data_dir = os.path.join(out, "synthetic_features")
    _banner(f"1/3 synthetic feature benchmark -> {data_dir}")
    if not os.path.exists(os.path.join(data_dir, "manifest.json")):
        synthetic.write_benchmark(data_dir)
    else:
        print("already there, skipped")

    workdir = os.path.join(out, "train")
    _banner(f"2/3 training AST-Net (default config) -> {workdir}")
    config = default.get_config()
    config.data.data_dir = data_dir
    if _STEPS.value:
        config.train.num_steps = _STEPS.value
    train_lib.train_and_evaluate(config, workdir)

    _banner("3/3 evaluation on the held-out test subjects")
    _, summary, csv_path = evaluate_lib.evaluate_workdir(workdir, "test")
    print(evaluate_lib.format_table(summary, title="AST-Net, synthetic benchmark, test split"))
    print(f"\nper-video scores: {csv_path}")
    print(f"curves of one test video: {os.path.join(workdir, 'eval', 'test_first_video.png')}")
    print(f"TensorBoard: .venv/bin/tensorboard --logdir {os.path.join(workdir, 'tensorboard')}")
    print(f"demo finished in {time.time() - t0:.0f} s", flush=True)


def run():
    errors.run_app(main)


if __name__ == "__main__":
    run()
