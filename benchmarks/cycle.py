"""One `run` cycle with 5 clouds x 200 VMs (moto, 200 ms per API call) and 100,000 idle
jobs in the test pool, when there is nothing to do (every cloud at its limit).

In the same run it times the two things a cycle waits for, each alone: csctl's query of
the pool's idle jobs (`HTCondorPool.idle_jobs`) and the slowest cloud's list call. The
snapshot asks the pool and every cloud at once, so a cycle should take about the slower
of the two.

It also notes when the cycle's first cloud call went out: at once if the clouds are asked
while the schedd works, or only once its query has ended if they wait for it (htcondor2
holds the GIL for a whole query; csctl runs such queries in child processes).

It counts, per cycle, the DescribeInstances requests each cloud got (an EC2 cloud answers a
snapshot's list and quota from one), the CPU seconds the moto servers spent answering and
those of csctl's own process (botocore parsing the answers, mostly).

Targets: cycle <= 1.1 x the slower of the two (and <= 10 s); 1 DescribeInstances per cloud.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clouds import CLOUDS, DELAY, Recorder, clouds_toml, cpu_seconds, first_image, start_moto
from demand import remove_all, submit

from csctl.clouds.registry import make_cloud
from csctl.config import Config, parse_config
from csctl.context.tokens import read_signing_key
from csctl.engine.boot import execute_boot
from csctl.engine.cycle import run_cycle
from csctl.engine.snapshot import list_clouds
from csctl.plan.backoff import Backoff
from csctl.plan.demand import Demand, VMRequirement
from csctl.plan.placement import plan_boot
from csctl.pool.htcondor import HTCondorPool
from testbed import pool

JOBS = 100_000
VMS = 200
RUNS = 3


class FirstCall:
    """When the first API call of any of the clouds it watches was made."""

    def __init__(self) -> None:
        self.at: float | None = None

    def watch(self, client: Any) -> None:
        client.meta.events.register("before-call.ec2.*", self._seen)

    def _seen(self, **_: Any) -> None:
        if self.at is None:
            self.at = time.perf_counter()


def alone(config: Config) -> tuple[float, float, float]:
    """Best of RUNS: seconds of the pool's idle-jobs query alone, of the slowest cloud's
    list call alone (each cloud listed on its own, with the same API delay), and of all
    clouds listed at once (on a small machine their servers compete for the CPUs)."""
    pool_s, cloud_s, clouds_s = [], [], []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        HTCondorPool(config.pool).idle_jobs()
        pool_s.append(time.perf_counter() - t0)
        clouds = {name: make_cloud(name, config.clouds[name]) for name in CLOUDS}
        lists = []
        for name, cloud in clouds.items():
            Recorder().attach(name, cloud.client)  # type: ignore[attr-defined]
            t0 = time.perf_counter()
            cloud.list_instances(config.pool.name)
            lists.append(time.perf_counter() - t0)
        cloud_s.append(max(lists))
        t0 = time.perf_counter()
        list_clouds(clouds, config.pool.name)
        clouds_s.append(time.perf_counter() - t0)
    return min(pool_s), min(cloud_s), min(clouds_s)


def main() -> None:
    parser = argparse.ArgumentParser(description="one quiet run cycle against its slowest peer")
    parser.add_argument(
        "--vms",
        type=int,
        default=VMS,
        help="VMs per cloud; few (e.g. 20) keep the moto servers off the CPUs the schedd needs",
    )
    vms = parser.parse_args().vms
    tmp = Path(tempfile.mkdtemp(prefix="csctl-bench-"))
    servers = start_moto(tmp)
    p = pool.paths()
    p.run.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack, open(p.run / "session.lock", "w") as lock:
        for server in servers.values():
            stack.enter_context(server)
        endpoints = {cloud: server.endpoint for cloud, server in servers.items()}
        fcntl.flock(lock, fcntl.LOCK_EX)  # exclusive use of the test pool, before touching it
        pool.up(p.base)
        os.environ.update(pool.client_env(p))
        import htcondor2

        schedd = htcondor2.Schedd(htcondor2.Collector(pool.COLLECTOR).locate(htcondor2.DaemonType.Schedd))
        image = {first_image(endpoint) for endpoint in endpoints.values()}.pop()  # also warms each server up
        config = parse_config(
            f'state_dir = "{tmp}/state"\n[pool]\nname = "{pool.POOL_NAME}"\ncollector = "{pool.COLLECTOR}"\n'
            f'filesystem_domain = "{pool.POOL_NAME}"\n[policy]\nmax_new_vms_per_cycle = 100000\n'
            f"join_timeout_minutes = 600\n" + clouds_toml(endpoints, image, max_vms=vms)
        )
        key = read_signing_key(p.signing_key)
        fill = {name: make_cloud(name, config.clouds[name]) for name in CLOUDS}
        filler = Recorder()
        for name, cloud in fill.items():
            filler.attach(name, cloud.client)  # type: ignore[attr-defined]
        need = Demand([VMRequirement("pandacernvm", list(CLOUDS), vms_needed=vms * len(CLOUDS))], [], 0)
        execute_boot(plan_boot(need, [], config), fill, config, key, datetime.now(UTC), Backoff())
        try:
            remove_all(schedd)
            submit(schedd, JOBS)
            pool_s, cloud_s, clouds_s = alone(config)
            rows = []
            for attempt in range(3):
                clouds = {name: make_cloud(name, config.clouds[name]) for name in CLOUDS}
                recorder, first = Recorder(), FirstCall()
                for name, cloud in clouds.items():
                    recorder.attach(name, cloud.client)  # type: ignore[attr-defined]
                    first.watch(cloud.client)  # type: ignore[attr-defined]
                t0, cpu0, servers0 = time.perf_counter(), time.process_time(), cpu_seconds(servers.values())
                report, _, booted, retired = run_cycle(
                    config, HTCondorPool(config.pool), clouds, key, Backoff(), datetime.now(UTC)
                )
                wall = time.perf_counter() - t0
                cpu, servers_cpu = time.process_time() - cpu0, cpu_seconds(servers.values()) - servers0
                seen = sum(n for per in report.vms.values() for n in per.values())
                slowest = max(recorder.seconds.values())
                asked = (first.at or t0) - t0
                print(
                    f"cycle {attempt + 1} phases: {report.phases}; slowest cloud's API time {slowest:.2f} s; "
                    f"first cloud call {asked:.2f} s after the start",
                    flush=True,
                )
                rows.append(
                    (
                        attempt + 1,
                        wall,
                        asked,
                        report.idle_jobs,
                        seen,
                        recorder.per_cloud("DescribeInstances"),
                        sum(recorder.calls.values()),
                        servers_cpu,
                        cpu,
                        booted.started,
                        len(retired.terminated),
                    )
                )
        finally:
            remove_all(schedd)
    setup = f"{len(CLOUDS)} clouds x {vms} VMs (moto, {DELAY * 1000:.0f} ms per call), {JOBS:,} idle jobs"
    print(f"csctl run: {setup}")
    slower, slower_all = max(pool_s, cloud_s), max(pool_s, clouds_s)
    print(
        f"alone (best of {RUNS}): idle-jobs query {pool_s:.2f} s, slowest cloud's list {cloud_s:.2f} s; "
        f"all {len(CLOUDS)} clouds listed at once {clouds_s:.2f} s; {os.cpu_count()} CPUs"
    )
    print(
        "| cycle | wall s | first cloud call s | ratio to the slower alone | ratio with all clouds at once "
        "| idle jobs | VMs seen | DescribeInstances per cloud | all API calls | moto CPU s | csctl CPU s "
        "| booted | terminated |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n, wall, asked, idle, vms, lists, calls, moto_cpu, cpu, booted, terminated in rows:
        per_cloud = ",".join(map(str, sorted(lists)))
        print(
            f"| {n} | {wall:.2f} | {asked:.2f} | {wall / slower:.2f} | {wall / slower_all:.2f} "
            f"| {idle:,} | {vms} | {per_cloud} | {calls} | {moto_cpu:.1f} | {cpu:.1f} "
            f"| {booted} | {terminated} |"
        )
    print(
        "targets: <= 1.1 x the slower of the idle-jobs query and the slowest cloud's list alone, "
        "<= 10 s per cycle, 1 DescribeInstances per cloud per quiet cycle"
    )


if __name__ == "__main__":
    main()
