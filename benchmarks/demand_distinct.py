"""csctl demand over N distinct idle jobs read from a ``condor_q -json`` file (no pool).

Every job differs from every other (its memory request, image size and a machine it
avoids), so no two share an autocluster: the worst case for grouping. Each run is a fresh
`csctl --json demand --from-file` process; peak RSS comes from wait4().

    .venv/bin/python benchmarks/demand_distinct.py [--sizes 10000 100000] [--runs 3] [--before-tree DIR]

``--before-tree`` runs an earlier checkout of csctl on the same files, each of its runs
just before one of this csctl's, so both see the same load.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "csctl.toml"
TARGET_S, TARGET_MB = 10.0, 250.0


def write_jobs(path: Path, count: int) -> None:
    """``count`` distinct idle jobs in condor_q -json form, condor_submit style."""
    jobs = []
    for i in range(count):
        requirements = (
            '(TARGET.Arch == "X86_64") && (TARGET.OpSys == "LINUX") && (TARGET.Disk >= RequestDisk) '
            f'&& (TARGET.Memory >= RequestMemory) && (TARGET.Machine != "wn{i}.example.org")'
        )
        jobs.append(
            {
                "ClusterId": 100 + i // 100,
                "ProcId": i % 100,
                "JobStatus": 1,
                "Owner": f"user{i % 50}",
                "Requirements": f"/Expr({requirements})/",
                "RequestCpus": 1 + i % 4,
                "RequestMemory": 1000 + i % 16000,
                "RequestDisk": "/Expr(DiskUsage)/",
                "DiskUsage": 1000 + i,
                "ImageSize": 10_000 + i,
                "JobUniverse": 5,
            }
        )
    path.write_text(json.dumps(jobs))


def timed(argv: list[str], tree: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system, its children's included) and peak RSS
    (MB, the largest of it and its children) of one child process."""
    started = time.perf_counter()
    # run from the checkout ``tree``: ``-m csctl`` imports that csctl, not another
    proc = subprocess.Popen(argv, cwd=tree, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        error = proc.stderr.read().decode()[-500:] if proc.stderr else ""
        raise RuntimeError(f"csctl demand failed ({status}): {error}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--runs", type=int, default=3, help="runs of each csctl at each size (median shown)")
    parser.add_argument(
        "--before-tree",
        type=Path,
        help="a checkout of an earlier csctl: run on the same files, interleaved with this one",
    )
    args = parser.parse_args()
    trees = [("after", ROOT)] if args.before_tree is None else [("before", args.before_tree), ("after", ROOT)]
    rows = []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="csctl-bench-") as tmp:
        for size in args.sizes:
            path = Path(tmp) / f"jobs{size}.json"
            write_jobs(path, size)
            runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _ in trees}
            for _ in range(args.runs):
                for name, tree in trees:
                    argv = [sys.executable, "-m", "csctl", "--config", str(CONFIG), "--json", "demand"]
                    runs[name].append(timed([*argv, "--from-file", str(path)], tree))
            rows += [(name, size, runs[name]) for name, _ in trees]
    print("csctl --json demand --from-file, distinct jobs (one fresh process each)")
    print(f"CPUs: {len(os.sched_getaffinity(0))}; load average (1 min) before the runs: {load:.2f}")
    print("| csctl | jobs | wall s (median) | wall s (all runs) | CPU s (median) | peak RSS MB |")
    print("| --- | ---: | ---: | --- | ---: | ---: |")
    for name, size, got in rows:
        walls = [w for w, _, _ in got]
        cpu = statistics.median(c for _, c, _ in got)
        mb = max(m for _, _, m in got)
        every = " / ".join(f"{w:.2f}" for w in walls)
        print(f"| {name} | {size:,} | {statistics.median(walls):.2f} | {every} | {cpu:.2f} | {mb:.0f} |")
    print(f"targets at 100,000: < {TARGET_S:.0f} s wall, < {TARGET_MB:.0f} MB")


if __name__ == "__main__":
    main()
