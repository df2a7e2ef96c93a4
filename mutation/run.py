"""Mutation testing of AST-Net's core modules with mutmut 3 (`make mutation`; not run in CI).

Each target below is one or two library files and the fast tests that guard them. For every
target the working tree (ast_net, pipelines, tests, pyproject.toml, setup.py) is copied to
`<workdir>/<target>/` (default /tmp/mutrepo), a `[tool.mutmut]` section naming only that
target's files and tests is appended to the COPY's pyproject.toml, and `mutmut run` runs there.
mutmut itself works in a further copy (`mutants/`), so the files under ./ast_net are never
touched. The per-target counts (killed / survived / timeout / no tests / ...) are printed as a
Markdown table and written to `<workdir>/report.md` and `<workdir>/report.json`; the survivors'
names are listed so `mutmut show NAME` (run inside `<workdir>/<target>/`) shows each diff.

    python mutation/run.py                       # every target (about 40 min on 2 cores)
    python mutation/run.py --targets=windows,losses --max_children=2
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# target name -> (files to mutate, fast test files that guard them).
TARGETS = {
    "losses": (["ast_net/losses.py"],
               ["tests/test_losses.py", "tests/test_mutation_losses.py",
                "tests/test_losses_mutants.py"]),
    "metrics": (["ast_net/metrics.py"], ["tests/test_metrics.py", "tests/test_metrics_mutants.py"]),
    "clips": (["ast_net/data/clips.py"],
              ["tests/data/test_clips.py", "tests/data/test_clips_mutants.py"]),
    "windows": (["ast_net/windows.py"],
                ["tests/test_windows.py", "tests/test_mutation_windows.py",
                 "tests/test_phase_merge.py::test_saw_tooth_of_period_dt_is_constant_after_the_warm_up",
                 "tests/test_phase_merge.py::test_causal_mean_of_a_ramp_lags_by_half_the_width",
                 "tests/test_phase_merge.py::test_outputs_are_clipped_to_the_label_range_after_the_mean",
                 "tests/test_phase_merge.py::test_leading_batch_axes_and_short_sequences",
                 "tests/test_phase_merge.py::test_tensorflow_mirror_equals_numpy",
                 "tests/test_phase_merge.py::test_output_options_from_a_config"]),
    # The 2-replica test of test_train_step runs in a subprocess, which mutmut cannot see.
    "siamese": (["ast_net/models/siamese.py"],
                ["tests/test_mutation_siamese.py", "tests/test_siamese_mutants.py",
                 "tests/test_train_step.py::test_step_gradient_equals_independent_loss_gradient",
                 "tests/test_train_step.py::test_loss_terms_of_the_step_match_the_formula",
                 "tests/test_train_step.py::test_warmup_switch_changes_the_optimised_loss"]),
    "evaluate_lib": (["ast_net/evaluate_lib.py"],
                     ["tests/test_evaluate_lib_mutants.py", "tests/test_evaluate_table.py"]),
    "labels": (["ast_net/data/labels_readers.py", "ast_net/data/labels.py"],
               ["tests/data/test_labels.py", "tests/data/test_labels_readers.py",
                "tests/test_mutation_labels.py", "tests/data/test_labels_readers_mutants.py",
                "tests/data/test_labels_mutants.py"]),
    "zero_shot": (["ast_net/va_mapping.py", "ast_net/inference_heads.py"],
                  ["tests/test_va_mapping.py", "tests/test_mutation_zero_shot.py",
                   "tests/test_zero_shot_cnn_mutants.py",
                   "tests/test_inference.py::test_zero_shot_head_smooths_each_track_on_its_own",
                   "tests/test_inference.py::test_zero_shot_needs_an_emotion_head"]),
    "align": (["ast_net/faces/align.py"],
              ["tests/faces/test_align.py", "tests/faces/test_align_mutants.py"]),
}

# Parts of a file left out of a target (in the COPY only, with mutmut's pragmas): file ->
# (first line, line after the part), matched by their start. inference_heads.py holds the
# streaming TemporalHead too; only its ZeroShotHead is part of the zero-shot target.
NOT_MUTATED = {
    "zero_shot": {"ast_net/inference_heads.py": ("class TrackWindow", "class ZeroShotHead")},
}

# A mutant is a timeout after (its tests' measured time + 1 s) x this x 2 CPU seconds; mutmut's
# default 15 gives 30x, so each hanging mutant of a 10 s target costs 5 minutes.
TIMEOUT_MULTIPLIER = 3.0

COPIED = ["ast_net", "pipelines", "tests", "pyproject.toml", "setup.py"]
COUNTS = ("killed", "survived", "timeout", "no_tests", "suspicious", "skipped", "segfault")


def _toml_list(items):
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def prepare(target: str, workdir: Path,
            timeout_multiplier: float = TIMEOUT_MULTIPLIER) -> Path:
    """Fresh copy of the working tree for one target, with its mutmut config."""
    files, tests = TARGETS[target]
    dest = workdir / target
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "mutants")
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, dest / name)
    for name, (first, after) in NOT_MUTATED.get(target, {}).items():
        lines = (dest / name).read_text().splitlines(keepends=True)
        i = next(k for k, ln in enumerate(lines) if ln.startswith(first))
        j = next(k for k, ln in enumerate(lines) if ln.startswith(after))
        lines[j:j] = ["# pragma: no mutate end\n"]
        lines[i:i] = ["# pragma: no mutate start\n"]
        (dest / name).write_text("".join(lines))
    tests = [t for t in tests if (dest / t.split("::")[0]).exists()]
    with open(dest / "pyproject.toml", "a") as f:
        f.write("\n[tool.mutmut]\n")
        f.write('source_paths = ["ast_net"]\n')
        f.write(f"only_mutate = {_toml_list(files)}\n")
        f.write(f"pytest_add_cli_args_test_selection = {_toml_list(tests)}\n")
        f.write('pytest_add_cli_args = ["-p", "no:cacheprovider"]\n')
        f.write("use_git_change_detection = false\n")
        f.write(f"timeout_multiplier = {timeout_multiplier}\n")
        # Fork each mutant's worker from a clean server process, not from mutmut's main
        # process: that one has run the suite, so TensorFlow's thread pools exist there and a
        # forked child that runs TF ops (tf.data, tf.function) can deadlock, which mutmut then
        # counts as a "timeout", i.e. as killed.
        f.write('process_isolation = "forkserver"\n')
        f.write('forkserver_warmup = "collect"\n')
    return dest


def run_target(target: str, workdir: Path, max_children: int,
               timeout_multiplier: float = TIMEOUT_MULTIPLIER) -> dict:
    dest = prepare(target, workdir, timeout_multiplier)
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
               OMP_NUM_THREADS="1", TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
    start = time.time()
    log = open(dest / "mutmut.log", "w")
    rc = subprocess.call([mutmut, "run", "--max-children", str(max_children)], cwd=dest,
                         env=env, stdout=log, stderr=subprocess.STDOUT)
    subprocess.call([mutmut, "export-cicd-stats"], cwd=dest, env=env, stdout=log,
                    stderr=subprocess.STDOUT)
    results = subprocess.run([mutmut, "results"], cwd=dest, env=env, capture_output=True,
                             text=True).stdout
    stats_path = dest / "mutants" / "mutmut-cicd-stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {}
    row = {"target": target, "files": TARGETS[target][0], "rc": rc,
           "minutes": round((time.time() - start) / 60, 1)}
    row.update({k: int(stats.get(k, 0)) for k in COUNTS})
    row["total"] = int(stats.get("total", 0))
    row["not_killed"] = [line.strip() for line in results.splitlines() if line.strip()]
    return row


def kill_rate(row: dict) -> str:
    tested = row["killed"] + row["survived"] + row["timeout"] + row["suspicious"]
    if not tested:
        return "-"
    return f"{100.0 * (row['killed'] + row['timeout']) / tested:.1f}%"


def table(rows) -> str:
    lines = ["| module | mutants | killed | survived | timeout | no tests | kill rate | min |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        lines.append(f"| {' + '.join(r['files'])} | {r['total']} | {r['killed']} | "
                     f"{r['survived']} | {r['timeout']} | {r['no_tests']} | {kill_rate(r)} | "
                     f"{r['minutes']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default=",".join(TARGETS),
                        help=f"comma-separated subset of {sorted(TARGETS)}")
    parser.add_argument("--workdir", default="/tmp/mutrepo")
    parser.add_argument("--max_children", type=int, default=2)
    parser.add_argument("--timeout_multiplier", type=float, default=TIMEOUT_MULTIPLIER,
                        help="a mutant is a timeout after (tests' time + 1 s) x this x 2 CPU "
                             "seconds (mutmut's default is 15)")
    args = parser.parse_args(argv)
    targets = [t for t in args.targets.split(",") if t]
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        parser.error(f"unknown targets {unknown}; choose from {sorted(TARGETS)}")
    workdir = Path(args.workdir).resolve()
    if REPO == workdir or REPO in workdir.parents:
        parser.error("--workdir must be outside the repository (mutmut rewrites its copy)")
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for target in targets:
        print(f"== {target}: mutating {TARGETS[target][0]}", flush=True)
        row = run_target(target, workdir, args.max_children, args.timeout_multiplier)
        rows.append(row)
        print(table([row]).splitlines()[-1], flush=True)
        for name in row["not_killed"]:
            print("   ", name, flush=True)
        # Written after every target, so an interrupted run still reports what finished.
        report = (f"Mutation testing, {datetime.date.today().isoformat()}, mutmut 3, "
                  f"`python mutation/run.py --targets={','.join(targets)}`\n\n{table(rows)}\n")
        (workdir / "report.md").write_text(report)
        (workdir / "report.json").write_text(json.dumps(rows, indent=1))
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
