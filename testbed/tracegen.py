"""A synthetic workload for ``csctl simulate``'s tests and benchmark: bursty, several owners.

Arrivals come in bursts: quiet stretches where jobs trickle in, then bursts where many
arrive within minutes (a two-state modulated Poisson process). Each owner has its own
job shape (cores, memory) and run-time scale. Everything is drawn from one seeded
generator, so a seed names one trace; nothing here knows what a replay should find.

    python -m testbed.tracegen --jobs 20000 --days 90 --seed 1 > bursty.swf
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Owner:
    """One submitter: the cores and MB per core its jobs ask, and their mean run time."""

    user: int
    cpus: int
    memory_per_cpu_mb: int
    mean_run: float


OWNERS = (
    Owner(1, 1, 2000, 1800.0),
    Owner(2, 4, 2000, 3600.0),
    Owner(3, 8, 1000, 7200.0),
    Owner(4, 2, 4000, 900.0),
)
SWF_HEADER = "; Version: 2.2\n; Note: synthetic bursty trace (testbed/tracegen.py)\n"


@dataclass(frozen=True)
class Job:
    """One generated job."""

    submit: int
    run: int
    owner: Owner


def bursty_jobs(
    jobs: int,
    days: float,
    seed: int,
    owners: tuple[Owner, ...] = OWNERS,
    burst_share: float = 0.7,
    burst_hours: float = 2.0,
) -> list[Job]:
    """``jobs`` jobs over about ``days`` days: ``burst_share`` of them in bursts of about
    ``burst_hours`` hours each, the rest spread evenly; owners drawn uniformly."""
    rng = random.Random(seed)
    span = days * 86400
    in_bursts = round(jobs * burst_share)
    per_burst = max(1, round(in_bursts / max(1, round(days))))  # about one burst a day
    starts = sorted(rng.uniform(0, span - burst_hours * 3600) for _ in range(-(-in_bursts // per_burst)))
    submits = [s + rng.expovariate(1 / (burst_hours * 3600 / 3)) for s in starts for _ in range(per_burst)]
    submits = submits[:in_bursts] + [rng.uniform(0, span) for _ in range(jobs - in_bursts)]
    out = []
    for submit in sorted(submits):
        owner = rng.choice(owners)
        run = max(1, round(rng.lognormvariate(0, 0.8) * owner.mean_run))
        out.append(Job(int(min(submit, span)), run, owner))
    return out


def swf(jobs: list[Job]) -> str:
    """The jobs as a Standard Workload Format log (requested memory in KB per processor)."""
    lines = [SWF_HEADER]
    for number, job in enumerate(jobs, 1):
        o = job.owner
        memory_kb = o.memory_per_cpu_mb * 1024
        fields = [number, job.submit, -1, job.run, o.cpus, -1, -1, o.cpus, -1, memory_kb, 1, o.user]
        fields += [-1, -1, 0, -1, -1, -1]
        lines.append(" ".join(str(f) for f in fields) + "\n")
    return "".join(lines)


def main() -> None:
    """Print a bursty SWF trace."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--burst-share", type=float, default=0.7)
    args = parser.parse_args()
    sys.stdout.write(swf(bursty_jobs(args.jobs, args.days, args.seed, burst_share=args.burst_share)))


if __name__ == "__main__":
    main()
