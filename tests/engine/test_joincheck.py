"""join-check --fix: a console is saved with no secret in it before its VM goes, and a VM
whose console cannot be saved stays; an incomplete view of the pool terminates nothing."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from csctl.config import parse_config
from csctl.context.tokens import SigningKey, batch_secrets, mint
from csctl.engine.joincheck import fix_failed_joins, join_check
from csctl.engine.services import Services
from csctl.model import BootRequest, Instance, QueueSnapshot, Quota, StartdSlot, VMState
from csctl.plan.backoff import Backoff
from csctl.plan.reconcile import reconcile

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
KEY = SigningKey("POOL", b"k" * 32)
BATCH = "local-0123abcd"
TOKEN = mint(
    KEY, issuer="p", subject="vm-x@p", scopes=("condor:/ADVERTISE_STARTD",), now=NOW, lifetime_seconds=60
)


def config(state: Path):
    return parse_config(
        f'state_dir = "{state}"\n[pool]\nname = "p"\ncollector = "127.0.0.1"\n'
        '[clouds.local]\ndriver = "local"\n'
        '[vm_types.t]\ncpus = 1\nmemory = 100\ndisk = 1\nimages = { local = "x" }\n'
    )


class Cloud:
    """A cloud with VMs that never joined, whose consoles echo their payload."""

    name = "local"
    metadata_service = "none"
    user_data_limit = None
    private_network = False

    def __init__(self, vms: Sequence[str]) -> None:
        self.vms = [
            Instance(v, "local", "t", VMState.RUNNING, f"p-{v}", NOW - timedelta(hours=2)) for v in vms
        ]
        self.terminated: list[str] = []

    def list_instances(self, pool: str) -> list[Instance]:
        return [i for i in self.vms if i.csctl_id not in self.terminated]

    def boot(self, request: BootRequest) -> list[Instance]:
        raise AssertionError("join-check never boots")

    def terminate(self, instances: Sequence[Instance]) -> list[str]:
        self.terminated += [i.csctl_id for i in instances]
        return [i.csctl_id for i in instances]

    def console_output(self, instance: Instance) -> str:
        hex_key, scrambled = batch_secrets(KEY, BATCH)
        return f"cloud-init: token {TOKEN}\nkey {hex_key}\nfile {scrambled}\nboot failed\n"

    def quota(self) -> Quota:
        return Quota()

    def mark_joined(self, instances: Sequence[Instance], when: datetime) -> list[str]:
        return []


def test_a_saved_console_holds_neither_the_token_nor_the_batch_key(tmp_path):
    cfg, cloud = config(tmp_path), Cloud([f"{BATCH}-0"])
    report = reconcile(cloud.list_instances("p"), [], cfg, NOW)
    fixed = fix_failed_joins(report, {"local": cloud}, cfg, Backoff(), NOW, KEY)
    assert fixed.terminated == [f"{BATCH}-0"]
    text = Path(fixed.consoles[f"{BATCH}-0"]).read_text()
    assert "boot failed" in text
    for secret in [TOKEN, *batch_secrets(KEY, BATCH)]:
        assert secret not in text
    assert text.count("<redacted>") == 3


def test_without_the_pool_key_tokens_are_still_redacted(tmp_path):
    cfg, cloud = config(tmp_path), Cloud([f"{BATCH}-0"])
    fixed = fix_failed_joins(
        reconcile(cloud.list_instances("p"), [], cfg, NOW), {"local": cloud}, cfg, Backoff(), NOW
    )
    assert TOKEN not in Path(fixed.consoles[f"{BATCH}-0"]).read_text()


def test_a_vm_whose_console_cannot_be_saved_is_not_terminated(tmp_path):
    cfg, cloud = config(tmp_path), Cloud([f"{BATCH}-0"])
    (tmp_path / "console").write_text("a file where the console directory should be")
    backoff = Backoff()
    fixed = fix_failed_joins(
        reconcile(cloud.list_instances("p"), [], cfg, NOW), {"local": cloud}, cfg, backoff, NOW
    )
    assert fixed.terminated == [] and cloud.terminated == []
    assert fixed.errors == [f"{BATCH}-0: console not saved (File exists); not terminated"]
    assert backoff.failures == {}  # nothing counted against the image for a VM still there


class Pool:
    def __init__(self, errors: list[str]) -> None:
        self.errors = errors

    def idle_jobs(self) -> QueueSnapshot:
        return QueueSnapshot([], ["s"], list(self.errors))

    def csctl_slots(self) -> list[StartdSlot]:
        return []

    def running_jobs(self) -> tuple[dict[str, list[str]], list[str]]:
        return {}, list(self.errors)

    def drain(self, targets, reason):  # type: ignore[no-untyped-def]
        raise AssertionError("join-check never drains")


def test_fix_terminates_nothing_while_a_schedd_does_not_answer(tmp_path):
    cloud = Cloud([f"{BATCH}-0", f"{BATCH}-1"])
    services = Services(config(tmp_path), make_pool=lambda: Pool(["schedd s2: timed out"]),
                        make_clouds=lambda: {"local": cloud}, clock=lambda: NOW)  # fmt: skip
    result = join_check(services, fix=True)
    assert cloud.terminated == [] and result.fixed is None
    assert result.held == ["the pool did not answer in full: schedd s2: timed out"]
    assert [vm.status.value for vm in result.report.vms] == ["never-joined", "never-joined"]


def test_fix_terminates_the_never_joined_when_the_view_is_whole(tmp_path):
    cloud = Cloud([f"{BATCH}-0"])
    services = Services(config(tmp_path), make_pool=lambda: Pool([]),
                        make_clouds=lambda: {"local": cloud}, clock=lambda: NOW)  # fmt: skip
    result = join_check(services, fix=True)
    assert cloud.terminated == [f"{BATCH}-0"] and result.held == []
    assert (tmp_path / "run.lock").exists()  # it took the state lock to act


def test_a_vm_that_joined_once_is_never_fixed_away(tmp_path):
    cloud = Cloud([f"{BATCH}-0"])
    cloud.vms = [dataclasses.replace(cloud.vms[0], joined_at=NOW - timedelta(hours=1))]
    services = Services(config(tmp_path), make_pool=lambda: Pool([]),
                        make_clouds=lambda: {"local": cloud}, clock=lambda: NOW)  # fmt: skip
    result = join_check(services, fix=True)
    assert cloud.terminated == [] and result.report.vms[0].status.value == "unseen"
    assert (tmp_path / "unseen.json").read_text().count(f"{BATCH}-0") == 1  # remembered since now
