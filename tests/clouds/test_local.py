"""The local driver on the real test pool: its VMs join under csctl-minted tokens."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import htcondor2
import pytest
import yaml

from csctl.clouds.registry import make_cloud
from csctl.context.render import Batch, render_user_data, vm_identity
from csctl.context.tokens import STARTD_SCOPES, SigningKey, mint, read_signing_key
from csctl.model import TAG_POOL, BootRequest, VMState

pytestmark = pytest.mark.pool


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


def test_console_output_shows_the_setup_and_logs(local, testbed_config):
    batch = batch_id()
    (vm,) = local.boot(request(testbed_config, batch, 1, payload(testbed_config, batch).encode()))
    console = local.console_output(vm)
    assert "==> setup.log <==" in console and "==> log/MasterLog <==" in console


@pytest.mark.parametrize("case", ["expired", "wrong key", "wrong issuer", "out of scope"])
def test_collector_rejects_bad_tokens(local, testbed_config, case):
    batch = batch_id()
    good = payload(testbed_config, batch)
    key = read_signing_key(testbed_config.pool.signing_key)
    now = datetime.now(UTC)
    claims = dict(
        issuer=testbed_config.pool.name,
        subject=vm_identity(testbed_config, batch),
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
    local.boot(request(testbed_config, batch, 1, with_token(good, mint(key, **claims))))
    assert startd_ads(testbed_config, batch, 8, want=1) == []
