"""The cloud-init payload: what it writes, the token it carries, size limits, templates."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
import subprocess
from datetime import UTC, datetime

import pytest

from csctl.config import parse_config
from csctl.context.payload import parse_user_data
from csctl.context.render import (
    REDACTED,
    Batch,
    condor_config,
    encode_user_data,
    render_user_data,
    setup_script,
)
from csctl.context.tokens import SigningKey, derive_vm_key, scramble
from csctl.errors import CsctlError

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
KEY = SigningKey("POOL", b"pool-secret")
CONFIG = """
[pool]
name = "pool.test"
collector = "cm.test:9618"
filesystem_domain = "fs.test"
vm_config = "UPDATE_INTERVAL = 60"
[policy]
vm_token_hours = 12
[clouds.FG]
driver = "openstack"
cloud = "fg"
[vm_types.t]
cpus = 8
memory = 16000
disk = 100
images = { FG = "img" }
attributes = { HasCVMFS = true }
"""
BATCH = Batch("fg-0123abcd", "t", "FG", "openstack", private_network=True)


def claims(token: str) -> dict:
    header, body, _ = token.split(".")
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def test_payload_files_modes_and_contents():
    config = parse_config(CONFIG)
    payload = parse_user_data(render_user_data(config, BATCH, KEY, NOW).encode())
    files = {f.path: f for f in payload.files}
    assert {p: f.mode for p, f in files.items()} == {
        "/etc/condor/config.d/50-csctl.conf": 0o644,
        "/etc/condor/tokens.d/csctl-vm": 0o600,
        "/etc/condor/passwords.d/fg-0123abcd": 0o600,
        "/usr/local/sbin/csctl-vm-setup": 0o755,
    }
    assert payload.runcmd == [["/usr/local/sbin/csctl-vm-setup"]]
    # the batch key, scrambled as HTCondor stores passwords
    batch_key = files["/etc/condor/passwords.d/fg-0123abcd"].content
    assert scramble(batch_key) == derive_vm_key(KEY, "fg-0123abcd").secret
    # the token: the batch's identity, advertising only, expiring
    token = claims(files["/etc/condor/tokens.d/csctl-vm"].content.decode().strip())
    assert token["sub"] == "vm-fg-0123abcd@pool.test" and token["iss"] == "pool.test"
    assert token["scope"] == "condor:/ADVERTISE_STARTD condor:/ADVERTISE_MASTER"
    assert token["exp"] - token["iat"] == 12 * 3600
    script = files["/usr/local/sbin/csctl-vm-setup"].content.decode()
    assert '"fg-0123abcd"' in script and 'case "openstack" in' in script


@pytest.mark.parametrize(
    ("metadata", "answer", "index", "env_index"),
    [
        ("openstack", '{"uuid": "u", "launch_index": 3, "name": "x"}', "3", None),
        ("ec2", "2", "2", None),
        ("ec2", None, None, None),  # the metadata service does not answer
        ("ec2", "oops", None, None),
        ("none", None, "0", None),
        ("none", None, "5", "5"),  # the local driver passes the index
    ],
)
def test_setup_script_names_the_vm_or_refuses_to_guess(tmp_path, metadata, answer, index, env_index):
    """The VM's first-boot script with the metadata service answered by a stand-in
    ``curl`` on PATH (the script's one way out of the VM)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    curl = f"#!/bin/sh\nprintf '%s' '{answer}'\n" if answer is not None else "#!/bin/sh\nexit 7\n"
    (bin_dir / "curl").write_text(curl)
    (bin_dir / "wget").write_text("#!/bin/sh\nexit 4\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    (tmp_path / "etc" / "config.d").mkdir(parents=True)
    script = tmp_path / "setup"
    script.write_text(setup_script(Batch("c-0123abcd", "t", "C", metadata)))
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "CSCTL_CONDOR_ETC": str(tmp_path / "etc"),
        "CSCTL_NO_START": "1",
    }
    if env_index is not None:
        env["CSCTL_LAUNCH_INDEX"] = env_index
    result = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, check=False)
    written = tmp_path / "etc" / "config.d" / "51-csctl-id.conf"
    if index is None:
        assert result.returncode == 1 and not written.exists()
        why = f"cannot read this VM's launch index from the {metadata} metadata service"
        assert result.stderr == f"csctl: {why}; HTCondor stopped\n"
    else:
        assert result.returncode == 0, result.stderr
        assert written.read_text() == f'CsctlId = "c-0123abcd-{index}"\n'


def test_condor_config_of_a_private_network_vm():
    lines = condor_config(parse_config(CONFIG), BATCH).splitlines()
    for expected in (
        "COLLECTOR_HOST = cm.test:9618",
        "CCB_ADDRESS = $(COLLECTOR_HOST)",
        "ALLOW_ADMINISTRATOR = csctl@pool.test",
        'CsctlBatch = "fg-0123abcd"',
        'START = (TARGET.VMType =?= undefined) || (TARGET.VMType =?= "t")',
        "FILESYSTEM_DOMAIN = fs.test",
        "HasCVMFS = true",
        "UPDATE_INTERVAL = 60",
    ):
        assert expected in lines


def test_keep_alive_the_jobs_asked_for_is_advertised_only_when_asked():
    assert not any(
        "CsctlKeepAlive" in line for line in condor_config(parse_config(CONFIG), BATCH).splitlines()
    )
    kept = dataclasses.replace(BATCH, keep_alive_minutes=45)
    lines = condor_config(parse_config(CONFIG), kept).splitlines()
    assert "CsctlKeepAlive = 45" in lines
    assert "STARTD_ATTRS = $(STARTD_ATTRS) CsctlKeepAlive" in lines


def test_redacted_payload_holds_no_secret():
    import yaml

    config = parse_config(CONFIG)
    real = {
        f.path: f.content for f in parse_user_data(render_user_data(config, BATCH, KEY, NOW).encode()).files
    }
    text = render_user_data(config, BATCH, KEY, NOW, redact=True)
    shown = {f["path"]: f["content"] for f in yaml.safe_load(text)["write_files"]}
    assert shown["/etc/condor/tokens.d/csctl-vm"] == REDACTED
    assert shown["/etc/condor/passwords.d/fg-0123abcd"] == REDACTED
    assert real["/etc/condor/tokens.d/csctl-vm"].decode().strip() not in text
    assert base64.b64encode(real["/etc/condor/passwords.d/fg-0123abcd"]).decode() not in text


def test_gzip_over_the_limit_and_a_clear_error_when_still_over():
    text = render_user_data(parse_config(CONFIG), BATCH, KEY, NOW)
    assert encode_user_data(text, None) == text.encode()
    packed = encode_user_data(text, len(text) - 1)
    assert gzip.decompress(packed).decode() == text
    assert parse_user_data(packed).files  # cloud-init (and the local driver) read it gzipped
    with pytest.raises(CsctlError) as info:
        encode_user_data(text, 100)
    assert info.value.message.startswith(f"user-data is {len(text.encode())} bytes (")
    assert info.value.message.endswith("gzipped), over the cloud's limit of 100")


def test_site_template(tmp_path):
    template = tmp_path / "site.yaml"
    template.write_text(
        "#cloud-config\npackages: [cvmfs]\nwrite_files:\n  - path: /etc/condor/config.d/50-csctl.conf\n"
        "    content: ${condor_config}\n"
    )
    config = parse_config(
        CONFIG.replace('vm_config = "UPDATE_INTERVAL = 60"', f'user_data_template = "{template}"')
    )
    payload = parse_user_data(render_user_data(config, BATCH, KEY, NOW).encode())
    assert [f.path for f in payload.files] == ["/etc/condor/config.d/50-csctl.conf"]
    template.write_text("#cloud-config\n${nonsense}\n")
    with pytest.raises(CsctlError) as info:
        render_user_data(config, BATCH, KEY, NOW)
    assert info.value.message == f"{template}: bad placeholder in user-data template: 'nonsense'"


def test_a_vm_for_one_job_has_one_slot_of_everything():
    shared = condor_config(parse_config(CONFIG), BATCH).splitlines()
    assert "SLOT_TYPE_1_PARTITIONABLE = True" in shared
    single = condor_config(parse_config(CONFIG), dataclasses.replace(BATCH, single_slot=True)).splitlines()
    assert [line for line in single if line.startswith(("NUM_SLOTS", "SLOT_TYPE"))] == [
        "NUM_SLOTS_TYPE_1 = 1",
        "SLOT_TYPE_1 = 100%",
        "SLOT_TYPE_1_PARTITIONABLE = False",
    ]
