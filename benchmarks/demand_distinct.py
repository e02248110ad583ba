"""csctl demand over N distinct idle jobs read from a ``condor_q -json`` file (no pool).

Every job differs from every other (its memory request, image size and a machine it
avoids), so no two share an autocluster: the worst case for grouping. Each run is a fresh
`csctl --json demand --from-file` process; peak RSS comes from wait4().

    .venv/bin/python benchmarks/demand_distinct.py [--sizes 10000 100000] [--before S CPU MB]

``--before`` adds the numbers of an earlier csctl (measured the same way) to the table.
"""

from __future__ import annotations

import argparse
import json
import os
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


def timed(argv: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MB) of one child process."""
    started = time.perf_counter()
    # run from the checkout next to this script: ``-m csctl`` imports that csctl, not another
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        error = proc.stderr.read().decode()[-500:] if proc.stderr else ""
        raise RuntimeError(f"csctl demand failed ({status}): {error}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    # csctl before each distinct job's reading and judging were cut down (wall s, CPU s, peak
    # MB): the median of six runs interleaved with the csctl after it, 2 shared CPUs
    parser.add_argument(
        "--before", type=float, nargs=3, metavar=("S", "CPU", "MB"), default=(18.2, 18.0, 185.0)
    )
    args = parser.parse_args()
    rows = []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="csctl-bench-") as tmp:
        for size in args.sizes:
            path = Path(tmp) / f"jobs{size}.json"
            write_jobs(path, size)
            argv = [sys.executable, "-m", "csctl", "--config", str(CONFIG), "--json", "demand"]
            rows.append((size, *timed([*argv, "--from-file", str(path)])))
    before_s, before_cpu, before_mb = args.before
    print("csctl --json demand --from-file, distinct jobs (one fresh process each)")
    print(f"load average (1 min) before the runs: {load:.2f}")
    print("| jobs | wall s | CPU s | peak RSS MB |")
    print("| ---: | ---: | ---: | ---: |")
    for size, wall, cpu, mb in rows:
        print(f"| {size:,} | {wall:.2f} | {cpu:.2f} | {mb:.0f} |")
    print(f"before, at 100,000: {before_s:.1f} s wall, {before_cpu:.1f} s CPU, {before_mb:.0f} MB")
    print(f"targets at 100,000: < {TARGET_S:.0f} s, < {TARGET_MB:.0f} MB")


if __name__ == "__main__":
    main()
