"""The local driver: on the real test pool its VMs join under csctl-minted tokens; its
instance records (the joined mark) are tested without HTCondor."""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import htcondor2
import pytest
import yaml

from csctl.clouds.local import Driver, Settings
from csctl.clouds.registry import make_cloud
from csctl.context.render import Batch, render_user_data, vm_identity
from csctl.context.tokens import STARTD_SCOPES, SigningKey, mint, read_signing_key
from csctl.model import TAG_JOINED, TAG_POOL, BootRequest, VMState


def batch_id() -> str:
    return f"local-{uuid.uuid4().hex[:8]}"


def request(config, batch: str, count: int, user_data: bytes) -> BootRequest:
    return BootRequest(batch, "small", count, "host", None, user_data, {TAG_POOL: config.pool.name})


def payload(config, batch: str, now=None, key=None) -> str:
    key = key or read_signing_key(config.pool.signing_key)
    return render_user_data(config, Batch(batch, "small", "local", "none"), key, now or datetime.now(UTC))


def with_token(user_data: str, token: str) -> bytes:
    """The same payload carrying another token."""
    doc = yaml.safe_load(user_data)
    (entry,) = [f for f in doc["write_files"] if "/tokens.d/" in f["path"]]
    return user_data.replace(repr(entry["content"])[1:-1], token + "\\n").encode()


def startd_ads(config, batch: str, wait: float, want: int):
    collector = htcondor2.Collector(config.pool.collector)
    deadline = time.monotonic() + wait
    while True:
        ads = collector.query(
            htcondor2.AdType.Startd,
            f'CsctlBatch == "{batch}"',
            ["Name", "CsctlId", "CsctlType", "CsctlCloud", "CsctlPool", "AuthenticatedIdentity", "Cpus"],
        )
        if len(ads) >= want or time.monotonic() > deadline:
            return ads
        time.sleep(0.5)


@pytest.fixture
def local(testbed_config):
    cloud = make_cloud("local", testbed_config.clouds["local"])
    cloud.terminate(cloud.list_instances(testbed_config.pool.name))
    yield cloud
    cloud.terminate(cloud.list_instances(testbed_config.pool.name))


@pytest.mark.pool
def test_booted_vms_join_with_their_identity_and_run_a_job(local, testbed_config, clean_queue):
    batch = batch_id()
    started = local.boot(request(testbed_config, batch, 2, payload(testbed_config, batch).encode()))
    assert [i.csctl_id for i in started] == [f"{batch}-0", f"{batch}-1"]
    ads = startd_ads(testbed_config, batch, 30, want=2)
    assert sorted(ad["CsctlId"] for ad in ads) == [f"{batch}-0", f"{batch}-1"]
    for ad in ads:
        assert (ad["CsctlType"], ad["CsctlCloud"], ad["CsctlPool"], ad["Cpus"]) == (
            "small",
            "local",
            testbed_config.pool.name,
            2,
        )
        assert ad["AuthenticatedIdentity"] == vm_identity(testbed_config, batch)
    listed = local.list_instances(testbed_config.pool.name)
    assert {(i.csctl_id, i.state) for i in listed} == {
        (f"{batch}-0", VMState.RUNNING),
        (f"{batch}-1", VMState.RUNNING),
    }

    cluster = clean_queue.submit(
        {"executable": "/bin/true", "requirements": 'VMType =?= "small"', "should_transfer_files": "NO"}
    )
    schedd = clean_queue.schedd()
    deadline = time.monotonic() + 60
    while schedd.query(f"ClusterId == {cluster}", ["JobStatus"]):
        assert time.monotonic() < deadline, "the job did not run on the local VM"
        schedd.reschedule()
        time.sleep(1)
    (done,) = schedd.history(f"ClusterId == {cluster}", ["JobStatus", "LastRemoteHost"], match=1)
    assert done["JobStatus"] == 4 and batch in done["LastRemoteHost"]

    assert sorted(local.terminate(listed)) == [f"{batch}-0", f"{batch}-1"]
    assert local.list_instances(testbed_config.pool.name) == []


@pytest.mark.pool
def test_console_output_shows_the_setup_and_logs(local, testbed_config):
    batch = batch_id()
    (vm,) = local.boot(request(testbed_config, batch, 1, payload(testbed_config, batch).encode()))
    console = local.console_output(vm)
    assert "==> setup.log <==" in console and "==> log/MasterLog <==" in console


def bad_token(config, batch: str, case: str) -> str:
    """A token for ``batch``'s VM that is wrong in one way."""
    key = read_signing_key(config.pool.signing_key)
    now = datetime.now(UTC)
    claims = dict(
        issuer=config.pool.name,
        subject=vm_identity(config, batch),
        scopes=STARTD_SCOPES,
        now=now,
        lifetime_seconds=3600,
    )
    if case == "expired":
        claims.update(now=now - timedelta(hours=2))
    elif case == "wrong key":
        key = SigningKey("POOL", b"not the pool's key")
    elif case == "wrong issuer":
        claims.update(issuer="other-pool")
    else:
        claims.update(scopes=("condor:/READ",))
    return mint(key, **claims)


@pytest.mark.pool
def test_collector_rejects_bad_tokens(local, testbed_config):
    # one VM per bad token and one with a good token, booted in one wave: the good one's
    # joining shows how long the others had to join, and none of them has
    cases = ["expired", "wrong key", "wrong issuer", "out of scope"]
    batches = {case: batch_id() for case in [*cases, "good"]}
    for case, batch in batches.items():
        good = payload(testbed_config, batch)
        user_data = (
            good.encode() if case == "good" else with_token(good, bad_token(testbed_config, batch, case))
        )
        local.boot(request(testbed_config, batch, 1, user_data))
    assert startd_ads(testbed_config, batches["good"], 120, want=1)
    deadline = time.monotonic() + 5  # and a little longer
    joined: dict[str, list] = {}
    while time.monotonic() < deadline and not joined:
        joined = {
            case: ads for case in cases if (ads := startd_ads(testbed_config, batches[case], 0, want=1))
        }
        time.sleep(0.5)
    assert joined == {}


# -- instance records, without HTCondor -------------------------------------------

JOINED = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.fixture
def bare(tmp_path: Path) -> Driver:
    """A local cloud in a chroot holding nothing but a condor user: its VMs' setup cannot
    run, so they stay stopped, as cloud VMs whose contextualization failed (no startd)."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text(f"condor:x:{os.getuid()}:{os.getgid()}::/:/bin/false\n")
    return Driver("local", Settings(root=root, work_dir=Path("/vms")))


def boot_bare(cloud: Driver, count: int) -> list:
    return cloud.boot(
        BootRequest(
            batch_id(), "small", count, "host", None, b"#cloud-config\nwrite_files: []\n", {TAG_POOL: "p"}
        )
    )


def record(cloud: Driver, csctl_id: str) -> Path:
    assert cloud.settings.root is not None
    return cloud.settings.root / "vms" / csctl_id / "instance.json"


def test_mark_joined_is_kept_in_the_instance_record(bare: Driver) -> None:
    a, b = boot_bare(bare, 2)
    assert [(vm.state, vm.joined_at) for vm in bare.list_instances("p")] == [(VMState.STOPPED, None)] * 2

    assert bare.mark_joined([a], JOINED) == [a.csctl_id]

    assert {vm.csctl_id: vm.joined_at for vm in bare.list_instances("p")} == {
        a.csctl_id: JOINED,
        b.csctl_id: None,
    }
    assert json.loads(record(bare, a.csctl_id).read_text())["tags"][TAG_JOINED] == "2026-03-04T05:06:07Z"
    assert sorted(p.name for p in record(bare, a.csctl_id).parent.glob("instance.json*")) == ["instance.json"]


def test_mark_joined_skips_terminated_vms(bare: Driver) -> None:
    a, b = boot_bare(bare, 2)
    bare.terminate([a])

    assert bare.mark_joined([a, b], JOINED) == [b.csctl_id]
    assert [(vm.csctl_id, vm.joined_at) for vm in bare.list_instances("p")] == [(b.csctl_id, JOINED)]


@pytest.mark.parametrize("value", ["not a time", "", 1767225600, None, "2026-13-45T99:00:00Z"])
def test_a_joined_mark_that_is_not_a_time_reads_as_none(bare: Driver, value: object) -> None:
    (vm,) = boot_bare(bare, 1)
    path = record(bare, vm.csctl_id)
    data = json.loads(path.read_text())
    data["tags"][TAG_JOINED] = value
    path.write_text(json.dumps(data))

    (listed,) = bare.list_instances("p")

    assert (listed.csctl_id, listed.joined_at) == (vm.csctl_id, None)
