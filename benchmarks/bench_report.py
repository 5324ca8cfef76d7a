"""The whole sample report, side by side with an earlier commit: wall time and CPU over the process tree.

    python benchmarks/bench_report.py [--against 3bb2c6a] [--runs 3] [--dataset data/sample] [--jobs N]
                                      [--out benchmarks/results.md]

Issue 30's targets: ``userops report data/sample`` (every notebook, the default ``--jobs``) under 30 s wall on
an idle machine, and at most half the CPU (user + system of the runner and every process it waited for:
job processes or workers, kernels) of commit 3bb2c6a. The earlier commit runs from a git worktree (made
here if missing) with this checkout's virtual environment; the two alternate, each run into a new folder
(no earlier run to order the notebooks by). Medians are compared; every run is listed. Exit 1 when a target
is missed.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench

WALL_TARGET = 30.0
CPU_SHARE = 0.5


def worktree(commit: str) -> Path:
    """A checkout of ``commit`` beside the temporary files, made once."""
    folder = Path(tempfile.gettempdir()) / f"userops-{commit}"
    if not (folder / "userops_lib").is_dir():
        subprocess.run(["git", "worktree", "add", "--force", str(folder), commit], cwd=bench.ROOT, check=True)
    return folder


def one_run(code: Path, dataset: str, jobs: int | None) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system over the process tree) of one report run of ``code``."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "userops_lib.cli", "report", dataset, "--out", out]
        if jobs:
            command += ["--jobs", str(jobs)]
        env = {**os.environ, "PYTHONPATH": str(code)}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        done = subprocess.run(command, cwd=code, env=env, capture_output=True, text=True)
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"the report of {code} failed:\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", default="3bb2c6a")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dataset", default=str(bench.ROOT / "data" / "sample"))
    parser.add_argument("--jobs", type=int, default=None, help="default: each commit's own default")
    parser.add_argument("--out", default=str(bench.ROOT / "benchmarks" / "results.md"))
    args = parser.parse_args()
    earlier = worktree(args.against)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=bench.ROOT, capture_output=True, text=True)
    name = head.stdout.strip() or "HEAD"
    times: dict[str, list[tuple[float, float]]] = {args.against: [], name: []}
    for run in range(args.runs):
        order = [(args.against, earlier), (name, bench.ROOT)]
        for label, code in order if run % 2 == 0 else order[::-1]:
            wall, cpu = one_run(code, args.dataset, args.jobs)
            times[label].append((wall, cpu))
            print(f"run {run + 1} {label}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
    median = {
        label: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t)) for label, t in times.items()
    }
    wall_ok = median[name][0] < WALL_TARGET
    cpu_ok = median[name][1] <= CPU_SHARE * median[args.against][1]
    lines = [
        "",
        f"## The sample report against commit {args.against}, run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        f"`userops report {Path(args.dataset).name}` (every notebook, "
        f"{'--jobs ' + str(args.jobs) if args.jobs else 'each commit its default --jobs'}), {os.cpu_count()} cores, "
        f"the two commits alternated, each run into a new folder; CPU is user + system over the process tree.",
        "",
        f"| run | {args.against} wall | {args.against} CPU | {name} wall | {name} CPU |",
        "|---|---:|---:|---:|---:|",
    ]
    for run in range(args.runs):
        (w0, c0), (w1, c1) = times[args.against][run], times[name][run]
        lines.append(f"| {run + 1} | {w0:.1f} s | {c0:.1f} s | {w1:.1f} s | {c1:.1f} s |")
    (w0, c0), (w1, c1) = median[args.against], median[name]
    lines.append(f"| median | {w0:.1f} s | {c0:.1f} s | {w1:.1f} s | {c1:.1f} s |")
    lines += [
        "",
        f"Targets: under {WALL_TARGET:.0f} s wall — {'met' if wall_ok else 'MISSED'} ({w1:.1f} s); at most "
        f"{CPU_SHARE:.0%} of {args.against}'s CPU — {'met' if cpu_ok else 'MISSED'} ({c1 / c0:.0%}).",
    ]
    bench.append(args.out, lines)
    return 0 if wall_ok and cpu_ok else 1


if __name__ == "__main__":
    sys.exit(main())
