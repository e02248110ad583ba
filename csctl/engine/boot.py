"""Applying a BootPlan: one batched request per cloud and VM type, clouds in parallel."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import IO

from csctl.config import Config
from csctl.context.render import Batch, encode_user_data, render_user_data
from csctl.context.tokens import SigningKey
from csctl.engine.downtime import downtime_demand
from csctl.engine.judging import judge_apart
from csctl.engine.services import Services
from csctl.engine.snapshot import take_snapshot
from csctl.engine.state import acting, keep_backoff, read_backoff
from csctl.errors import CloudError, CloudQuotaError, CsctlError, InputError
from csctl.model import (
    TAG_BATCH,
    TAG_BOOTED,
    TAG_CLOUD,
    TAG_POOL,
    TAG_SLOTS,
    TAG_TYPE,
    BootRequest,
    Cloud,
    Instance,
    Snapshot,
)
from csctl.plan.backoff import Backoff, after_failure
from csctl.plan.demand import Demand
from csctl.plan.demand_file import demand_from_json
from csctl.plan.images import LOOKUP_FAILED, image_urls, is_image_url, registration_problem, resolve_images
from csctl.plan.placement import BootItem, BootPlan, plan_boot
from csctl.plan.supply import snapshot_demand
from csctl.plan.zones import UnavailableZones, zones_to_try

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
    # quota, capacity, throttled, price, auth, bad-request, timeout, not-found, backend, payload
    error_kind: str | None = None
    image: str = ""
    zones_unavailable: list[str] = field(default_factory=list)  # zones that ran out of capacity


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
    config: Config,
    cloud: Cloud,
    item: BootItem,
    key: SigningKey,
    now: datetime,
    batch_id: str,
    count: int,
    zone: str | None = None,
) -> BootRequest:
    """The request for ``count`` VMs of one plan item (in ``zone``, if given), with a
    freshly rendered payload and the VM type's root disk."""
    batch = Batch(
        batch_id,
        item.vm_type,
        item.cloud,
        cloud.metadata_service,
        private_network=cloud.private_network,
        keep_alive_minutes=item.keep_alive_minutes,
        single_slot=item.single_slot,
    )
    user_data = encode_user_data(render_user_data(config, batch, key, now), cloud.user_data_limit)
    tags = {
        TAG_POOL: config.pool.name,
        TAG_TYPE: item.vm_type,
        TAG_CLOUD: item.cloud,
        TAG_BATCH: batch_id,
        TAG_BOOTED: now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if item.single_slot:
        tags[TAG_SLOTS] = "1"  # so that demand counts a booting VM as room for one job
    vm_type = config.vm_types.get(item.vm_type)
    disk = vm_type.disk if vm_type is not None else None
    return BootRequest(
        batch_id, item.vm_type, count, item.image, item.flavor, user_data, tags, item.max_price, zone, disk
    )


_KINDS = {
    "CloudQuotaError": "quota",
    "CloudCapacityError": "capacity",
    "CloudThrottled": "throttled",
    "CloudPriceError": "price",
    "CloudAuthError": "auth",
    "CloudBadRequest": "bad-request",
    "CloudTimeout": "timeout",
    "CloudNotFound": "not-found",
}


def _boot_item(
    config: Config, cloud: Cloud, item: BootItem, key: SigningKey, now: datetime, zones: UnavailableZones
) -> Outcome:
    """Boot one item. A zone out of capacity is marked in ``zones`` and the next zone is
    tried; when every zone failed (or on quota errors) ask again for half as many. A
    throttled API or a spot price above the bid stops at once: fewer VMs would not help."""
    outcome = Outcome(item.cloud, item.vm_type, item.count, image=item.image)
    to_try = zones_to_try(item.cloud, getattr(cloud, "zones", ()), zones.active(now), now)
    if not to_try:
        outcome.error = f"cloud {item.cloud}: every zone ran out of capacity in the last minutes"
        outcome.error_kind = "capacity"
        return outcome
    count = item.count
    while count > 0:
        halve = False
        for zone in to_try:
            started = _boot_call(config, cloud, item, key, now, count, zone, outcome)
            if started is not None:
                return _finish(outcome, item, started)
            response = after_failure(outcome.error_kind or "")
            if response.next_zone and zone is not None:
                zones.mark(item.cloud, zone, now)
                if zone not in outcome.zones_unavailable:
                    outcome.zones_unavailable.append(zone)
                continue
            halve = response.halve
            break
        else:
            halve = after_failure(outcome.error_kind or "").halve
        if not halve:
            return outcome
        count //= 2
    return outcome


def _boot_call(
    config: Config,
    cloud: Cloud,
    item: BootItem,
    key: SigningKey,
    now: datetime,
    count: int,
    zone: str | None,
    outcome: Outcome,
) -> list[Instance] | None:
    """One boot call; None, with the error in ``outcome``, when it failed."""
    try:
        request = boot_request(config, cloud, item, key, now, new_batch_id(item.cloud), count, zone)
    except CsctlError as exc:  # the payload cannot be made (template, size)
        outcome.error, outcome.error_kind = f"cloud {item.cloud}: {exc.message}", "payload"
        return None
    outcome.calls += 1
    try:
        return cloud.boot(request)
    except CloudError as exc:
        outcome.error, outcome.error_kind = exc.message, _KINDS.get(type(exc).__name__, "backend")
        if isinstance(exc, CloudQuotaError) and outcome.error_kind == "backend":
            outcome.error_kind = "quota"  # a driver's own subclass of the quota error
        return None


def _finish(outcome: Outcome, item: BootItem, started: list[Instance]) -> Outcome:
    outcome.started = [i.csctl_id for i in started]
    if len(started) == item.count:
        outcome.error = outcome.error_kind = None
    elif outcome.error is None:
        outcome.error = f"cloud {item.cloud}: started {len(started)} of {item.count}"
        outcome.error_kind = "quota"
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
        registered: dict[str, str | None] = {}  # image URL -> its image: one look-up per call
        for item in by_cloud[cloud_name]:
            found = _registered(clouds[cloud_name], item, registered)
            if isinstance(found, Outcome):
                outcome = found
            else:
                outcome = _boot_item(config, clouds[cloud_name], found, key, now, backoff.zones)
                outcome.image = item.image  # backoff keys the image as the plan names it
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


def _registered(cloud: Cloud, item: BootItem, registered: dict[str, str | None]) -> BootItem | Outcome:
    """The item with its image URL (a VMLoc that ``boot`` did not resolve before planning,
    as in ``run``) replaced by the image the cloud registered for it; an Outcome saying
    how to register it when there is none, or why the cloud could not be asked."""
    finder = getattr(cloud, "find_image", None)
    if not is_image_url(item.image) or finder is None:
        return item
    outcome = Outcome(item.cloud, item.vm_type, item.count, image=item.image)
    if item.image not in registered:
        try:
            registered[item.image] = finder(item.image)
        except CloudError as exc:
            outcome.error, outcome.error_kind = exc.message, _KINDS.get(type(exc).__name__, "backend")
            return outcome
    image = registered[item.image]
    if image is None:
        problem = registration_problem(item.image, [item.cloud])
        outcome.error, outcome.error_kind = f"cloud {item.cloud}: {problem.message}", "bad-request"
        return outcome
    return replace(item, image=image)


def _update_backoff(outcomes: list[Outcome], backoff: Backoff, now: datetime) -> None:
    for outcome in outcomes:
        image_key = f"{outcome.cloud}/{outcome.image}"
        if outcome.started:
            backoff.succeed(outcome.cloud)
            backoff.succeed(image_key)
        elif outcome.error_kind in ("bad-request", "payload"):
            backoff.fail(image_key, now)  # the image or flavor is at fault, not the cloud
        elif outcome.error_kind is not None and after_failure(outcome.error_kind).back_off:
            backoff.fail(outcome.cloud, now)


def resolve_image_urls(demand: Demand, clouds: Mapping[str, Cloud]) -> tuple[Demand, list[str]]:
    """The demand with its jobs' image URLs (VMLoc) replaced by the images the clouds
    registered for them: one look-up per cloud and URL per cycle, none when no job gives
    a URL. Jobs whose URL no cloud has are rejected (``plan.images``); returns warnings,
    one per rejected group and per failed look-up."""
    wanted = image_urls(demand)
    if not wanted:
        return demand, []
    found: dict[tuple[str, str], str | None | object] = {}
    warnings: list[str] = []
    for cloud_name, url in sorted(wanted):
        cloud = clouds.get(cloud_name)
        finder = getattr(cloud, "find_image", None)
        if finder is None:  # a driver from before find_image: the URL is sent as it is
            found[(cloud_name, url)] = url
            continue
        try:
            found[(cloud_name, url)] = finder(url)
        except CloudError as exc:
            found[(cloud_name, url)] = LOOKUP_FAILED
            warnings.append(exc.message)
    resolved, waiting = resolve_images(demand, found)
    known = len(demand.rejected)
    rejected = [f"{r.jobs} job(s) of {r.owner} rejected: {r.reasons[0]}" for r in resolved.rejected[known:]]
    return resolved, warnings + waiting + rejected


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
        needed, image_warnings = resolve_image_urls(
            given or snapshot_demand(snapshot, config, judge_with=judge_apart), services.clouds
        )
        backoff, warnings = read_backoff(services.state_dir, now)
        warnings += image_warnings
        needed, kept_out = downtime_demand(needed, config, now)  # outages keep their clouds out
        warnings += kept_out
        plan = plan_from_snapshot(needed, snapshot, config, backoff.active(now), now)
        result = BootResult(plan, errors=list(snapshot.errors), warnings=snapshot.warnings + warnings)
        result.warnings += plan.notes
        if key is not None:
            result.report = execute_boot(plan, services.clouds, config, key, now, backoff)
            result.warnings += keep_backoff(services.state_dir, backoff)
    return result


def plan_from_snapshot(
    demand: Demand, snapshot: Snapshot, config: Config, skipped: Mapping[str, datetime], now: datetime
) -> BootPlan:
    """``plan_boot`` with everything the snapshot saw: its instances, the clouds it could
    not list, their quotas and the negotiator's priorities; ``skipped``: the backoff."""
    return plan_boot(
        demand,
        snapshot.instances,
        config,
        skipped,
        now,
        snapshot.cloud_errors,
        quotas=snapshot.quotas,
        priorities=snapshot.priorities,
    )
