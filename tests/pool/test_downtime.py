"""`csctl downtime` on the real pool: an outage declared a minute ahead empties its
cloud before it starts (the running job finishes), jobs then go to the other cloud, and
the collector shows the downtime as a CsctlDowntime ad until it is removed."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import htcondor2
import pytest

from csctl.clouds.registry import make_cloud
from csctl.config import load_config
from tests.pool.bed import config_text, csctl

pytestmark = pytest.mark.pool

LEAD_SECONDS = 60  # the drain-ahead below: the busy job (25 s) ends well within it


def write_config(condor_pool, tmp_path: Path) -> Path:
    """Two local clouds: ``local`` (preferred) and ``spare``, both serving type small."""
    text = config_text(condor_pool, tmp_path)
    local = text[text.index("[clouds.local]") : text.index("[vm_types.small]")]
    spare = local.replace("[clouds.local]", "[clouds.spare]").replace('/local"', '/spare"')
    text = text.replace("[clouds.local]\n", "[clouds.local]\npriority = 10\n", 1)
    text = text.replace("[vm_types.small]", spare + "[vm_types.small]")
    text = text.replace('images = { local = "host" }', 'images = { local = "host", spare = "host" }')
    text = text.replace("[pool]", "[policy]\ndowntime_drain_ahead_minutes = 1\n\n[pool]", 1)
    path = tmp_path / "csctl.toml"
    path.write_text(text)
    return path


@pytest.fixture
def two_clouds(condor_pool, tmp_path):
    config = write_config(condor_pool, tmp_path)
    cfg = load_config(config)
    clouds = [make_cloud(name, cfg.clouds[name]) for name in ("local", "spare")]
    for cloud in clouds:
        cloud.terminate(cloud.list_instances(cfg.pool.name))
    yield config, {c.name: c for c in clouds}
    for cloud in clouds:
        cloud.terminate(cloud.list_instances(cfg.pool.name))


def downtime_ads(condor_pool) -> list:
    return htcondor2.Collector(condor_pool.collector).query(
        htcondor2.AdType.Any, 'MyType == "CsctlDowntime"', ["Name", "Scope", "Start", "End", "Reason"]
    )


def cycle(config: Path) -> dict:
    result = csctl(config, "--json", "run")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def wait_for(predicate, timeout: float, what: str, schedd=None):
    deadline = time.monotonic() + timeout
    while not (found := predicate()):
        assert time.monotonic() < deadline, what
        if schedd is not None:
            schedd.reschedule()
        time.sleep(1)
    return found


def job(seconds: int) -> dict[str, str]:
    return {
        "executable": "/bin/sleep",
        "arguments": str(seconds),
        "requirements": 'VMType =?= "small"',
        "should_transfer_files": "NO",
    }


def test_outage_drains_ahead_then_sends_jobs_elsewhere_and_is_advertised(
    clean_queue, two_clouds, condor_pool
):
    config, clouds = two_clouds
    pool_name, schedd = condor_pool.trust_domain, clean_queue.schedd()
    first = clean_queue.submit(job(25))
    cycle(config)
    assert [i.cloud for i in clouds["local"].list_instances(pool_name)] == ["local"]
    wait_for(
        lambda: schedd.query(f"ClusterId == {first} && JobStatus == 2", ["JobStatus"]), 60, "no start", schedd
    )

    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=LEAD_SECONDS)
    added = csctl(
        config, "downtime", "add", "--cloud", "local", "--start", start.isoformat(), "--duration", "5m"
    )
    assert added.returncode == 0, added.stderr
    assert "declared downtime 1 (cloud local, outage" in added.stdout
    (ad,) = downtime_ads(condor_pool)
    assert (ad["Scope"], ad["Start"]) == ("cloud local", int(start.timestamp()))

    # within the lead: the busy VM is drained, its job finishes, then the VM goes
    drained = cycle(config)
    assert drained["drained"] == 1 and drained["booted"] == 0
    while clouds["local"].list_instances(pool_name):
        assert datetime.now(UTC) < start, "the VM in the outage's scope was still there at its start"
        time.sleep(3)
        cycle(config)
    history = list(schedd.history(f"ClusterId == {first}", ["ExitCode", "NumJobStarts"], match=1))
    assert [(h["ExitCode"], h["NumJobStarts"]) for h in history] == [(0, 1)]  # finished, never evicted

    # during the outage: a new job gets a VM on the other cloud, and run says why
    wait_for(lambda: datetime.now(UTC) >= start, LEAD_SECONDS + 5, "the outage never started")
    clean_queue.submit(job(1))
    during = cycle(config)
    assert during["booted"] == 1
    assert any("small on local kept out by downtime 1" in line for line in during["downtime"])
    assert not clouds["local"].list_instances(pool_name)
    assert [i.cloud for i in clouds["spare"].list_instances(pool_name)] == ["spare"]

    shown = json.loads(csctl(config, "--json", "status").stdout)
    local, spare = shown["clouds"]
    assert local["downtime_active"].startswith("downtime 1 (cloud local, outage") and local["vms"] == {}
    assert spare["name"] == "spare" and sum(spare["vms"].values()) == 1 and spare["downtime_active"] is None
    assert shown["last_cycle"]["exit_code"] == 0 and shown["last_cycle"]["booted"] == 1

    listed = json.loads(csctl(config, "--json", "downtime", "list").stdout)["downtimes"]
    assert [(d["id"], d["phase"]) for d in listed] == [("1", "active")]
    assert csctl(config, "downtime", "remove", "1").returncode == 0
    wait_for(lambda: not downtime_ads(condor_pool), 10, "the downtime ad was not withdrawn")
