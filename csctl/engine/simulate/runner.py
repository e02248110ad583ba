"""The simulator's cycle: csctl's own planners on a snapshot of the simulated world.

Every ``cycle`` seconds the runner takes a ``Snapshot`` of the world, reconciles it,
computes demand, plans boots and retirements with the very functions ``csctl run`` calls
(``reconcile``, ``hold_reasons``, ``snapshot_demand``, ``plan_boot``, ``plan_retire``,
``Backoff``) and carries the plans out on the simulated clouds and pool. Between cycles
the world moves on: jobs arrive, VMs join, jobs end, and its negotiator matches.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from csctl.config import Config
from csctl.engine.simulate.traces import Trace
from csctl.engine.simulate.world import World, when
from csctl.model import Snapshot
from csctl.plan.backoff import Backoff
from csctl.plan.downtime import Downtime, effects, keep_out, retire_for_downtimes
from csctl.plan.matching import Matcher
from csctl.plan.placement import plan_boot
from csctl.plan.reconcile import reconcile
from csctl.plan.retire import Action, plan_retire
from csctl.plan.safety import hold_reasons
from csctl.plan.supply import snapshot_demand

DEFAULT_CYCLE = 300
DEFAULT_BOOT_TIME = (300.0, 60.0)  # seconds from the boot call to the startd in the pool
# a run that still has work this long after the last job arrived is stopped (a policy
# that never serves the queue must not simulate for ever)
MAX_TAIL_SECONDS = 90 * 24 * 3600


@dataclass(frozen=True)
class Settings:
    """How the world behaves: the seed, the cycle and boot delay in seconds, and the share
    of boot calls a cloud refuses."""

    seed: int = 0
    cycle: int = DEFAULT_CYCLE
    boot_time: tuple[float, float] = DEFAULT_BOOT_TIME
    failure_rate: float = 0.0
    downtimes: tuple[Downtime, ...] = ()  # declared as `csctl downtime` does, on the trace's clock


@dataclass(frozen=True)
class Sample:
    """The world as one cycle saw it: seconds since the first submit, idle and running
    jobs, and the cores of every VM paid for (booting ones included)."""

    t: int
    idle: int
    running: int
    cores: int


@dataclass
class Run:
    """One replay: the world as it ended, the cycles run, the simulated span, the jobs
    that could have run but never started (the policy or the limits left them waiting),
    and one sample per cycle."""

    world: World
    cycles: int
    seconds: int
    stranded: int
    timeline: list[Sample]


def replay(config: Config, trace: Trace, settings: Settings) -> Run:
    """Replay ``trace`` through csctl's planners under ``config`` in the simulated world."""
    world = World(config, trace.jobs, random.Random(settings.seed), settings.boot_time, settings.failure_rate)
    backoff = Backoff()
    matcher = Matcher(config)  # the configuration is fixed: its machine ads are built once
    if not trace.jobs:
        return Run(world, 0, 0, 0, [])
    start = trace.jobs[0].submit
    last = trace.jobs[-1].submit
    t, cycles = start, 0
    timeline: list[Sample] = []
    while True:
        world.advance(t)
        booted, blocked = _cycle(world, config, matcher, backoff, t, settings.downtimes)
        timeline.append(Sample(t - start, world.idle, world.running, world.cores))
        cycles += 1
        if (
            not world.arrivals_left
            and not world.vms
            and (not world.busy or _stuck(booted, blocked, backoff, t))
        ):
            break
        if t - last > MAX_TAIL_SECONDS:
            break
        t += settings.cycle
    for vm_id in list(world.vms):
        world.terminate(vm_id, t)
    stranded = sum(len(q) for q in world.queue.values())
    timeline.append(Sample(t - start, world.idle, world.running, world.cores))
    return Run(world, cycles, t - start, stranded, timeline)


def _stuck(booted: int, blocked: bool, backoff: Backoff, t: int) -> bool:
    """Idle jobs, no VM at all, nothing booted, no backoff or downtime to wait out: no
    later cycle can do otherwise, so the rest of the queue is stranded."""
    return booted == 0 and not blocked and not backoff.active(when(t))


def _cycle(
    world: World, config: Config, matcher: Matcher, backoff: Backoff, t: int, downtimes: Sequence[Downtime]
) -> tuple[int, bool]:
    """One cycle at ``t``, as ``run_cycle`` orders it: the VMs booted, and whether a
    downtime kept boots out."""
    now = when(t)
    snapshot = Snapshot(groups=world.groups(), slots=world.slots(), instances=world.instances())
    joins = reconcile(snapshot.instances, snapshot.slots, config, now)
    found = effects(downtimes, now, config.policy.downtime_drain_ahead_minutes)
    hold = hold_reasons(joins, snapshot.pool_errors) + found.hold()
    demand = snapshot_demand(snapshot, config, matcher)
    allowed, kept_out = keep_out(demand, config, found)
    plan = plan_boot(allowed, snapshot.instances, config, backoff.active(now), now)
    booted = 0
    for item in plan.items:
        if world.boot(item, t):
            booted += item.count
            backoff.succeed(item.cloud)
            backoff.succeed(f"{item.cloud}/{item.image}")
        else:  # the cloud refused the call: it sits out its backoff, as after a real failure
            backoff.fail(item.cloud, now)
    retire = retire_for_downtimes(
        plan_retire(joins, demand, config, now, hold=hold), joins, downtimes, config, now
    )
    for retirement in retire.retirements:
        if retirement.action is Action.DRAIN:
            world.drain(retirement.csctl_id, t)
        else:
            world.terminate(retirement.csctl_id, t)
    return booted, bool(kept_out)
