"""One snapshot asks the pool and every cloud at once; a failure stays with its peer.

The peers are small in-test implementations of the Pool and Cloud protocols. Each one
that should run at the same time as the others waits on a shared barrier: if the
snapshot asked them one after the other, the barrier would break instead of timing
anything.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from csctl.engine.snapshot import list_clouds, take_snapshot
from csctl.errors import CloudAuthError, PoolUnreachable
from csctl.model import (
    BootRequest,
    DrainTarget,
    Instance,
    JobGroup,
    QueueSnapshot,
    Quota,
    StartdSlot,
    VMState,
)

WAIT = 10  # seconds a peer waits for the others before the barrier breaks


class Peer:
    """Answers after meeting the other peers at ``barrier`` (if any) and ``delay`` seconds."""

    def __init__(self, barrier: threading.Barrier | None = None, delay: float = 0.0) -> None:
        self.barrier = barrier
        self.delay = delay
        self.calls: list[str] = []
        self.answered = False

    def arrive(self, call: str) -> None:
        self.calls.append(call)
        if self.barrier is not None:
            self.barrier.wait(WAIT)
        time.sleep(self.delay)
        self.answered = True


class FakeCloud(Peer):
    """A cloud with ``vms`` csctl instances, or one whose list call fails with ``error``."""

    metadata_service = "none"
    user_data_limit = None
    private_network = False

    def __init__(self, name: str, vms: int = 0, error: str | None = None, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.name, self.vms, self.error = name, vms, error

    def list_instances(self, pool: str) -> list[Instance]:
        self.arrive(f"list {pool}")
        if self.error:
            raise CloudAuthError(self.name, self.error)
        return [
            Instance(f"{self.name}-b-{i}", self.name, "big", VMState.RUNNING, f"p{i}")
            for i in range(self.vms)
        ]

    def boot(self, request: BootRequest) -> list[Instance]:
        raise AssertionError("a snapshot never boots")

    def terminate(self, instances: Sequence[Instance]) -> list[str]:
        raise AssertionError("a snapshot never terminates")

    def console_output(self, instance: Instance) -> str:
        return ""

    def quota(self) -> Quota:
        return Quota()


class FakePool(Peer):
    """A pool with one schedd that answered and one that did not, and one csctl slot."""

    def __init__(self, jobs_down: bool = False, slots_down: bool = False, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.jobs_down, self.slots_down = jobs_down, slots_down

    def idle_jobs(self) -> QueueSnapshot:
        self.arrive("idle_jobs")
        if self.jobs_down:
            raise PoolUnreachable("no schedd answered")
        group = JobGroup(ad={"RequestCpus": 1}, count=7, sample_ids=["1.0"], schedd="s1")
        return QueueSnapshot(groups=[group], schedds=["s1"], errors=["schedd s2: timed out"])

    def csctl_slots(self) -> list[StartdSlot]:
        self.arrive("csctl_slots")
        if self.slots_down:
            raise PoolUnreachable("collector down")
        return [
            StartdSlot(
                "slot1@a", "a", "a-b-0", "big", "a", "Partitionable", "Unclaimed", "Idle", 8, 16000, 10
            )
        ]

    def running_jobs(self) -> tuple[dict[str, list[str]], list[str]]:
        self.arrive("running_jobs")
        return {"a-b-0": ["s1#3.0"]}, ["schedd s2: timed out"]

    def drain(self, targets: list[DrainTarget], reason: str) -> dict[str, str | None]:
        raise AssertionError("a snapshot never drains")


def test_the_pool_and_every_cloud_are_asked_at_once(seed_config):
    barrier = threading.Barrier(6)  # idle jobs, slots, running jobs and three clouds
    pool = FakePool(barrier=barrier)
    clouds = {name: FakeCloud(name, vms=2, barrier=barrier) for name in ("a", "b", "c")}

    snapshot = take_snapshot(pool, clouds, seed_config)

    assert sorted(pool.calls) == ["csctl_slots", "idle_jobs", "running_jobs"]
    assert snapshot.running == {"a-b-0": ["s1#3.0"]}
    assert snapshot.pool_errors == ["schedd s2: timed out"]  # once, though both queries met it
    assert [g.count for g in snapshot.groups] == [7]
    assert [s.csctl_id for s in snapshot.slots] == ["a-b-0"]
    assert sorted(i.csctl_id for i in snapshot.instances) == [f"{c}-b-{i}" for c in "abc" for i in range(2)]
    assert snapshot.errors == ["schedd s2: timed out"]
    assert snapshot.failed_clouds == set()


def test_a_failed_cloud_is_named_while_a_slow_one_is_still_waited_for(seed_config):
    barrier = threading.Barrier(5)  # the slow cloud, the failing cloud, and the pool's 3 queries
    clouds = {
        "slow": FakeCloud("slow", vms=3, barrier=barrier, delay=0.5),
        "broken": FakeCloud("broken", error="credentials rejected", barrier=barrier),
        "quick": FakeCloud("quick", vms=1),
    }

    snapshot = take_snapshot(FakePool(barrier=barrier), clouds, seed_config, jobs=True)

    assert sorted(i.csctl_id for i in snapshot.instances) == ["quick-b-0", "slow-b-0", "slow-b-1", "slow-b-2"]
    assert snapshot.failed_clouds == {"broken"}
    # the schedd's error first, then each failed cloud's
    assert snapshot.errors == ["schedd s2: timed out", "cloud broken: credentials rejected"]


def test_no_schedd_raises_pool_unreachable_after_the_clouds_answered(seed_config):
    cloud = FakeCloud("a", vms=1, delay=0.3)
    with pytest.raises(PoolUnreachable, match="no schedd answered"):
        take_snapshot(FakePool(jobs_down=True, slots_down=True), {"a": cloud}, seed_config)
    assert cloud.answered


def test_the_collector_down_raises_pool_unreachable(seed_config):
    with pytest.raises(PoolUnreachable, match="collector down"):
        take_snapshot(FakePool(slots_down=True), {"a": FakeCloud("a")}, seed_config)


def test_without_jobs_only_the_slots_are_read(seed_config):
    pool = FakePool()
    snapshot = take_snapshot(pool, {"a": FakeCloud("a", vms=1)}, seed_config, jobs=False)
    assert sorted(pool.calls) == ["csctl_slots", "running_jobs"]
    assert snapshot.groups == [] and len(snapshot.slots) == 1 and snapshot.running == {"a-b-0": ["s1#3.0"]}


def test_without_a_pool_only_the_clouds_are_listed(seed_config):
    snapshot = take_snapshot(None, {"a": FakeCloud("a", vms=2), "b": FakeCloud("b", error="no")}, seed_config)
    assert len(snapshot.instances) == 2 and snapshot.slots == [] and snapshot.groups == []
    assert snapshot.errors == ["cloud b: no"] and snapshot.failed_clouds == {"b"}


def test_list_clouds_lists_every_cloud_at_once():
    barrier = threading.Barrier(4)
    clouds = {name: FakeCloud(name, vms=1, barrier=barrier) for name in ("a", "b", "c")}
    clouds["d"] = FakeCloud("d", error="quota", barrier=barrier)
    instances, errors = list_clouds(clouds, "p")
    assert [i.cloud for i in instances] == ["a", "b", "c"]
    assert errors == {"d": "cloud d: quota"}


class TaggedCloud(FakeCloud):
    """A cloud whose instances carry whatever tags someone with API access wrote."""

    def list_instances(self, pool: str) -> list[Instance]:
        return [
            Instance("a-0123abcd-0", "a", "big", VMState.RUNNING, "i-good"),
            Instance("../../etc/cron.d/pwn-0", "a", "big", VMState.RUNNING, "i-evil"),
        ]


def test_an_instance_whose_tags_break_the_id_grammar_is_set_aside_and_named(seed_config):
    snapshot = take_snapshot(None, {"a": TaggedCloud("a")}, seed_config)
    assert [i.csctl_id for i in snapshot.instances] == ["a-0123abcd-0"]
    assert snapshot.warnings == [
        "instance 'i-evil' skipped: csctl id '../../etc/cron.d/pwn-0' is not a csctl id"
    ]
    assert snapshot.errors == []


class QuotaCloud(FakeCloud):
    """A cloud whose quota call meets the others at the barrier, then answers or fails."""

    def __init__(self, name: str, quota: Quota | Exception, **kw: object) -> None:
        super().__init__(name, **kw)  # type: ignore[arg-type]
        self.answer = quota

    def quota(self) -> Quota:
        self.arrive("quota")
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_every_clouds_quota_is_asked_once_with_the_lists_and_a_failure_stays_its_own(seed_config):
    barrier = threading.Barrier(4)  # two clouds' list and quota calls, all at once
    clouds = {
        "a": QuotaCloud("a", Quota(instances=3), vms=1, barrier=barrier),
        "b": QuotaCloud("b", CloudAuthError("b", "token expired"), vms=1, barrier=barrier),
    }
    snapshot = take_snapshot(None, clouds, seed_config)
    assert all(sorted(c.calls) == ["list pool.example.org", "quota"] for c in clouds.values())
    assert snapshot.quotas == {"a": Quota(instances=3), "b": Quota(error="cloud b: token expired")}
    assert snapshot.errors == [] and len(snapshot.instances) == 2  # the boots elsewhere go on


def test_a_driver_bug_in_quota_is_an_unknown_quota_not_a_crash(seed_config):
    snapshot = take_snapshot(None, {"a": QuotaCloud("a", RuntimeError("boom"))}, seed_config)
    assert snapshot.quotas == {"a": Quota(error="RuntimeError: boom")}


class SurveyCloud(FakeCloud):
    """A cloud that tells its instances and quota as one survey (csctl.model.survey.Surveyor)."""

    def __init__(self, name: str, quota: Quota, **kw: object) -> None:
        super().__init__(name, **kw)  # type: ignore[arg-type]
        self.answer = quota

    def survey(self, pool: str) -> tuple[list[Instance], Quota]:
        self.arrive(f"survey {pool}")
        if self.error:
            raise CloudAuthError(self.name, self.error)
        return [
            Instance(f"{self.name}-b-{i}", self.name, "big", VMState.RUNNING, f"p{i}")
            for i in range(self.vms)
        ], self.answer


def test_a_cloud_that_surveys_is_asked_once_beside_the_others(seed_config):
    barrier = threading.Barrier(7)  # the pool's 3 queries, 2 surveys, the other cloud's list and quota
    clouds = {
        "s": SurveyCloud("s", Quota(instances=4), vms=2, barrier=barrier),
        "q": QuotaCloud("q", Quota(instances=3), vms=1, barrier=barrier),
        "x": SurveyCloud("x", Quota(instances=9), error="token expired", barrier=barrier),
    }
    snapshot = take_snapshot(FakePool(barrier=barrier), clouds, seed_config)
    assert clouds["s"].calls == clouds["x"].calls == ["survey pool.example.org"]
    assert sorted(clouds["q"].calls) == ["list pool.example.org", "quota"]
    assert sorted(i.csctl_id for i in snapshot.instances) == ["q-b-0", "s-b-0", "s-b-1"]
    # a survey that cannot list fails the cloud, and leaves its quota unknown
    assert snapshot.errors == ["schedd s2: timed out", "cloud x: token expired"]
    assert snapshot.failed_clouds == {"x"}
    assert snapshot.quotas == {
        "s": Quota(instances=4),
        "q": Quota(instances=3),
        "x": Quota(error="cloud x: token expired"),
    }
    # listing alone asks the list call, survey or not
    cloud = SurveyCloud("s", Quota(), vms=1)
    assert [i.csctl_id for i in list_clouds({"s": cloud}, "p")[0]] == ["s-b-0"] and cloud.calls == ["list p"]


class Negotiator(FakePool):
    """A pool whose negotiator tells user priorities, or fails to."""

    def __init__(self, priorities: dict[str, float] | None, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.priorities = priorities

    def user_priorities(self) -> dict[str, float]:
        self.arrive("user_priorities")
        if self.priorities is None:
            raise PoolUnreachable("negotiator down")
        return self.priorities


def test_user_priorities_are_read_with_the_rest_under_the_htcondor_policy(seed_config):
    config = seed_config.model_copy(
        update={"policy": seed_config.policy.model_copy(update={"fair_share": "htcondor"})}
    )
    barrier = threading.Barrier(5)  # the pool's 3 queries, the priorities and one cloud's list
    pool = Negotiator({"alice@d": 500.0}, barrier=barrier)
    snapshot = take_snapshot(pool, {"a": FakeCloud("a", barrier=barrier)}, config)
    assert snapshot.priorities == {"alice@d": 500.0}
    snapshot = take_snapshot(Negotiator(None), {}, config)
    assert snapshot.priorities == {} and snapshot.errors == ["schedd s2: timed out"]
    assert snapshot.warnings == ["user priorities unknown (negotiator down): equal shares this cycle"]
    # under the default policy, the negotiator is not asked
    pool = Negotiator({"alice@d": 500.0})
    assert take_snapshot(pool, {}, seed_config).priorities == {} and "user_priorities" not in pool.calls
