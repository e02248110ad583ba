"""The test bed's VM player: it plays the VMs that moto or Nova only pretend to boot.

Instances in moto or Nova never boot an OS, so nothing would ever run csctl's
cloud-init payload. The player does what the VM would: for each running csctl
instance it reads the user-data back from the cloud API, together with the batch id
and the launch index the cloud gives that instance, and starts a real
condor_master/startd from exactly that payload inside the test pool's chroot, with
csctl's own local driver (``csctl.clouds.local.Driver.start_vm``). A startd that then
joins the pool proves that the payload, as delivered through the cloud API, works.

Usage::

    player = VMPlayer(local_settings, collector)
    player.play(ec2_vms(client))          # or nova_vms(admin_conn); plays each instance once
    report = player.wait_joined(timeout=30)
    ...
    player.stop_all()

Played VMs live under their own ``work_dir`` (``PLAYER_WORK_DIR``, not the local
cloud's), so csctl's local cloud never lists them as its own.
"""

from __future__ import annotations

import base64
import binascii
import re
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from csctl.clouds.local import Driver as LocalDriver
from csctl.clouds.local import Settings as LocalSettings
from csctl.context.payload import parse_user_data
from csctl.errors import CsctlError
from csctl.model import TAG_BATCH, TAG_CLOUD, TAG_TYPE, BootRequest, Instance, VMState, vm_id

PLAYER_WORK_DIR = Path("/var/lib/csctl-testbed/played")  # inside the chroot


@dataclass(frozen=True)
class CloudVM:
    """One running csctl instance of a cloud, as the VM itself would see it at boot."""

    provider_id: str
    cloud: str
    batch_id: str
    index: int  # launch index, 0-based
    vm_type: str
    tags: Mapping[str, str]
    user_data: bytes

    @property
    def csctl_id(self) -> str:
        return vm_id(self.batch_id, self.index)


@dataclass(frozen=True)
class Failure:
    """A played VM that did not start, or started and never joined, with its console."""

    csctl_id: str
    provider_id: str
    reason: str
    console: str


@dataclass
class JoinReport:
    """Which played VMs have a startd ad in the collector, and which do not."""

    joined: dict[str, dict[str, Any]] = field(default_factory=dict)  # csctl id -> startd ad
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


# -- adapters: what a cloud API tells a booting VM ------------------------------------


def ec2_vms(client: Any) -> Iterator[CloudVM]:
    """Running instances with a ``csctl-batch`` tag, with user-data and ``AmiLaunchIndex``.

    ``client`` is a boto3 EC2 client; user-data comes from
    ``DescribeInstanceAttribute(userData)``, which botocore hands back base64-encoded.
    """
    filters = [
        {"Name": "instance-state-name", "Values": ["running"]},
        {"Name": "tag-key", "Values": [TAG_BATCH]},
    ]
    for page in client.get_paginator("describe_instances").paginate(Filters=filters):
        for reservation in page["Reservations"]:
            for raw in reservation["Instances"]:
                tags = {t["Key"]: t["Value"] for t in raw.get("Tags", [])}
                attr = client.describe_instance_attribute(InstanceId=raw["InstanceId"], Attribute="userData")
                yield CloudVM(
                    provider_id=raw["InstanceId"],
                    cloud=tags.get(TAG_CLOUD, ""),
                    batch_id=tags[TAG_BATCH],
                    index=int(raw.get("AmiLaunchIndex", 0)),
                    vm_type=tags.get(TAG_TYPE, ""),
                    tags=tags,
                    user_data=_b64(attr.get("UserData", {}).get("Value")),
                )


def nova_vms(admin_conn: Any) -> Iterator[CloudVM]:
    """ACTIVE servers with ``csctl-batch`` metadata, with user-data and launch index.

    ``admin_conn`` must act with the admin role: only admins see ``user_data`` and
    ``launch_index`` (``OS-EXT-SRV-ATTR:*``). Without a launch index the multi-create
    name suffix ``<batch>-<i>`` (1-based) gives it, else it is 0.
    """
    for server in admin_conn.compute.servers(details=True):
        meta = dict(server.metadata or {})
        if server.status != "ACTIVE" or TAG_BATCH not in meta:
            continue
        user_data = server.user_data or admin_conn.compute.get_server(server.id).user_data
        yield CloudVM(
            provider_id=server.id,
            cloud=meta.get(TAG_CLOUD, ""),
            batch_id=meta[TAG_BATCH],
            index=_nova_index(server, meta[TAG_BATCH]),
            vm_type=meta.get(TAG_TYPE, ""),
            tags=meta,
            user_data=_b64(user_data),
        )


def _nova_index(server: Any, batch: str) -> int:
    if server.launch_index is not None:
        return int(server.launch_index)
    match = re.fullmatch(re.escape(batch) + r"-(\d+)", server.name or "")
    return int(match.group(1)) - 1 if match else 0


def _b64(value: str | None) -> bytes:
    try:
        return base64.b64decode(value or "", validate=True)
    except binascii.Error:
        return b""


# -- the player ------------------------------------------------------------------------


class VMPlayer:
    """Plays cloud instances as local VMs in the test pool; each instance at most once.

    ``settings`` are the test bed's local-cloud settings (chroot, HTCondor knobs the
    chroot needs); the player uses them with its own ``work_dir``. ``collector`` is
    where :meth:`wait_joined` looks for the played startds.
    """

    def __init__(self, settings: LocalSettings, collector: str, work_dir: Path = PLAYER_WORK_DIR) -> None:
        self.settings = settings.model_copy(update={"work_dir": work_dir})
        self.collector = collector
        self.played: dict[str, Instance] = {}  # provider id -> the local VM playing it
        self.failures: list[Failure] = []  # VMs whose start failed
        self._seen: set[str] = set()  # provider ids ever played, stopped ones included
        self._drivers: dict[str, LocalDriver] = {}

    def driver(self, cloud: str) -> LocalDriver:
        """The local driver playing ``cloud``'s VMs (named after it, so its records say so)."""
        if cloud not in self._drivers:
            self._drivers[cloud] = LocalDriver(cloud, self.settings)
        return self._drivers[cloud]

    def play(self, vms: Iterable[CloudVM]) -> list[Instance]:
        """Boot every VM not played yet from its own user-data; return those started.

        A VM whose payload cannot be installed or whose setup fails is recorded in
        :attr:`failures` with its console, and is not tried again.
        """
        started = []
        for vm in vms:
            if vm.provider_id in self._seen:  # failed and stopped ones too: a VM boots once
                continue
            self._seen.add(vm.provider_id)
            try:
                instance = self._start(vm)
            except (OSError, subprocess.SubprocessError, CsctlError) as exc:
                reason = exc.message if isinstance(exc, CsctlError) else str(exc)
                self.failures.append(Failure(vm.csctl_id, vm.provider_id, reason, self._console(vm)))
                self.played[vm.provider_id] = self._placeholder(vm)  # so stop_all cleans it up
                continue
            self.played[vm.provider_id] = instance
            started.append(instance)
        return started

    def play_all(self, *sources: Iterable[CloudVM]) -> list[Instance]:
        """:meth:`play` every source (e.g. ``ec2_vms(c)``, ``nova_vms(a)``) in turn."""
        return [vm for source in sources for vm in self.play(source)]

    def sync(self, running: Iterable[CloudVM]) -> tuple[list[Instance], list[str]]:
        """Follow the cloud: play the running VMs not played yet, and stop the played VMs
        whose instance is no longer running (terminated by csctl). Returns both lists."""
        running = list(running)
        started = self.play(running)
        alive = {vm.provider_id for vm in running}
        gone = [i for pid, i in self.played.items() if pid not in alive]
        stopped: list[str] = []
        for instance in gone:
            stopped += self.driver(instance.cloud).terminate([instance])
            del self.played[instance.provider_id]
        return started, stopped

    def wait_joined(self, timeout: float) -> JoinReport:
        """Wait up to ``timeout`` s for a startd ad of every played VM; failures carry consoles."""
        import htcondor2

        failed = {f.csctl_id for f in self.failures}
        wanted = {i.csctl_id: i for i in self.played.values() if i.csctl_id not in failed}
        collector = htcondor2.Collector(self.collector)
        constraint = " || ".join(f'CsctlId == "{i}"' for i in wanted) or "false"
        deadline = time.monotonic() + timeout
        while True:
            ads = collector.query(htcondor2.AdType.Startd, constraint)
            joined = {str(ad["CsctlId"]): dict(ad) for ad in ads}
            if set(wanted) <= set(joined) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        report = JoinReport(joined, list(self.failures))
        for csctl_id in sorted(set(wanted) - set(joined)):
            instance = wanted[csctl_id]
            console = self.driver(instance.cloud).console_output(instance)
            reason = f"no startd ad in {self.collector} after {timeout:g} s"
            report.failures.append(Failure(csctl_id, instance.provider_id, reason, console))
        return report

    def stop_strays(self) -> list[str]:
        """Stop and remove VMs an earlier, crashed session left under the work dir."""
        root, work_dir = self.settings.root, self.settings.work_dir
        host_dir = root / work_dir.relative_to("/") if root else work_dir
        names = sorted(d.name for d in host_dir.glob("*") if d.is_dir())
        return self.driver("").terminate([Instance(n, "", "", VMState.ERROR, "") for n in names])

    def stop_all(self) -> list[str]:
        """Stop every played VM (local driver ``terminate``); return their csctl ids."""
        stopped = []
        for cloud in {i.cloud for i in self.played.values()}:
            mine = [i for i in self.played.values() if i.cloud == cloud]
            stopped += self.driver(cloud).terminate(mine)
        self.played.clear()
        return stopped

    # -- helpers -----------------------------------------------------------------------

    def _start(self, vm: CloudVM) -> Instance:
        payload = parse_user_data(vm.user_data)
        request = BootRequest(vm.batch_id, vm.vm_type, 1, "played", None, vm.user_data, vm.tags)
        instance = self.driver(vm.cloud).start_vm(request, vm.index, payload)
        return replace(instance, provider_id=vm.provider_id)

    def _placeholder(self, vm: CloudVM) -> Instance:
        return Instance(vm.csctl_id, vm.cloud, vm.vm_type, VMState.ERROR, vm.provider_id)

    def _console(self, vm: CloudVM) -> str:
        return self.driver(vm.cloud).console_output(self._placeholder(vm))
