"""Applying a BootPlan: one batched request per cloud and VM type, clouds in parallel."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO

from csctl.config import Config
from csctl.context.render import Batch, encode_user_data, render_user_data
from csctl.context.tokens import SigningKey
from csctl.engine.services import Services
from csctl.engine.snapshot import take_snapshot
from csctl.engine.state import acting, keep_backoff, read_backoff
from csctl.errors import CloudError, CloudQuotaError, CsctlError, InputError
from csctl.model import TAG_BATCH, TAG_BOOTED, TAG_CLOUD, TAG_POOL, TAG_TYPE, BootRequest, Cloud, Instance
from csctl.plan.backoff import Backoff
from csctl.plan.demand import Demand, demand_from_json
from csctl.plan.placement import BootItem, BootPlan, plan_boot
from csctl.plan.supply import snapshot_demand

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What one plan item achieved on its cloud."""

    cloud: str
    vm_type: str
    asked: int
    started: list[str] = field(default_factory=list)
    calls: int = 0
    error: str | None = None
    error_kind: str | None = None  # quota, auth, bad-request, timeout, not-found, backend, payload
    image: str = ""


@dataclass
class BootReport:
    """Every item's outcome; ``partial`` when any cloud failed."""

    outcomes: list[Outcome]

    @property
    def started(self) -> int:
        return sum(len(o.started) for o in self.outcomes)

    @property
    def partial(self) -> bool:
        return any(o.error for o in self.outcomes)


def new_batch_id(cloud: str) -> str:
    """``<cloud>-<short uuid>``: names the VMs of one boot call."""
    return f"{cloud.lower()}-{uuid.uuid4().hex[:8]}"


def boot_request(
    config: Config, cloud: Cloud, item: BootItem, key: SigningKey, now: datetime, batch_id: str, count: int
) -> BootRequest:
    """The request for ``count`` VMs of one plan item, with a freshly rendered payload."""
    batch = Batch(
        batch_id,
        item.vm_type,
        item.cloud,
        cloud.metadata_service,
        private_network=cloud.private_network,
        keep_alive_minutes=item.keep_alive_minutes,
    )
    user_data = encode_user_data(render_user_data(config, batch, key, now), cloud.user_data_limit)
    tags = {
        TAG_POOL: config.pool.name,
        TAG_TYPE: item.vm_type,
        TAG_CLOUD: item.cloud,
        TAG_BATCH: batch_id,
        TAG_BOOTED: now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return BootRequest(
        batch_id, item.vm_type, count, item.image, item.flavor, user_data, tags, item.max_price
    )


_KINDS = {
    "CloudQuotaError": "quota",
    "CloudAuthError": "auth",
    "CloudBadRequest": "bad-request",
    "CloudTimeout": "timeout",
    "CloudNotFound": "not-found",
}


def _boot_item(config: Config, cloud: Cloud, item: BootItem, key: SigningKey, now: datetime) -> Outcome:
    """Boot one item; on quota or capacity errors ask again for half as many."""
    outcome = Outcome(item.cloud, item.vm_type, item.count, image=item.image)
    count = item.count
    while count > 0:
        try:
            request = boot_request(config, cloud, item, key, now, new_batch_id(item.cloud), count)
        except CsctlError as exc:  # the payload cannot be made (template, size)
            outcome.error, outcome.error_kind = f"cloud {item.cloud}: {exc.message}", "payload"
            return outcome
        outcome.calls += 1
        try:
            started: list[Instance] = cloud.boot(request)
        except CloudError as exc:
            outcome.error, outcome.error_kind = exc.message, _KINDS.get(type(exc).__name__, "backend")
            if isinstance(exc, CloudQuotaError):
                count //= 2
                continue
            return outcome
        outcome.started = [i.csctl_id for i in started]
        if len(started) == item.count:
            outcome.error = outcome.error_kind = None
        elif outcome.error is None:
            outcome.error = f"cloud {item.cloud}: started {len(started)} of {item.count}"
            outcome.error_kind = "quota"
        return outcome
    return outcome


def execute_boot(
    plan: BootPlan,
    clouds: Mapping[str, Cloud],
    config: Config,
    key: SigningKey,
    now: datetime,
    backoff: Backoff,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> BootReport:
    """Apply ``plan``: each cloud's items in one thread, all clouds at once.

    A failing cloud never stops the others. ``backoff`` is updated: a cloud (or, for
    a rejected image or flavor, that image on it) that failed is skipped for a while,
    one that booted is forgiven.
    """
    by_cloud: dict[str, list[BootItem]] = {}
    for item in plan.items:
        by_cloud.setdefault(item.cloud, []).append(item)

    def run(cloud_name: str) -> list[Outcome]:
        outcomes = []
        for item in by_cloud[cloud_name]:
            outcome = _boot_item(config, clouds[cloud_name], item, key, now)
            if on_outcome:
                on_outcome(outcome)
            outcomes.append(outcome)
        return outcomes

    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=max(1, len(by_cloud))) as pool:
        for result in pool.map(run, list(by_cloud)):
            outcomes += result
    _update_backoff(outcomes, backoff, now)
    return BootReport(outcomes)


def _update_backoff(outcomes: list[Outcome], backoff: Backoff, now: datetime) -> None:
    for outcome in outcomes:
        image_key = f"{outcome.cloud}/{outcome.image}"
        if outcome.started:
            backoff.succeed(outcome.cloud)
            backoff.succeed(image_key)
        elif outcome.error_kind in ("bad-request", "payload"):
            backoff.fail(image_key, now)  # the image or flavor is at fault, not the cloud
        elif outcome.error_kind is not None:
            backoff.fail(outcome.cloud, now)


@dataclass
class BootResult:
    """A boot plan and, unless it was a dry run, what carrying it out achieved.
    ``errors`` names the schedds and clouds the snapshot could not read."""

    plan: BootPlan
    report: BootReport | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def partial(self) -> bool:
        return bool(self.errors) or (self.report is not None and self.report.partial)


def read_demand(stream: IO[str]) -> Demand:
    """A Demand from ``csctl demand --json`` output; InputError naming the stream if not."""
    try:
        return demand_from_json(json.load(stream))
    except ValueError as exc:
        raise InputError(f"{getattr(stream, 'name', 'demand')}: {exc}") from None


def boot(services: Services, demand_file: IO[str] | None = None, dry_run: bool = False) -> BootResult:
    """Plan the VMs the queue needs (or the demand in ``demand_file``) within every
    cloud's limits and backoff; unless ``dry_run``, boot them and remember the failures."""
    config, now = services.config, services.now()
    given = None if demand_file is None else read_demand(demand_file)
    key = None if dry_run else services.signing_key("boot VMs")
    with acting(services.state_dir, "boot", dry_run):
        # given a demand, only the clouds' lists are needed (for their limits)
        snapshot = take_snapshot(services.pool if given is None else None, services.clouds, config)
        needed = given or snapshot_demand(snapshot, config)
        backoff, warnings = read_backoff(services.state_dir, now)
        plan = plan_boot(needed, snapshot.instances, config, backoff.active(now), now, snapshot.failed_clouds)
        result = BootResult(plan, errors=list(snapshot.errors), warnings=snapshot.warnings + warnings)
        if key is not None:
            result.report = execute_boot(plan, services.clouds, config, key, now, backoff)
            result.warnings += keep_backoff(services.state_dir, backoff)
    return result
