"""APEL cloud usage records (``APEL-cloud-message: v0.4``) from the ledger's plain data.

One record per VM and calendar month (UTC): a VM that lives across a month boundary
gives one record per month it touched, each with that month's wall and CPU time, since
the APEL server keys records by VMUUID and month and keeps the last one of each. A VM
that still runs is ``started`` and its current month's record grows with each export
(cumulative totals, as APEL expects); a VM that is gone is ``completed``.

LocalUserId is the pool and LocalGroupId the VM type (docs/accounting.md says why):
a VM runs the jobs of many owners, and the per-owner view is ``csctl accounting report``.
Every value is still cleaned (``clean``): an image name comes from a cloud's tags.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

from csctl.plan.accounting.usage import VMUsage, month_slices

HEADER = "APEL-cloud-message: v0.4"
SEPARATOR = "%%"
MAX_RECORDS = 500  # per message
MAX_BYTES = 1_000_000  # a message stays under 1 MB (APEL's broker limit)
CLOUD_TYPE = "csctl"
FIELDS = (
    "RecordCreateTime", "VMUUID", "SiteName", "CloudComputeService", "MachineName", "LocalUserId",
    "LocalGroupId", "GlobalUserName", "FQAN", "Status", "StartTime", "EndTime", "SuspendDuration",
    "WallDuration", "CpuDuration", "CpuCount", "NetworkType", "NetworkInbound", "NetworkOutbound",
    "PublicIPCount", "Memory", "Disk", "BenchmarkType", "Benchmark", "StorageRecordId", "ImageId",
    "CloudType",
)  # fmt: skip
# RFC 4122's URL namespace: VMUUID is uuid5(NAMESPACE_URL, "csctl:<pool>/<csctl id>")
_NAMESPACE_URL = bytes.fromhex("6ba7b8119dad11d180b400c04fd430c8")
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class Site:
    """What the configuration says about every record: ``accounting.site_name`` and the rest."""

    site_name: str
    pool: str
    benchmark_type: str | None = None
    fqan: str | None = None


@dataclass(frozen=True)
class Record:
    """One VM in one month. ``fields`` are APEL's, in APEL's order, without the record's
    creation time (so that two exports of the same usage compare equal)."""

    csctl_id: str
    month: str
    fields: tuple[tuple[str, str], ...]

    def text(self, created: int) -> str:
        """The record as ``Key: Value`` lines, stamped with its creation time."""
        lines = [f"RecordCreateTime: {created}"]
        lines += [f"{key}: {value}" for key, value in self.fields]
        return "\n".join(lines)

    @cached_property
    def digest(self) -> str:
        """A short fingerprint of the usage it reports: equal fingerprints, nothing new to send."""
        return hashlib.sha256(repr(self.fields).encode()).hexdigest()[:32]


def vm_uuid(pool: str, csctl_id: str) -> str:
    """VMUUID: a version-5 UUID of the pool and the csctl id (unique across the site's
    clouds and pools, stable between exports), as ``uuid.uuid5`` computes it."""
    raw = bytearray(hashlib.sha1(_NAMESPACE_URL + f"csctl:{pool}/{csctl_id}".encode()).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50
    raw[8] = (raw[8] & 0x3F) | 0x80
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def clean(value: object, limit: int = 255) -> str:
    """A value on one line of a record: no control characters (no newline can start a line
    of its own, such as a ``%%`` separator), at most ``limit`` characters."""
    return _UNSAFE.sub("?", str(value))[:limit].strip()


def records(
    vms: Iterable[VMUsage],
    cpu: Mapping[str, Mapping[str, float]],
    site: Site,
    now: int,
    from_month: str = "",
) -> list[Record]:
    """The records of every VM for each month it touched from ``from_month`` (``YYYY-MM``;
    all months when empty) to now. ``cpu`` maps a csctl id to its jobs' CPU seconds per
    month (``usage.cpu_by_month``); CPU of a month the VM did not live in (a job's
    earlier runs elsewhere) counts in the VM's nearest month, so none is lost."""
    found = []
    for vm in vms:
        end = vm.end(now)
        slices = list(month_slices(vm.booted, end))
        seconds = _fold(cpu.get(vm.csctl_id, {}), [month for month, _, _ in slices])
        for month, lo, hi in slices:
            if month >= from_month:
                found.append(_record(vm, seconds.get(month, 0.0), site, month, lo, hi, hi == end))
    return found


def _fold(per_month: Mapping[str, float], months: Sequence[str]) -> Mapping[str, float]:
    if all(month in months for month in per_month):
        return per_month
    folded: dict[str, float] = {}
    for month, seconds in per_month.items():
        home = months[0] if month < months[0] else months[-1] if month > months[-1] else month
        folded[home] = folded.get(home, 0.0) + seconds
    return folded


def _record(vm: VMUsage, cpu: float, site: Site, month: str, lo: int, hi: int, last: bool) -> Record:
    ended = last and vm.terminated is not None
    values: dict[str, object | None] = {  # in APEL's order (FIELDS)
        "VMUUID": vm_uuid(site.pool, vm.csctl_id),
        "SiteName": site.site_name,
        "CloudComputeService": vm.cloud,
        "MachineName": vm.csctl_id,
        "LocalUserId": site.pool,
        "LocalGroupId": vm.vm_type,
        "FQAN": site.fqan,
        "Status": "completed" if ended else "started",
        "StartTime": lo,
        # a running VM's current month has no end yet; an earlier month ended at its boundary
        "EndTime": hi if ended or not last else None,
        "WallDuration": hi - lo,
        "CpuDuration": round(cpu),
        "CpuCount": vm.cores or None,
        "Memory": vm.memory or None,
        "Disk": vm.disk or None,
        "BenchmarkType": site.benchmark_type if vm.benchmark is not None else None,
        "Benchmark": vm.benchmark if site.benchmark_type else None,
        "ImageId": vm.image and clean(vm.image),  # from the cloud's tags: anyone's words
        "CloudType": CLOUD_TYPE,
    }
    # the other names went through csctl's grammar (configuration, ids: csctl/plan/identity.py)
    return Record(
        vm.csctl_id, month, tuple((k, str(v)) for k, v in values.items() if v is not None and v != "")
    )


def messages(texts: Sequence[str]) -> list[str]:
    """Records (as text) packed into messages: the header, records separated by ``%%``
    lines, at most MAX_RECORDS records and under MAX_BYTES bytes each."""
    found: list[str] = []
    batch: list[str] = []
    size = len(HEADER) + 1
    for text in texts:
        cost = len(text.encode()) + len(SEPARATOR) + 2
        if batch and (len(batch) >= MAX_RECORDS or size + cost >= MAX_BYTES):
            found.append(_message(batch))
            batch, size = [], len(HEADER) + 1
        batch.append(text)
        size += cost
    if batch:
        found.append(_message(batch))
    return found


def _message(batch: Sequence[str]) -> str:
    return HEADER + "\n" + f"\n{SEPARATOR}\n".join(batch) + "\n"
