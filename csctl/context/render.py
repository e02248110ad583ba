"""Rendering the cloud-init user-data of a boot batch.

One payload per batch (every VM of one boot call receives the same user-data). It
writes an HTCondor configuration fragment, the batch's IDTOKEN (identity
``vm-<batch>@<pool>``, scoped to advertising a startd and its master, expiring), the
batch's own signing key (so the VMs accept csctl's commands, and only csctl's), and a
setup script that names each VM ``<batch>-<launch index>`` and starts HTCondor.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from string import Template

from csctl.config import Config
from csctl.config_guard import IDENTIFIER, show
from csctl.context.tokens import STARTD_SCOPES, SigningKey, derive_vm_key, mint, scramble
from csctl.errors import CsctlError
from csctl.plan import attributes as A

REDACTED = "<redacted>"


@dataclass(frozen=True)
class Batch:
    """What the payload of one boot batch depends on."""

    batch_id: str
    vm_type: str
    cloud: str
    metadata: str  # "ec2", "openstack" or "none": where the VM finds its launch index
    private_network: bool = False
    keep_alive_minutes: int | None = None  # the VMKeepAlive of the jobs it is booted for
    # VMJobPerCore = false: one job per VM, so one static slot holding every resource (a
    # partitionable slot would let a second job take what the first did not claim)
    single_slot: bool = False


def vm_identity(config: Config, batch_id: str) -> str:
    """The identity the VMs of a batch authenticate as."""
    return f"vm-{batch_id}@{config.pool.name}"


def admin_identity(config: Config) -> str:
    """The identity csctl uses when it commands a VM (drain, shut down)."""
    return f"csctl@{config.pool.name}"


# a line break would start a new configuration line: a value could set any knob
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def _collector_host(collector: str) -> str:
    """The host part of ``host[:port]``, an IPv6 address keeping its brackets."""
    if collector.startswith("["):
        return collector[: collector.find("]") + 1]
    return collector.split(":")[0]


def _refuse_injection(lines: list[str], site: str) -> None:
    """CsctlError unless every line csctl writes is one line, and the site's text has no
    control character but newline and tab. The configuration is validated when it is
    loaded; this holds even for a Config built another way."""
    for line in lines:
        if _CONTROL.search(line):
            raise CsctlError(
                f"refusing to write a line break or control character into a VM's HTCondor "
                f"configuration: {show(line, 80)}",
                hint="check the configuration with: csctl config check",
            )
    if _CONTROL_BUT_LINES.search(site):
        raise CsctlError(
            "refusing to write a control character into a VM's HTCondor configuration: "
            f"pool.vm_config {show(site, 80)}",
            hint="check the configuration with: csctl config check",
        )


def condor_config(config: Config, batch: Batch) -> str:
    """The HTCondor configuration fragment a VM of ``batch`` gets.

    Raises CsctlError rather than write a value that would break out of its line.
    """
    vm_type = config.vm_types[batch.vm_type]
    pool = config.pool
    lines = [
        f"# csctl: VM of batch {batch.batch_id}",
        f"CONDOR_HOST = {_collector_host(pool.collector)}",
        f"COLLECTOR_HOST = {pool.collector}",
        "DAEMON_LIST = MASTER, STARTD",
        f"TRUST_DOMAIN = {pool.name}",
        "SEC_DEFAULT_AUTHENTICATION = REQUIRED",
        "SEC_DEFAULT_AUTHENTICATION_METHODS = IDTOKENS",
        "SEC_CLIENT_AUTHENTICATION_METHODS = IDTOKENS",
        "SEC_DEFAULT_ENCRYPTION = REQUIRED",
        "SEC_DEFAULT_INTEGRITY = REQUIRED",
        "SEC_READ_AUTHENTICATION = OPTIONAL",
        "ALLOW_READ = *",
        f"ALLOW_ADMINISTRATOR = {admin_identity(config)}",
        f"ALLOW_DAEMON = {admin_identity(config)}",
        f"{A.CSCTL_POOL} = {json.dumps(pool.name)}",
        f"{A.CSCTL_TYPE} = {json.dumps(batch.vm_type)}",
        f"{A.CSCTL_CLOUD} = {json.dumps(batch.cloud)}",
        f"{A.CSCTL_BATCH} = {json.dumps(batch.batch_id)}",
        f"{A.VM_TYPE} = {json.dumps(batch.vm_type)}",
        f"{A.CLOUD_NAME} = {json.dumps(batch.cloud)}",
        "STARTD_ATTRS = $(STARTD_ATTRS) "
        + " ".join(
            (A.CSCTL_ID, A.CSCTL_POOL, A.CSCTL_TYPE, A.CSCTL_CLOUD, A.CSCTL_BATCH, A.VM_TYPE, A.CLOUD_NAME)
        ),
        # only jobs that ask for no VM type, or for this one
        f'START = (TARGET.VMType =?= undefined) || (TARGET.VMType =?= "{batch.vm_type}")',
        f"NUM_CPUS = {vm_type.cpus}",
        f"MEMORY = {vm_type.memory}",
        "NUM_SLOTS_TYPE_1 = 1",
        "SLOT_TYPE_1 = 100%",
        f"SLOT_TYPE_1_PARTITIONABLE = {not batch.single_slot}",
        # a graceful drain lets running jobs finish instead of evicting them
        "MAXJOBRETIREMENTTIME = $(MAXJOBRETIREMENTTIME:2592000)",
    ]
    if pool.filesystem_domain:
        lines += [f"FILESYSTEM_DOMAIN = {pool.filesystem_domain}", f"UID_DOMAIN = {pool.filesystem_domain}"]
    if batch.private_network:
        lines.append("CCB_ADDRESS = $(COLLECTOR_HOST)")
    if batch.keep_alive_minutes is not None:
        lines.append(f"{A.CSCTL_KEEP_ALIVE} = {batch.keep_alive_minutes}")
        lines.append(f"STARTD_ATTRS = $(STARTD_ATTRS) {A.CSCTL_KEEP_ALIVE}")
    if vm_type.attributes:
        for name in vm_type.attributes:
            if not IDENTIFIER.fullmatch(name):
                raise CsctlError(
                    f"refusing to write attribute {show(name)} into a VM's HTCondor configuration"
                )
        lines += [f"{name} = {json.dumps(value)}" for name, value in vm_type.attributes.items()]
        lines.append(f"STARTD_ATTRS = $(STARTD_ATTRS) {' '.join(vm_type.attributes)}")
    _refuse_injection(lines, pool.vm_config)
    if pool.vm_config:
        lines += ["# site additions (pool.vm_config)", pool.vm_config.rstrip()]
    return "\n".join(lines) + "\n"


def setup_script(batch: Batch) -> str:
    """The VM's first-boot script with the batch id and metadata kind filled in."""
    text = resources.files("csctl.context").joinpath("csctl-vm-setup.sh").read_text()
    return text.replace("@BATCH@", batch.batch_id).replace("@METADATA@", batch.metadata)


def _template(config: Config) -> Template:
    path: Path | None = config.pool.user_data_template
    if path is None:
        return Template(resources.files("csctl.context").joinpath("cloud-init.yaml").read_text())
    try:
        return Template(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CsctlError(f"{path}: cannot read user-data template: {exc.strerror}") from None


def render_user_data(
    config: Config, batch: Batch, pool_key: SigningKey, now: datetime, redact: bool = False
) -> str:
    """The batch's cloud-init user-data; with ``redact`` the token and key are replaced."""
    batch_key = derive_vm_key(pool_key, batch.batch_id)
    token = mint(
        pool_key,
        issuer=config.pool.name,
        subject=vm_identity(config, batch.batch_id),
        scopes=STARTD_SCOPES,
        now=now,
        lifetime_seconds=config.policy.vm_token_hours * 3600,
    )
    values = {
        "batch_id": batch.batch_id,
        "pool": config.pool.name,
        "vm_type": batch.vm_type,
        "cloud": batch.cloud,
        "condor_config": json.dumps(condor_config(config, batch)),
        "token": json.dumps(REDACTED if redact else token + "\n"),
        "key_name": batch_key.name,
        "signing_key": json.dumps(
            REDACTED if redact else base64.b64encode(scramble(batch_key.secret)).decode()
        ),
        "setup_script": json.dumps(setup_script(batch)),
    }
    try:
        return _template(config).substitute(values)
    except (KeyError, ValueError) as exc:
        source = config.pool.user_data_template or "built-in template"
        raise CsctlError(f"{source}: bad placeholder in user-data template: {exc}") from None


def encode_user_data(text: str, limit: int | None) -> bytes:
    """The payload as bytes, gzipped when it exceeds ``limit`` (cloud-init reads both).

    Raises CsctlError when even the gzipped payload is over the limit.
    """
    data = text.encode("utf-8")
    if limit is None or len(data) <= limit:
        return data
    packed = gzip.compress(data, mtime=0)
    if len(packed) > limit:
        raise CsctlError(
            f"user-data is {len(data)} bytes ({len(packed)} gzipped), over the cloud's limit of {limit}",
            hint="shorten the user-data template or pool.vm_config",
        )
    return packed
