"""Pool-join security on the real pool: batch-bound tokens, and no secret anywhere."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import htcondor2
import pytest
import yaml

from csctl.config import load_config
from csctl.context.render import Batch, render_user_data
from csctl.context.tokens import read_signing_key
from csctl.model import TAG_POOL, BootRequest
from tests.pool.bed import config_text

pytestmark = pytest.mark.pool


@pytest.fixture
def config_file(condor_pool, tmp_path):
    text = config_text(condor_pool, tmp_path)
    path = tmp_path / "csctl.toml"
    path.write_text(text)
    return path


def token_of(user_data: str) -> str:
    (entry,) = [f for f in yaml.safe_load(user_data)["write_files"] if "/tokens.d/" in f["path"]]
    return entry["content"].strip()


def ads(collector: str, batch: str, wait: float, constraint: str = "") -> list:
    deadline = time.monotonic() + wait
    while True:
        found = htcondor2.Collector(collector).query(
            htcondor2.AdType.Startd, constraint or f'CsctlBatch == "{batch}"', ["Name"]
        )
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_a_token_of_one_batch_cannot_advertise_another(config_file, local_cloud):
    cfg = load_config(config_file)
    key = read_signing_key(cfg.pool.signing_key)
    now = datetime.now(UTC)
    theirs = render_user_data(cfg, Batch("local-aaaaaaaa", "small", "local", "none"), key, now)
    mine = render_user_data(cfg, Batch("local-bbbbbbbb", "small", "local", "none"), key, now)
    forged = mine.replace(json.dumps(token_of(mine) + "\n")[1:-1], json.dumps(token_of(theirs) + "\n")[1:-1])
    assert forged != mine
    local_cloud.boot(
        BootRequest("local-bbbbbbbb", "small", 1, "host", None, forged.encode(), {TAG_POOL: cfg.pool.name})
    )
    honest = render_user_data(cfg, Batch("local-cccccccc", "small", "local", "none"), key, now)
    local_cloud.boot(
        BootRequest("local-cccccccc", "small", 1, "host", None, honest.encode(), {TAG_POOL: cfg.pool.name})
    )
    # an honest token, but a CsctlId of another batch; or no CsctlBatch at all
    for batch, (old, new) in {
        "local-dddddddd": ('\\"local-dddddddd\\" \\"$index\\"', '\\"local-aaaaaaaa\\" \\"$index\\"'),
        "local-eeeeeeee": ('CsctlBatch = \\"local-eeeeeeee\\"\\n', ""),
    }.items():
        payload = render_user_data(cfg, Batch(batch, "small", "local", "none"), key, now)
        assert old in payload
        forgery = payload.replace(old, new)
        local_cloud.boot(
            BootRequest(batch, "small", 1, "host", None, forgery.encode(), {TAG_POOL: cfg.pool.name})
        )
    assert ads(cfg.pool.collector, "local-cccccccc", 20)  # the same set-up, honest, joins
    assert ads(cfg.pool.collector, "local-bbbbbbbb", 3) == []
    assert ads(cfg.pool.collector, "", 3, 'regexp("^local-(aaaaaaaa|dddddddd|eeeeeeee)", CsctlId)') == []


def secrets_of(condor_pool, vm_dirs: list[Path]) -> dict[str, str]:
    """Every secret a cycle handles, in the forms it could leak in."""
    found: dict[str, str] = {}
    pool_key = read_signing_key(Path(condor_pool.signing_key_path)).secret
    found["pool key (base64)"] = base64.b64encode(pool_key).decode()
    found["pool key (hex)"] = pool_key.hex()
    for vm in vm_dirs:
        for token in (vm / "etc/tokens.d").glob("*"):
            found[f"token {vm.name}"] = token.read_text().strip()
        for key in (vm / "etc/passwords.d").glob("*"):
            found[f"batch key {vm.name} (base64)"] = base64.b64encode(key.read_bytes()).decode()
    found["AWS secret"] = os.environ["AWS_SECRET_ACCESS_KEY"]
    return found


def test_no_secret_in_output_logs_arguments_or_open_files(
    clean_queue, config_file, local_cloud, condor_pool, tmp_path, monkeypatch
):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "csctl-test-secret-Zm9vYmFy")
    clean_queue.submit(
        {
            "executable": "/bin/sleep",
            "arguments": "30",
            "requirements": 'VMType =?= "small"',
            "should_transfer_files": "NO",
        },
        count=2,
    )
    env = {**os.environ, "NO_COLOR": "1"}
    outputs = []
    for args in (
        ["--debug", "--json", "run"],
        ["--debug", "boot", "--dry-run"],
        ["--json", "demand"],
        ["--debug", "--json", "join-check"],
        ["--debug", "--json", "retire", "--dry-run"],
    ):
        result = subprocess.run(
            [sys.executable, "-m", "csctl", "--config", str(config_file), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        outputs.append((" ".join(args), result.stdout + result.stderr))
    work = Path(str(condor_pool.root)) / "var/lib/csctl-testbed/local"
    vm_dirs = [d for d in work.iterdir() if d.is_dir()]
    assert vm_dirs, "the cycle booted no VM to inspect"
    secrets = secrets_of(condor_pool, vm_dirs)
    # what csctl printed and logged
    for what, text in outputs:
        for name, secret in secrets.items():
            assert secret not in text, f"{name} in the output of csctl {what}"
    # process arguments of every process (VMs included)
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv = (proc / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            for name, secret in secrets.items():
                assert secret not in argv, f"{name} in the arguments of process {proc.name}"
    # files csctl wrote: state dir and VM directories; a secret only in files of mode 0600
    for base in (tmp_path / "state", *vm_dirs):
        for path in base.rglob("*"):
            if not path.is_file() or path.is_symlink():
                continue
            data = path.read_bytes().decode(errors="replace")
            holds = [name for name, secret in secrets.items() if secret in data]
            if holds or path.parent.name in ("tokens.d", "passwords.d"):
                assert path.stat().st_mode & 0o077 == 0, (
                    f"{path} holds {holds or 'a credential'} but is not 0600"
                )
