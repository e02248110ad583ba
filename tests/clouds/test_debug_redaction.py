"""Debug logs of real boots carry no secret: botocore against moto, keystoneauth against Nova,
and ``csctl --debug boot`` as a process.

Each boot renders a real payload with a known pool key; the token and batch key are
read back from the cloud afterwards (outside the captured log) and searched for in the
log, as they are and base64-encoded at every alignment, as they travel inside UserData.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from csctl.clouds.ec2 import Driver as EC2Driver
from csctl.clouds.ec2 import Settings as EC2Settings
from csctl.config import parse_config
from csctl.context.tokens import SigningKey, derive_vm_key, scramble
from csctl.engine.boot import execute_boot
from csctl.logredact import install
from csctl.model import batch_of
from csctl.plan.backoff import Backoff
from csctl.plan.placement import BootItem, BootPlan
from testbed.fixtures_moto import EC2Server, grant_max_count
from tests.clouds.test_openstack import (  # the Nova driver fixture and those it needs
    clouds_yaml,  # noqa: F401
    driver,  # noqa: F401
    flavors,  # noqa: F401
    project,  # noqa: F401
    testbed_cloud,  # noqa: F401
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
# HTCondor (and csctl) read a key file up to its first NUL byte: the random key has none,
# or the key csctl reads back from the file would be a shorter one than the test checks.
KEY = SigningKey("POOL", os.urandom(32).replace(b"\0", b"\1"))
ROOT = Path(__file__).resolve().parents[2]


CONFIG = (
    '[pool]\nname = "pool.test"\ncollector = "127.0.0.1:1"\n'
    '[clouds.good]\ndriver = "local"\n'  # the clouds booted on are the tests' drivers
    # 1 GB of disk: the test Nova's tiny flavor has a 1 GB root disk, and a boot on a
    # flavor smaller than the type is refused before the server is created
    '[vm_types.t]\ncpus = 2\nmemory = 1000\ndisk = 1\nimages = { good = "img" }\n'
)


@pytest.fixture
def debug_log(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """The root logger at DEBUG writing into the returned buffer, redacted as the CLI sets it up."""
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    monkeypatch.setattr(root, "handlers", [handler])
    level = root.level
    root.setLevel(logging.DEBUG)
    install()
    yield stream
    root.setLevel(level)


def stop(debug_log: io.StringIO) -> str:
    """Stop capturing (reading the payload back must not count) and return the log."""
    logging.getLogger().setLevel(logging.WARNING)
    return debug_log.getvalue()


def secrets_in(user_data: bytes, batch: str) -> list[str]:
    """The IDTOKEN and batch key the payload carries, checked against the known pool key."""
    if user_data[:2] == b"\x1f\x8b":  # gzipped to fit EC2's 16 KB
        user_data = gzip.decompress(user_data)
    files = {f["path"]: f["content"] for f in yaml.safe_load(user_data)["write_files"]}
    token = files["/etc/condor/tokens.d/csctl-vm"].strip()
    batch_key = derive_vm_key(KEY, batch)
    key = files[f"/etc/condor/passwords.d/{batch_key.name}"]
    assert key == base64.b64encode(scramble(batch_key.secret)).decode()
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert claims["sub"] == f"vm-{batch}@pool.test"
    return [token, key, batch_key.secret.hex()]


def forms(secret: str) -> list[str]:
    """``secret`` and its base64 text at each of the three alignments it may have in a
    longer encoded payload (the characters shared with its neighbours cut off)."""
    raw = secret.encode()
    encoded = [base64.b64encode(b"\0" * shift + raw).decode() for shift in range(3)]
    return [secret] + [text[4 if shift else 0 : -4] for shift, text in enumerate(encoded)]


def assert_no_secret(log: str, user_data: bytes, batch: str) -> None:
    for secret in secrets_in(user_data, batch):
        for form in forms(secret):
            assert form not in log, f"{form[:12]}... is in the debug log"
    assert base64.b64encode(user_data).decode()[:60] not in log


def test_ec2_boot_debug_log_has_no_secret(ec2: EC2Server, debug_log: io.StringIO) -> None:
    image = ec2.image_id()  # before the boot: moto's image list is a megabyte of log
    config = parse_config(CONFIG)
    cloud = EC2Driver("good", EC2Settings(region=ec2.region, profile=ec2.profile, endpoint_url=ec2.endpoint))
    grant_max_count(cloud.client)
    plan = BootPlan([BootItem("good", "t", 2, image, "t3.micro")], [])

    (outcome,) = execute_boot(plan, {"good": cloud}, config, KEY, NOW, Backoff()).outcomes

    log = stop(debug_log)
    assert len(outcome.started) == 2, outcome.error
    assert "Making request for OperationModel(name=RunInstances)" in log
    assert "'UserData': '<redacted>'" in log
    assert "'Authorization': b'<redacted>'" in log
    reservation = ec2.client().describe_instances()["Reservations"][0]["Instances"][0]["InstanceId"]
    attribute = ec2.client().describe_instance_attribute(InstanceId=reservation, Attribute="userData")
    user_data = base64.b64decode(attribute["UserData"]["Value"])
    assert_no_secret(log, user_data, batch_of(outcome.started[0]))


# -- Nova ------------------------------------------------------------------------


@pytest.mark.nova
@pytest.mark.filterwarnings("ignore::DeprecationWarning:openstack")
def test_nova_boot_debug_log_has_no_secret(
    nova_api: Any,
    flavors: Any,  # noqa: F811
    driver: Any,  # noqa: F811
    project: str,  # noqa: F811
    debug_log: io.StringIO,
) -> None:
    config = parse_config(CONFIG)
    plan = BootPlan([BootItem("good", "t", 1, nova_api.image_id, flavors["tiny"].id)], [])

    (outcome,) = execute_boot(plan, {"good": driver}, config, KEY, NOW, Backoff()).outcomes

    log = stop(debug_log)
    assert len(outcome.started) == 1, outcome.error
    assert "keystoneauth.session DEBUG REQ: curl -g -i -X POST" in log
    assert '"user_data": "<redacted>"' in log
    assert '"adminPass": "<redacted>"' in log
    (server,) = driver.conn.compute.servers()
    user_data = nova_api.user_data(server.id, project)
    assert user_data is not None
    assert_no_secret(log, user_data, batch_of(outcome.started[0]))


# -- the command line ------------------------------------------------------------


def test_csctl_debug_boot_writes_no_secret(ec2: EC2Server, tmp_path: Path) -> None:
    key_file = tmp_path / "POOL"
    key_file.write_bytes(scramble(KEY.secret))
    key_file.chmod(0o600)
    (tmp_path / "csctl.toml").write_text(
        f'state_dir = "{tmp_path / "state"}"\n'
        f'[pool]\nname = "pool.test"\ncollector = "127.0.0.1:1"\nsigning_key = "{key_file}"\n'
        f'[clouds.good]\ndriver = "ec2"\nregion = "{ec2.region}"\nprofile = "{ec2.profile}"\n'
        f'endpoint_url = "{ec2.endpoint}"\n'
        "[vm_types.t]\ncpus = 2\nmemory = 1000\ndisk = 10\n"
        f'images = {{ good = "{ec2.image_id()}" }}\nflavors = {{ good = "t3.micro" }}\n'
    )
    demand = {
        "schema": "csctl.demand/1",
        "idle_jobs": 1,
        "vms_needed": 1,
        "rejected": [],
        "requirements": [{"vm_type": "t", "clouds": ["good"], "idle_jobs": 1, "vms_needed": 1}],
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CSCTL_"))}

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "csctl",
            "--config",
            str(tmp_path / "csctl.toml"),
            "--debug",
            "boot",
            "--demand",
            "-",
        ],
        input=json.dumps(demand),
        capture_output=True,
        text=True,
        env={**env, **ec2.env(), "NO_COLOR": "1", "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == "1 VMs booted"
    assert "botocore.endpoint DEBUG Making request for OperationModel(name=RunInstances)" in done.stderr
    assert "'UserData': '<redacted>'" in done.stderr
    (vm,) = [i for r in ec2.client().describe_instances()["Reservations"] for i in r["Instances"]]
    attribute = ec2.client().describe_instance_attribute(InstanceId=vm["InstanceId"], Attribute="userData")
    user_data = base64.b64decode(attribute["UserData"]["Value"])
    batch = {t["Key"]: t["Value"] for t in vm["Tags"]}["csctl-batch"]
    assert_no_secret(done.stderr + done.stdout, user_data, batch)
