"""One look at the world: the pool's idle jobs and slots, and every cloud's instances.

Each command rebuilds this from scratch (csctl keeps no database): one schedd query
per schedd, one collector query, one list call and one quota call per cloud, or one survey
of a cloud that answers both together (EC2: one DescribeInstances), and the
negotiator's user priorities under ``fair_share = "htcondor"``. All of them are asked at
once, each in its own thread (the cloud SDKs wait on the network without holding the
GIL; the htcondor bindings hold it for a whole schedd query, so the pool runs the idle-jobs
queries asked from these threads in child processes, csctl/pool/child.py), so a snapshot
takes about as long as its slowest answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor

from csctl.config import Config
from csctl.errors import CloudError, CsctlError
from csctl.model import Accountant, Cloud, Instance, Pool, QueueSnapshot, Quota, Snapshot, StartdSlot
from csctl.model.survey import Surveyor
from csctl.plan.identity import screen

# Threads of one snapshot: the pool's three queries and one per cloud, up to this many
MAX_WORKERS = 16


def _listing(cloud: Cloud, pool_name: str) -> list[Instance] | str:
    """The cloud's csctl instances, or its error message."""
    try:
        return cloud.list_instances(pool_name)
    except CloudError as exc:
        return exc.message


def _quota(cloud: Cloud) -> Quota:
    """The cloud's quota, or one whose ``error`` says why it is unknown."""
    try:
        return cloud.quota()
    except CloudError as exc:
        return Quota(error=exc.message)
    except Exception as exc:  # noqa: BLE001 - a driver's own bug in quota() never stops a boot
        return Quota(error=f"{type(exc).__name__}: {exc}")


def _survey(cloud: Surveyor, pool_name: str) -> tuple[list[Instance] | str, Quota]:
    """The cloud's csctl instances (or its error message) and its quota, asked as one."""
    try:
        return cloud.survey(pool_name)
    except CloudError as exc:  # no listing, no count of the instances the quota takes off
        return exc.message, Quota(error=exc.message)


def _priorities(pool: Accountant) -> dict[str, float] | str:
    try:
        return pool.user_priorities()
    except CsctlError as exc:
        return exc.message


def _gather(listings: Mapping[str, list[Instance] | str]) -> tuple[list[Instance], dict[str, str]]:
    instances: list[Instance] = []
    errors: dict[str, str] = {}
    for name, result in listings.items():
        if isinstance(result, str):
            errors[name] = result
        else:
            instances += result
    return instances, errors


def list_clouds(clouds: Mapping[str, Cloud], pool_name: str) -> tuple[list[Instance], dict[str, str]]:
    """Every cloud's csctl instances, clouds listed in parallel; errors per failed cloud."""
    with ThreadPoolExecutor(max_workers=max(1, min(MAX_WORKERS, len(clouds)))) as executor:
        listings = {name: executor.submit(_listing, cloud, pool_name) for name, cloud in clouds.items()}
        return _gather({name: future.result() for name, future in listings.items()})


def take_snapshot(
    pool: Pool | None, clouds: Mapping[str, Cloud], config: Config, jobs: bool = True
) -> Snapshot:
    """The pool's idle jobs (if ``jobs``) and csctl slots (both skipped when ``pool`` is
    None) and every cloud's instances, all asked at once.

    A cloud that fails is named in ``errors`` and ``failed_clouds``; a schedd that fails,
    in ``errors``. PoolUnreachable from the pool is raised once every query has ended,
    the idle jobs' before the slots'.
    """
    with ThreadPoolExecutor(max_workers=max(1, min(MAX_WORKERS, 2 * len(clouds) + 4))) as executor:
        queue: Future[QueueSnapshot] | None = None
        slots: Future[list[StartdSlot]] | None = None
        running: Future[tuple[dict[str, list[str]], list[str]]] | None = None
        if pool is not None:
            queue = executor.submit(pool.idle_jobs) if jobs else None
            slots = executor.submit(pool.csctl_slots)
            running = executor.submit(pool.running_jobs)
        name = config.pool.name
        # a cloud that can answer both at once (survey) is asked once, in one thread
        surveys = {
            c: executor.submit(_survey, cloud, name)
            for c, cloud in clouds.items()
            if isinstance(cloud, Surveyor)
        }
        listings = {
            c: executor.submit(_listing, cloud, name) for c, cloud in clouds.items() if c not in surveys
        }
        quotas = {c: executor.submit(_quota, cloud) for c, cloud in clouds.items() if c not in surveys}
        fair = config.policy.fair_share == "htcondor" and isinstance(pool, Accountant)
        priorities = executor.submit(_priorities, pool) if fair and jobs else None  # type: ignore[arg-type]
    snapshot = Snapshot()
    if queue is not None:
        idle = queue.result()
        snapshot.groups, snapshot.errors = idle.groups, list(idle.errors)
    if slots is not None:
        snapshot.slots = slots.result()
    if running is not None:
        snapshot.running, running_errors = running.result()
        snapshot.errors += [e for e in running_errors if e not in snapshot.errors]
    snapshot.pool_errors = list(snapshot.errors)
    answers = {
        c: surveys[c].result() if c in surveys else (listings[c].result(), quotas[c].result()) for c in clouds
    }
    instances, cloud_errors = _gather({cloud: listing for cloud, (listing, _) in answers.items()})
    # ids from tags and startd attributes are untrusted: only csctl's grammar goes on
    snapshot.instances, snapshot.slots, snapshot.warnings = screen(instances, snapshot.slots)
    snapshot.errors += cloud_errors.values()
    snapshot.failed_clouds = set(cloud_errors)
    snapshot.cloud_errors = cloud_errors
    snapshot.quotas = {cloud: quota for cloud, (_, quota) in answers.items()}
    if priorities is not None:
        answer = priorities.result()
        if isinstance(answer, str):  # fair share falls back to equal shares, and says so
            snapshot.warnings.append(f"user priorities unknown ({answer}): equal shares this cycle")
        else:
            snapshot.priorities = answer
    return snapshot
