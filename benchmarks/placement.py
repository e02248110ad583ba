"""Planning boots for 10,000 owners x 50 VM types x 20 clouds: ``plan_boot`` alone.

A seeded demand: 50 VM types, each bootable on all 20 clouds, four requirements per type
(jobs that name different cloud sets, spot prices or keep-alives stay apart), and
10,000 owners each needing VMs of one to three requirements. The clouds allow far
fewer VMs than asked, so fair share decides. Timed for each ``policy.fair_share``, and
against the placement before fair share (``--before REV``: that revision's
csctl/plan/placement.py, which ignores owners). Best of ``--runs``; no test bed.

    .venv/bin/python benchmarks/placement.py [--before REV] [--runs N]
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from csctl.config import parse_config  # noqa: E402
from csctl.plan.demand import Demand, VMRequirement  # noqa: E402
from csctl.plan.placement import plan_boot  # noqa: E402

OWNERS, TYPES, CLOUDS = 10_000, 50, 20
PER_TYPE = 4  # requirements per VM type
TARGET = 1.0  # seconds


def config(policy: str, per_cloud: int) -> object:
    clouds = "".join(
        f'[clouds.c{c}]\ndriver = "local"\npriority = {c % 5}\n'
        f"max_vms = {per_cloud}\nmax_cores = {per_cloud * 4}\n"
        for c in range(CLOUDS)
    )
    images = ", ".join(f'c{c} = "img"' for c in range(CLOUDS))
    types = "".join(
        f"[vm_types.t{t}]\ncpus = {1 + t % 4}\nmemory = {2000 * (1 + t % 4)}\n"
        f"disk = 20\nimages = {{ {images} }}\n"
        for t in range(TYPES)
    )
    policy_section = f'[policy]\nmax_new_vms_per_cycle = 1000000\nfair_share = "{policy}"\n'
    return parse_config(f'[pool]\nname = "p"\ncollector = "127.0.0.1"\n{policy_section}{clouds}{types}')


def demand(seed: int = 1) -> Demand:
    rng = random.Random(seed)
    needs: list[dict[str, int]] = [{} for _ in range(TYPES * PER_TYPE)]
    for owner in range(OWNERS):
        for req in rng.sample(range(len(needs)), rng.randint(1, 3)):
            needs[req][f"user{owner:05d}"] = rng.randint(1, 20)
    reqs = []
    for i, by_owner in enumerate(needs):
        clouds = [f"c{c}" for c in range(CLOUDS) if (c + i) % PER_TYPE or i % PER_TYPE == 0]
        total = sum(by_owner.values())
        reqs.append(
            VMRequirement(
                f"t{i // PER_TYPE}",
                clouds,
                idle_jobs=total,
                vms_needed=total,
                owners=sorted(by_owner),
                need_by_owner=by_owner,
                keep_alive_minutes=i % PER_TYPE or None,
            )
        )
    return Demand(reqs, [], sum(r.vms_needed for r in reqs))


def old_plan_boot(rev: str) -> object:
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:csctl/plan/placement.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "placement_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("placement_before", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.plan_boot


def best(fn, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="cf2ae03", help="revision of the placement before fair share")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--per-cloud", type=int, default=500, help="max_vms of each cloud")
    args = parser.parse_args()
    d = demand()
    owners = len({o for r in d.requirements for o in r.need_by_owner})
    print(
        f"{owners} owners, {TYPES} VM types ({len(d.requirements)} requirements), {CLOUDS} clouds; "
        f"{d.vms_needed} VMs asked, clouds allow {CLOUDS * args.per_cloud}"
    )
    print(f"| placement | seconds (best of {args.runs}) | VMs planned | owners served | target |")
    print("| --- | ---: | ---: | ---: | ---: |")
    rows = []
    if args.before:
        before = old_plan_boot(args.before)
        seconds, plan = best(lambda: before(d, [], config("off", args.per_cloud)), args.runs)
        rows.append((f"before ({args.before}, no owners)", seconds, plan.total, "-"))
    priorities = {f"user{o:05d}@p": 500.0 + (o % 7) * 250 for o in range(OWNERS)}
    for policy in ("off", "equal", "htcondor"):
        cfg = config(policy, args.per_cloud)
        seconds, plan = best(lambda cfg=cfg: plan_boot(d, [], cfg, priorities=priorities), args.runs)
        served = sum(1 for o in plan.owners if o.granted)
        rows.append((f"fair_share = {policy}", seconds, plan.total, served))
    for name, seconds, total, served in rows:
        print(f"| {name} | {seconds:.3f} | {total} | {served} | < {TARGET:.0f} s |")


if __name__ == "__main__":
    main()
