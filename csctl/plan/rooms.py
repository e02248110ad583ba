"""What is left on each cloud this cycle: its configured limits minus csctl's live VMs,
and the quota its API reported (the vCPU limits of the instance type booted included)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from csctl.config import CloudConfig, Config
from csctl.model import Instance, Quota, VcpuLimit, VMState

UNBOUNDED = 1 << 30


@dataclass(frozen=True)
class Size:
    """One VM as the limits count it: the type's cores, MB and GB, and the instance type
    (flavor) and market it boots on, which pick the vCPU limit it counts against."""

    cpus: int
    memory: int
    disk: int
    flavor: str | None = None
    spot: bool = False


def _fits(pairs: Iterable[tuple[int | None, int]]) -> int:
    counts = [left // need for left, need in pairs if left is not None]
    return max(0, min(counts)) if counts else UNBOUNDED


@dataclass
class Room:
    """What is left of one cloud's limits (None: unlimited) and of the quota its API
    reported this cycle (``quota`` None: none reported)."""

    vms: int | None
    cores: int | None
    memory: int | None
    storage: int | None
    quota: Quota | None = None
    quota_error: str | None = None  # the quota call failed: configured limits only
    unlisted: str | None = None  # the list call failed: usage unknown, nothing is booted

    def fits(self, size: Size) -> int:
        """How many VMs of ``size`` still fit."""
        if self.unlisted is not None:
            return 0
        return min(self._limits_fit(size), self._quota_fits(size))

    def _limits_fit(self, size: Size) -> int:
        cpus, memory, disk = size.cpus, size.memory, size.disk
        return _fits(((self.vms, 1), (self.cores, cpus), (self.memory, memory), (self.storage, disk)))

    def _quota_fits(self, size: Size) -> int:
        q = self.quota
        if q is None:
            return UNBOUNDED
        vcpu = q.vcpu_limit(size.flavor, size.spot)
        # the vCPU limit counts the type's cores: an instance type with more vCPUs than
        # its VM type declares is refused by the cloud (VcpuLimitExceeded) and backs off
        pairs = ((q.instances, 1), (q.cores, size.cpus), (q.memory_mb, size.memory))
        return _fits((*pairs, (None if vcpu is None else vcpu.left, size.cpus)))

    def take(self, n: int, size: Size) -> None:
        """Count ``n`` VMs of ``size`` as booked."""
        if self.vms is not None:
            self.vms -= n
        if self.cores is not None:
            self.cores -= n * size.cpus
        if self.memory is not None:
            self.memory -= n * size.memory
        if self.storage is not None:
            self.storage -= n * size.disk
        q = self.quota
        if q is not None:
            vcpu = q.vcpu_limit(size.flavor, size.spot)
            vcpus = q.vcpus
            if vcpu is not None:
                vcpus = tuple(replace(v, left=v.left - n * size.cpus) if v is vcpu else v for v in vcpus)
            self.quota = Quota(
                None if q.instances is None else q.instances - n,
                None if q.cores is None else q.cores - n * size.cpus,
                None if q.memory_mb is None else q.memory_mb - n * size.memory,
                vcpus=vcpus,
            )

    def full(self, cloud: str, size: Size) -> str:
        """Why no further VM of this size fits: the plan says which bound holds."""
        if self.unlisted is not None:
            return f"{cloud} could not be listed ({self.unlisted}): its usage is unknown"
        q = self.quota
        if q is not None and self._quota_fits(size) < self._limits_fit(size):
            vcpu = q.vcpu_limit(size.flavor, size.spot)
            bounds = ((q.instances, "VMs"), (q.cores, "cores"), (q.memory_mb, "MB"))
            left = [f"{max(0, v)} {unit}" for v, unit in bounds if v is not None]
            if vcpu is not None:
                left.append(_vcpus_left(vcpu))
            return f"{cloud}'s quota is used up (left: {', '.join(left)})"
        if self.quota_error is not None:
            return f"{cloud} is at its limits (quota unknown: {self.quota_error}; configured limits only)"
        return f"{cloud} is at its limits"


def _vcpus_left(limit: VcpuLimit) -> str:
    return f"{max(0, limit.left)} vCPUs under {limit.name}"


def _used(config: Config, instances: Iterable[Instance]) -> dict[str, tuple[int, int, int, int]]:
    """VMs, cores, MB and GB each cloud's live csctl instances hold."""
    used: dict[str, list[int]] = {}
    for inst in instances:
        if inst.state is VMState.DELETED:
            continue
        vm_type = config.vm_types.get(inst.vm_type)
        totals = used.setdefault(inst.cloud, [0, 0, 0, 0])
        totals[0] += 1
        if vm_type is not None:
            totals[1] += vm_type.cpus
            totals[2] += vm_type.memory
            totals[3] += vm_type.disk
    return {cloud: (t[0], t[1], t[2], t[3]) for cloud, t in used.items()}


def _room(cloud: CloudConfig, used: tuple[int, int, int, int], quota: Quota | None) -> Room:
    def left(limit: int | None, taken: int) -> int | None:
        return None if limit is None else max(0, limit - taken)

    room = Room(
        left(cloud.max_vms, used[0]),
        left(cloud.max_cores, used[1]),
        left(cloud.max_memory, used[2]),
        left(cloud.max_storage, used[3]),
    )
    if quota is not None and quota.error is not None:
        room.quota_error = quota.error
    elif quota is not None and quota != Quota():
        # the quota counts every server of the project, csctl's included: it is room already
        room.quota = quota
    return room


def rooms(
    config: Config,
    instances: Sequence[Instance],
    quotas: Mapping[str, Quota],
    unlisted: Iterable[str] | Mapping[str, str],
) -> dict[str, Room]:
    """Each configured cloud's room; a cloud in ``unlisted`` (a mapping: with its list
    call's error) takes nothing, its usage being unknown."""
    used = _used(config, instances)
    by_cloud = {
        name: _room(c, used.get(name, (0, 0, 0, 0)), quotas.get(name)) for name, c in config.clouds.items()
    }
    errors = unlisted if isinstance(unlisted, Mapping) else dict.fromkeys(unlisted, "no answer")
    for name, error in errors.items():
        by_cloud.setdefault(name, Room(None, None, None, None)).unlisted = error
    return by_cloud
