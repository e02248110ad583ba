"""`csctl simulate` replay time: 10,000, 20,000 and 100,000 jobs over three months.

Bursty traces from testbed/tracegen.py (seeded), replayed with the default cycle (300 s)
and boot delay under a two-cloud configuration; the table shows the wall time of each
replay (trace parsing included), the cycles run and the job shapes (the groups the
planners see). Needs no test bed. ``--trace FILE`` adds a row for a trace of your own
(e.g. the Parallel Workloads Archive's Lublin-Feitelson log).

Target: a three-month trace of 20,000 jobs replays in under 30 s; the cost grows with
cycles and job groups, not with jobs per group.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from csctl.config import parse_config  # noqa: E402
from csctl.engine.simulate import simulate  # noqa: E402
from csctl.engine.simulate.runner import Settings  # noqa: E402
from testbed.tracegen import bursty_jobs, swf  # noqa: E402

DAYS = 90
TARGET_S = 30.0
CONFIG = """
state_dir = "/nonexistent/state"
[pool]
name = "pool.bench"
collector = "127.0.0.1:1"
[clouds.A]
driver = "local"
work_dir = "/nonexistent/a"
priority = 10
max_vms = 200
[clouds.B]
driver = "local"
work_dir = "/nonexistent/b"
[vm_types.std]
cpus = 16
memory = 64000
disk = 200
images = { A = "img-a", B = "img-b" }
keep_alive_minutes = 10
[policy]
max_new_vms_per_cycle = 20
"""


def measure(path: Path) -> tuple[float, int, int, int]:
    """Seconds, cycles, served jobs, and jobs of the trace."""
    config = parse_config(CONFIG, "benchmark")
    started = time.perf_counter()
    report = simulate(config, path, Settings(seed=1))
    seconds = time.perf_counter() - started
    [result] = report.variants
    return seconds, result.cycles, result.served, result.jobs


def main() -> None:
    parser = argparse.ArgumentParser(description="csctl simulate replay time")
    parser.add_argument("--sizes", default="10000,20000,100000", help="jobs per generated trace")
    parser.add_argument("--trace", type=Path, help="also replay this trace")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for jobs in (int(n) for n in args.sizes.split(",")):
            path = Path(tmp) / f"bursty-{jobs}.swf"
            path.write_text(swf(bursty_jobs(jobs, DAYS, seed=1)))
            rows.append((f"bursty, {jobs:,} jobs, {DAYS} days", *measure(path)))
    if args.trace:
        rows.append((args.trace.name, *measure(args.trace)))
    print("| trace | wall s | cycles | served | jobs | target |\n| --- | ---: | ---: | ---: | ---: | --- |")
    for name, seconds, cycles, served, jobs in rows:
        target = f"<= {TARGET_S:g} s" if "20,000" in name else ""
        print(f"| {name} | {seconds:.1f} | {cycles:,} | {served:,} | {jobs:,} | {target} |")


if __name__ == "__main__":
    main()
