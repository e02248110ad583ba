"""Start-up cost: `csctl --help` against a bare process importing click and rich.console.

Each command runs RUNS times in a fresh process, alternating, after one warm-up run of
each (so that every file is in the page cache); the table shows the median wall time.
Needs no test bed. The csctl source is the one next to this script (PYTHONPATH), so the
same script measures another checkout when copied into it.

Target: `csctl --help` <= 2.0 x the bare import of click and rich.console.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 21
TARGET = 2.0


def csctl_script() -> list[str]:
    """The installed console script (what an operator runs), else ``python -m csctl``."""
    script = Path(sys.executable).with_name("csctl")
    return [str(script)] if script.exists() else [sys.executable, "-m", "csctl"]


def commands() -> dict[str, list[str]]:
    """Name -> argv of each measured process; the first is the reference of the ratios."""
    return {
        "python -c 'import click, rich.console'": [sys.executable, "-c", "import click, rich.console"],
        "python -c pass": [sys.executable, "-c", "pass"],
        "csctl --help": [*csctl_script(), "--help"],
        "csctl --version": [*csctl_script(), "--version"],
    }


def wall(argv: list[str], env: dict[str, str]) -> float:
    """Seconds from spawn to exit of one process (its output discarded)."""
    started = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argvs = commands()
    times: dict[str, list[float]] = {name: [] for name in argvs}
    for argv in argvs.values():
        wall(argv, env)
    for _ in range(RUNS):
        for name, argv in argvs.items():
            times[name].append(wall(argv, env))
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    reference = medians[next(iter(argvs))]
    print(f"start-up (median of {RUNS} runs, each a fresh process; csctl from {ROOT})")
    print("| command | median ms | min ms | ratio to click + rich.console |")
    print("| --- | ---: | ---: | ---: |")
    for name, median in medians.items():
        fastest = min(times[name])
        print(f"| `{name}` | {median * 1000:.0f} | {fastest * 1000:.0f} | {median / reference:.2f} |")
    print(f"target: csctl --help <= {TARGET} x the bare import of click and rich.console")


if __name__ == "__main__":
    main()
