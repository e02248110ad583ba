"""fair_share = "htcondor" against the real pool's negotiator: shares follow the priority
factors an administrator set with condor_userprio."""

from __future__ import annotations

import time
import uuid

import htcondor2
import pytest

from csctl.engine.snapshot import take_snapshot
from csctl.plan.placement import plan_boot
from csctl.plan.supply import snapshot_demand
from csctl.pool.htcondor import HTCondorPool
from testbed import pool
from tests.conftest import DATA

pytestmark = pytest.mark.pool


def test_htcondor_shares_follow_the_negotiators_priority_factors(clean_queue, pool_config):
    suffix = uuid.uuid4().hex[:6]
    factors = {f"group_fast{suffix}": 1000.0, f"group_slow{suffix}": 3000.0}
    names = {g: f"{g}.{clean_queue.user}@{clean_queue.pool_name}" for g in factors}
    try:
        for group, factor in factors.items():
            pool.in_root(clean_queue.paths, "condor_userprio", "-setfactor", names[group], str(factor))
            job = dict(htcondor2.Submit((DATA / "seed.job").read_text()))
            job |= {"accounting_group": group, "accounting_group_user": clean_queue.user}
            clean_queue.submit(job, count=80)  # eight to a pandacernvm: ten VMs each
        policy = pool_config.policy.model_copy(update={"fair_share": "htcondor", "max_new_vms_per_cycle": 8})
        config = pool_config.model_copy(update={"policy": policy})
        htcondor_pool = HTCondorPool(config.pool)
        deadline = time.monotonic() + 30
        while not set(names.values()) <= set(
            (snapshot := take_snapshot(htcondor_pool, {}, config)).priorities
        ):
            assert time.monotonic() < deadline, snapshot.priorities
            time.sleep(0.5)
        # condor_userprio's numbers: real priority 0.5 (no usage yet) times the factor
        assert [snapshot.priorities[names[g]] for g in factors] == pytest.approx([500.0, 1500.0], rel=0.05)
        demand = snapshot_demand(snapshot, config)
        assert demand.need_by_owner == {g: 10 for g in factors}
        plan = plan_boot(demand, [], config, priorities=snapshot.priorities)
        # 1 / priority: three times the share for the group at a third of the priority
        assert {o.owner: o.granted for o in plan.owners} == {
            f"group_fast{suffix}": 6,
            f"group_slow{suffix}": 2,
        }
        assert all(o.why.startswith("share by the negotiator's user priority; ") for o in plan.owners)
    finally:
        for name in names.values():
            pool.in_root(clean_queue.paths, "condor_userprio", "-delete", name, check=False)
