"""One look at the world: the pool's idle jobs and slots, and every cloud's instances.

Each command rebuilds this from scratch (csctl keeps no database): one schedd query
per schedd, one collector query, one list call per cloud, clouds in parallel.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from csctl.config import Config
from csctl.errors import CloudError
from csctl.model import Cloud, Instance, Pool, Snapshot


def list_clouds(clouds: Mapping[str, Cloud], pool_name: str) -> tuple[list[Instance], dict[str, str]]:
    """Every cloud's csctl instances, clouds listed in parallel; errors per failed cloud."""

    def one(name: str) -> tuple[str, list[Instance] | str]:
        try:
            return name, clouds[name].list_instances(pool_name)
        except CloudError as exc:
            return name, exc.message

    instances: list[Instance] = []
    errors: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=max(1, len(clouds))) as executor:
        for name, result in executor.map(one, list(clouds)):
            if isinstance(result, str):
                errors[name] = result
            else:
                instances += result
    return instances, errors


def take_snapshot(
    pool: Pool | None, clouds: Mapping[str, Cloud], config: Config, jobs: bool = True
) -> Snapshot:
    """The pool's idle jobs (if ``jobs``) and csctl slots (both skipped when ``pool`` is
    None) and every cloud's instances. The pool is read while the clouds are listed."""
    snapshot = Snapshot()
    with ThreadPoolExecutor(max_workers=1) as executor:
        listing = executor.submit(list_clouds, clouds, config.pool.name)
        if pool is not None:
            if jobs:
                queue = pool.idle_jobs()
                snapshot.groups, snapshot.errors = queue.groups, list(queue.errors)
            snapshot.slots = pool.csctl_slots()
        snapshot.instances, cloud_errors = listing.result()
    snapshot.errors += cloud_errors.values()
    snapshot.failed_clouds = set(cloud_errors)
    return snapshot
