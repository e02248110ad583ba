"""Cloud API calls and wall time of `boot` with 5 clouds whose calls each take 200 ms.

Target: one list call per cloud, one boot call per cloud and type, whatever the number
of VMs; wall time about one cloud's, not the sum of five.
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

from clouds import CLOUDS, DELAY, Recorder, clouds_toml, first_image, start_moto

from csctl.clouds.registry import make_cloud
from csctl.config import parse_config
from csctl.context.tokens import SigningKey
from csctl.engine.boot import execute_boot
from csctl.engine.snapshot import list_clouds
from csctl.plan.backoff import Backoff
from csctl.plan.demand import Demand, VMRequirement
from csctl.plan.placement import plan_boot


def one_run(
    endpoints: dict[str, str], image: str, per_cloud: int
) -> tuple[int, set[int], set[int], float, float, float]:
    config = parse_config(
        '[pool]\nname = "bench"\ncollector = "127.0.0.1"\n[policy]\nmax_new_vms_per_cycle = 100000\n'
        + clouds_toml(endpoints, image, max_vms=per_cloud)
    )
    recorder = Recorder()
    clouds = {name: make_cloud(name, config.clouds[name]) for name in CLOUDS}
    for name, cloud in clouds.items():
        recorder.attach(name, cloud.client)  # type: ignore[attr-defined]
    demand = Demand([VMRequirement("pandacernvm", list(CLOUDS), vms_needed=per_cloud * len(CLOUDS))], [], 0)
    t0 = time.perf_counter()
    instances, errors = list_clouds(clouds, config.pool.name)
    list_wall = time.perf_counter() - t0
    assert not errors, errors
    plan = plan_boot(demand, instances, config)
    listed = recorder.total_seconds()
    t0 = time.perf_counter()
    report = execute_boot(
        plan, clouds, config, SigningKey("POOL", os.urandom(32)), datetime.now(UTC), Backoff()
    )
    boot_wall = time.perf_counter() - t0
    assert report.started == per_cloud * len(CLOUDS), report
    return (
        per_cloud,
        recorder.per_cloud("DescribeInstances"),
        recorder.per_cloud("RunInstances"),
        list_wall,
        boot_wall,
        recorder.total_seconds() - listed,
    )


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="csctl-bench-"))
    servers = start_moto(tmp)
    rows = []
    with ExitStack() as stack:
        for server in servers.values():
            stack.enter_context(server)
        endpoints = {cloud: server.endpoint for cloud, server in servers.items()}
        image = {first_image(endpoint) for endpoint in endpoints.values()}.pop()  # also warms each server up
        for per_cloud in (1, 20, 200):
            for server in servers.values():
                server.reset()
            rows.append(one_run(endpoints, image, per_cloud))
    print(f"csctl boot: {len(CLOUDS)} EC2 clouds (moto), every API call delayed {DELAY * 1000:.0f} ms")
    print(
        "| VMs per cloud | list calls per cloud | boot calls per cloud | list wall s "
        "| boot wall s | boot calls' summed time s |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for per_cloud, lists, boots, list_wall, boot_wall, boot_sum in rows:
        print(
            f"| {per_cloud} | {','.join(map(str, sorted(lists)))} | {','.join(map(str, sorted(boots)))} "
            f"| {list_wall:.2f} | {boot_wall:.2f} | {boot_sum:.2f} |"
        )
    print("clouds are driven in parallel: wall time tracks the slowest cloud, not the summed time;")
    print("(five moto processes share this machine's two cores: at 200 VMs per cloud their own work shows)")


if __name__ == "__main__":
    main()
