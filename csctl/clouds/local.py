"""Local driver: a "VM" is a condor_master + startd process on this host, started from
the same cloud-init payload a cloud VM receives (its files installed under the VM's own
directory, its setup script run with the launch index a cloud would give).

Needs an HTCondor installation on the host, or inside the chroot named by ``root``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from csctl.clouds.base import joined_tag, parse_joined
from csctl.context.payload import Payload, parse_user_data
from csctl.errors import CloudBackendError, CloudBadRequest, CsctlError
from csctl.model import (
    TAG_BATCH,
    TAG_CLOUD,
    TAG_JOINED,
    TAG_POOL,
    TAG_SLOTS,
    TAG_TYPE,
    BootRequest,
    Instance,
    Quota,
    VMState,
    vm_id,
)

CONDOR_DIRS = ("log", "spool", "execute", "lock", "run")
SETUP_SCRIPT = "/usr/local/sbin/csctl-vm-setup"


class Settings(BaseModel):
    """Keys of a ``driver = "local"`` cloud section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    root: Path | None = Field(None, description="run HTCondor inside this chroot")
    work_dir: Path = Field(Path("/var/lib/csctl/local"), description="VM directories (inside root)")
    condor_master: str = "condor_master"
    condor_config: str = Field("", description="extra HTCondor configuration for every local VM")


@dataclass(frozen=True)
class LocalVM:
    """Where one local VM lives, as host paths and as paths HTCondor sees."""

    csctl_id: str
    dir: Path  # as HTCondor sees it (inside root)
    host_dir: Path  # the same directory from this process


class Driver:
    """The local cloud: VMs are HTCondor processes on this machine."""

    metadata_service = "none"  # the launch index is passed to the setup script directly
    user_data_limit = None
    private_network = False  # a local VM is on this host
    zones: tuple[str, ...] = ()

    def __init__(self, name: str, settings: Settings) -> None:
        self.name = name
        self.settings = settings

    # -- paths -------------------------------------------------------------------------
    def _host(self, path: Path) -> Path:
        root = self.settings.root
        return root / path.relative_to("/") if root else path

    def _vm(self, csctl_id: str) -> LocalVM:
        inner = self.settings.work_dir / csctl_id
        return LocalVM(csctl_id, inner, self._host(inner))

    def _run(
        self, argv: list[str], env: dict[str, str], timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        if self.settings.root:
            argv = ["chroot", str(self.settings.root), *argv]
        return subprocess.run(
            argv,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    # -- the interface -----------------------------------------------------------------
    def list_instances(self, pool: str) -> list[Instance]:
        """Every local VM directory whose instance record names ``pool``."""
        base = self._host(self.settings.work_dir)
        instances = []
        for record in sorted(base.glob("*/instance.json")):
            with contextlib.suppress(OSError, ValueError, KeyError):
                data = json.loads(record.read_text())
                if data["tags"].get(TAG_POOL) == pool and data["tags"].get(TAG_CLOUD) == self.name:
                    instances.append(self._instance(data, record.parent))
        return instances

    def boot(self, request: BootRequest) -> list[Instance]:
        """Start ``count`` VMs from the payload, each with its launch index."""
        try:
            payload = parse_user_data(request.user_data)
        except CsctlError as exc:
            raise CloudBadRequest(self.name, exc.message) from None
        started = []
        for index in range(request.count):
            try:
                started.append(self.start_vm(request, index, payload))
            except (OSError, subprocess.SubprocessError, CsctlError) as exc:
                if not started:
                    raise CloudBackendError(self.name, f"cannot start local VM: {exc}") from None
                break
        return started

    def terminate(self, instances: Sequence[Instance]) -> list[str]:
        """Stop each VM's HTCondor (fast: running jobs are killed) and remove its directory."""
        done = []
        for instance in instances:
            vm = self._vm(instance.csctl_id)
            self._stop(vm)
            shutil.rmtree(vm.host_dir, ignore_errors=True)
            done.append(instance.csctl_id)
        return done

    def mark_joined(self, instances: Sequence[Instance], when: datetime) -> list[str]:
        """Add ``csctl-joined = when`` to each VM's instance record; return the csctl ids
        marked. A VM whose record is gone (terminated) is not marked."""
        value = joined_tag(when)
        done = []
        for instance in instances:
            record = self._vm(instance.csctl_id).host_dir / "instance.json"
            try:
                data = json.loads(record.read_text())
                data["tags"][TAG_JOINED] = value
                _replace(record, json.dumps(data))
            except FileNotFoundError:
                continue
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise CloudBackendError(self.name, f"cannot mark {instance.csctl_id} joined: {exc}") from None
            done.append(instance.csctl_id)
        return done

    def console_output(self, instance: Instance) -> str:
        """The setup script's output and the tails of the VM's HTCondor logs."""
        vm = self._vm(instance.csctl_id)
        parts = []
        for name in ("setup.log", "log/MasterLog", "log/StartLog"):
            path = vm.host_dir / name
            if path.exists():
                lines = path.read_text(errors="replace").splitlines()[-40:]
                parts.append(f"==> {name} <==\n" + "\n".join(lines))
        return "\n".join(parts)

    def quota(self) -> Quota:
        """The local cloud reports no quota (configure max_vms/max_cores)."""
        return Quota()

    def find_image(self, url: str) -> str | None:
        """Every image URL is this host's own HTCondor: a local VM boots no image."""
        return url

    # -- one VM ------------------------------------------------------------------------
    def start_vm(self, request: BootRequest, index: int, payload: Payload) -> Instance:
        """Install the payload for VM ``index`` of the batch and start its condor_master.

        The instance record is written first, so a VM interrupted half-way is still
        listed (and retired). A failing setup script leaves the VM stopped, as a cloud VM
        whose contextualization fails stays up without ever joining.
        """
        vm = self._vm(vm_id(request.batch_id, index))
        if vm.host_dir.exists():
            raise CsctlError(f"{vm.host_dir} already exists")
        self._make_dirs(vm)
        tags = {**request.tags, TAG_BATCH: request.batch_id, TAG_TYPE: request.vm_type, TAG_CLOUD: self.name}
        record = {
            "csctl_id": vm.csctl_id,
            "provider_id": f"local:{vm.csctl_id}",
            "image": request.image,
            "tags": tags,
            "booted_at": datetime.now(UTC).isoformat(),
        }
        (vm.host_dir / "instance.json").write_text(json.dumps(record))
        self._install(vm, payload)
        (vm.host_dir / "condor_config").write_text(self._base_config(vm))
        env = {
            "CSCTL_LAUNCH_INDEX": str(index),
            "CSCTL_CONDOR_ETC": str(vm.dir / "etc"),
            "CSCTL_NO_START": "1",
        }
        setup = self._run(["sh", str(vm.dir / "bin/csctl-vm-setup")], env)
        (vm.host_dir / "setup.log").write_text(setup.stdout + setup.stderr + f"(exit {setup.returncode})\n")
        if setup.returncode == 0:
            started = self._run(
                [self.settings.condor_master, "-pidfile", str(vm.dir / "run/master.pid")],
                {"CONDOR_CONFIG": str(vm.dir / "condor_config")},
            )
            if started.returncode != 0:
                raise CsctlError(f"condor_master failed: {started.stderr.strip()[-200:]}")
        return self._instance(record, vm.host_dir)

    def _make_dirs(self, vm: LocalVM) -> None:
        uid, gid = self._condor_ids()
        for sub in ("etc/config.d", "etc/tokens.d", "etc/passwords.d", "bin"):
            (vm.host_dir / sub).mkdir(parents=True, mode=0o755)
        for sub in ("etc/tokens.d", "etc/passwords.d"):
            (vm.host_dir / sub).chmod(0o700)
        for sub in CONDOR_DIRS:
            (vm.host_dir / sub).mkdir(mode=0o755)
            os.chown(vm.host_dir / sub, uid, gid)

    def _install(self, vm: LocalVM, payload: Payload) -> None:
        for entry in payload.files:
            if entry.path.startswith("/etc/condor/"):
                target = vm.host_dir / "etc" / entry.path.removeprefix("/etc/condor/")
            elif entry.path == SETUP_SCRIPT:
                target = vm.host_dir / "bin/csctl-vm-setup"
            else:
                continue  # a local VM is not a machine: other files stay the site's business
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, entry.mode)
            with os.fdopen(fd, "wb") as f:
                f.write(entry.content)

    def _base_config(self, vm: LocalVM) -> str:
        d = vm.dir
        lines = [
            f"# csctl local VM {vm.csctl_id}",
            "RELEASE_DIR = /usr",
            "BIN = /usr/bin",
            "SBIN = /usr/sbin",
            "LIBEXEC = /usr/libexec/condor",
            f"LOCAL_DIR = {d}",
            *(f"{sub.upper()} = $(LOCAL_DIR)/{sub}" for sub in CONDOR_DIRS),
            f"ETC = {d}/etc",
            f"LOCAL_CONFIG_DIR = {d}/etc/config.d",
            f"SEC_TOKEN_DIRECTORY = {d}/etc/tokens.d",
            f"SEC_PASSWORD_DIRECTORY = {d}/etc/passwords.d",
            f"MASTER_NAME = {vm.csctl_id}",
            f"STARTD_NAME = {vm.csctl_id}",
            # several masters on one host: own ports, no shared family session
            "USE_SHARED_PORT = False",
            "SEC_USE_FAMILY_SESSION = False",
            "RunBenchmarks = False",
            self.settings.condor_config,
        ]
        return "\n".join(lines) + "\n"

    def _condor_ids(self) -> tuple[int, int]:
        passwd = self._host(Path("/etc/passwd")).read_text()
        for line in passwd.splitlines():
            fields = line.split(":")
            if fields[0] == "condor":
                return int(fields[2]), int(fields[3])
        raise CsctlError("no condor user: is HTCondor installed?")

    def _instance(self, data: Mapping[str, Any], host_dir: Path) -> Instance:
        tags = data["tags"]
        pid = _read_pid(host_dir / "run/master.pid")
        alive = pid is not None and _is_master(pid)
        return Instance(
            csctl_id=str(data["csctl_id"]),
            cloud=self.name,
            vm_type=str(tags.get(TAG_TYPE, "")),
            state=VMState.RUNNING if alive else VMState.STOPPED,
            provider_id=str(data["provider_id"]),
            booted_at=datetime.fromisoformat(str(data["booted_at"])),
            address="127.0.0.1",
            image=data.get("image"),
            joined_at=parse_joined(tags.get(TAG_JOINED)),
            single_slot=tags.get(TAG_SLOTS) == "1",
        )

    def _stop(self, vm: LocalVM) -> None:
        pid = _read_pid(vm.host_dir / "run/master.pid")
        if pid is not None and _is_master(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)  # fast shutdown of the master and its daemons
            deadline = time.monotonic() + 20
            while _is_master(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
        # anything still running from this VM's configuration (startd, starter, job)
        for stray in _processes_using(str(vm.dir / "condor_config")):
            with contextlib.suppress(ProcessLookupError):
                os.kill(stray, signal.SIGKILL)


def _replace(path: Path, text: str) -> None:
    """Write ``path`` whole or not at all: a reader never sees half a record."""
    partial = path.with_name(path.name + ".new")
    partial.write_text(text)
    os.replace(partial, path)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _is_master(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "condor_master"
    except OSError:
        return False


def _processes_using(condor_config: str) -> list[int]:
    needle = f"CONDOR_CONFIG={condor_config}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
    return pids
