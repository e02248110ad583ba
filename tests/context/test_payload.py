"""Reading a cloud-init payload back, as a VM (or the local driver) does."""

from __future__ import annotations

import base64
import gzip
from datetime import UTC, datetime

import pytest

from csctl.config import parse_config
from csctl.context.payload import Payload, WriteFile, parse_user_data
from csctl.context.render import Batch, condor_config, encode_user_data, render_user_data, setup_script
from csctl.context.tokens import SigningKey
from csctl.errors import CsctlError

CONFIG = parse_config(
    """
[pool]
name = "pool.test"
collector = "cm.test:9618"
[clouds.H]
driver = "ec2"
region = "r"
[vm_types.t]
cpus = 2
memory = 2000
disk = 10
images = { H = "ami-1" }
"""
)
BATCH = Batch("h-0123abcd", "t", "H", "ec2")
KEY = SigningKey("POOL", b"pool-secret")
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def rendered() -> str:
    return render_user_data(CONFIG, BATCH, KEY, NOW)


def test_rendered_user_data_reads_back_as_written():
    payload = parse_user_data(rendered().encode())
    files = {f.path: f for f in payload.files}
    assert files["/etc/condor/config.d/50-csctl.conf"].content.decode() == condor_config(CONFIG, BATCH)
    assert files["/usr/local/sbin/csctl-vm-setup"].content.decode() == setup_script(BATCH)
    assert files["/usr/local/sbin/csctl-vm-setup"].mode == 0o755
    assert payload.runcmd == [["/usr/local/sbin/csctl-vm-setup"]]


def test_gzipped_user_data_reads_the_same_as_plain():
    text = rendered()
    plain = parse_user_data(text.encode())
    assert parse_user_data(gzip.compress(text.encode())) == plain
    # as the cloud receives it when the text is over its user-data limit
    packed = encode_user_data(text, len(text) - 1)
    assert packed[:2] == b"\x1f\x8b" and parse_user_data(packed) == plain


def test_entries_base64_permissions_and_commands():
    data = (
        "#cloud-config\n"
        "write_files:\n"
        "  - path: /a\n"
        "    content: plain text\n"
        "  - path: /b\n"
        f"    content: {base64.b64encode(bytes([0, 255, 10])).decode()}\n"
        "    encoding: b64\n"
        "    permissions: '0600'\n"
        "runcmd:\n"
        "  - echo hi && true\n"
        "  - [touch, /x]\n"
    )
    assert parse_user_data(data.encode()) == Payload(
        [WriteFile("/a", b"plain text", 0o644), WriteFile("/b", b"\x00\xff\n", 0o600)],
        [["sh", "-c", "echo hi && true"], ["touch", "/x"]],
    )
    assert parse_user_data(b"#cloud-config\n{}\n") == Payload([], [])


def test_not_cloud_config():
    with pytest.raises(CsctlError) as info:
        parse_user_data(b"#!/bin/sh\necho hi\n")
    assert info.value.message == "user-data is not a #cloud-config document"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"#cloud-config\n- a list\n", "user-data is not a cloud-config mapping"),
        (b"#cloud-config\nwrite_files:\n  - content: x\n", "user-data: a write_files entry has no path"),
        (
            b"#cloud-config\nwrite_files:\n  - path: /k\n    content: '!!'\n    encoding: b64\n",
            "user-data: /k: content is not base64",
        ),
    ],
)
def test_a_payload_csctl_cannot_read_is_one_clear_error(data, message):
    with pytest.raises(CsctlError) as info:
        parse_user_data(data)
    assert info.value.message == message


def test_invalid_yaml_is_named_as_such():
    with pytest.raises(CsctlError) as info:
        parse_user_data(b"#cloud-config\nwrite_files: [\n")
    assert info.value.message.startswith("user-data is not valid YAML: ")
