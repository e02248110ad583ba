"""EC2's vCPU limits: what AWS Service Quotas allows per group of instance families and
market, minus the vCPUs the account's pending and running instances hold.

The limits live in the Service Quotas API, not in EC2's: one paginated
ListServiceQuotas (service code ``ec2``) per cycle reads them all. Only the groups
below are known; an instance type of another family (dl1, trn1, mac2, hpc7g...) counts
against no limit here, and the cloud's VcpuLimitExceeded remains its bound. Spot
requests still open (not yet instances) are not counted: csctl's spot boots are
one-time requests, fulfilled or refused at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from csctl.clouds.ec2.errors import translate, translated
from csctl.clouds.ec2.settings import Settings
from csctl.model import VcpuLimit, family_letters

_STANDARD = frozenset({"a", "c", "d", "h", "i", "im", "is", "m", "r", "t", "z"})
_G_VT = frozenset({"g", "vt"})


@dataclass(frozen=True)
class _Known:
    code: str
    name: str
    families: frozenset[str]
    spot: bool


# quota code -> the instance families and market it counts (AWS's names, shortened)
KNOWN = (
    _Known(
        "L-1216C47A", "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances", _STANDARD, False
    ),
    _Known("L-34B43A08", "All Standard (A, C, D, H, I, M, R, T, Z) Spot Instance Requests", _STANDARD, True),
    _Known("L-DB2E81BA", "Running On-Demand G and VT instances", _G_VT, False),
    _Known("L-3819A6DF", "All G and VT Spot Instance Requests", _G_VT, True),
    _Known("L-417A185B", "Running On-Demand P instances", frozenset({"p"}), False),
    _Known("L-7212CCBC", "All P Spot Instance Requests", frozenset({"p"}), True),
    _Known("L-7295265B", "Running On-Demand X instances", frozenset({"x"}), False),
    _Known("L-74FC7D96", "Running On-Demand F instances", frozenset({"f"}), False),
    _Known("L-1945791B", "Running On-Demand Inf instances", frozenset({"inf"}), False),
)


def read_limits(client: Any) -> dict[str, float]:
    """The account's applied value of each known quota (code -> vCPUs) that Service Quotas
    lists; a quota it does not list is left out (no limit known for those families)."""
    known = {k.code for k in KNOWN}
    values: dict[str, float] = {}
    for page in client.get_paginator("list_service_quotas").paginate(ServiceCode="ec2"):
        for quota in page.get("Quotas", []):
            code, value = quota.get("QuotaCode"), quota.get("Value")
            if code in known and isinstance(value, int | float) and value >= 0:
                values[str(code)] = float(value)
    return values


def instance_vcpus(raw: Mapping[str, Any], type_vcpus: Mapping[str, int]) -> int:
    """The vCPUs one DescribeInstances entry holds: its CpuOptions (cores x threads), else
    its instance type's default (``type_vcpus``, from DescribeInstanceTypes), else 0."""
    options = raw.get("CpuOptions") or {}
    cores, threads = options.get("CoreCount"), options.get("ThreadsPerCore")
    if isinstance(cores, int) and isinstance(threads, int):
        return cores * threads
    return type_vcpus.get(str(raw.get("InstanceType", "")), 0)


def types_without_cpu_options(instances: Iterable[Mapping[str, Any]]) -> list[str]:
    """Instance types whose vCPUs DescribeInstances did not give (EC2-compatible clouds)."""
    return sorted({str(r.get("InstanceType")) for r in instances if not r.get("CpuOptions")} - {"None"})


def left(
    values: Mapping[str, float], instances: Iterable[Mapping[str, Any]], type_vcpus: Mapping[str, int]
) -> tuple[VcpuLimit, ...]:
    """Each known limit Service Quotas gave, with the vCPUs ``instances`` hold taken off."""
    limits = [k for k in KNOWN if k.code in values]
    used = dict.fromkeys((k.code for k in limits), 0)
    for raw in instances:
        spot = raw.get("InstanceLifecycle") == "spot"
        letters = family_letters(str(raw.get("InstanceType", "")))
        for k in limits:
            if k.spot == spot and letters in k.families:
                used[k.code] += instance_vcpus(raw, type_vcpus)
                break
    return tuple(
        VcpuLimit(f"{k.code} ({k.name})", k.families, k.spot, max(0, int(values[k.code]) - used[k.code]))
        for k in limits
    )


FIX = "grant servicequotas:ListServiceQuotas, or set vcpu_quotas = false for this cloud"
TYPES_PER_CALL = 100  # DescribeInstanceTypes takes at most 100 names


def vcpu_limits(
    cloud: str, settings: Settings, ec2: Any, quotas: Any, active: Sequence[Mapping[str, Any]]
) -> tuple[VcpuLimit, ...]:
    """The known vCPU limits of the account, less what ``active`` (its pending and running
    instances) holds. A failure to read Service Quotas raises a CloudError whose message
    names the fix; the snapshot then plans the cloud within its configured limits."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        values = read_limits(quotas)
    except (ClientError, BotoCoreError) as exc:
        error = translate(exc, cloud, settings, "Service Quotas ListServiceQuotas")
        reason = error.message.removeprefix(f"cloud {cloud}: ")
        raise type(error)(cloud, f"{reason} ({FIX})", error.hint) from exc
    missing = types_without_cpu_options(active) if values else []
    type_vcpus: dict[str, int] = {}
    for start in range(0, len(missing), TYPES_PER_CALL):
        with translated(cloud, settings, "DescribeInstanceTypes"):
            response = ec2.describe_instance_types(InstanceTypes=missing[start : start + TYPES_PER_CALL])
        for info in response.get("InstanceTypes", []):
            count = (info.get("VCpuInfo") or {}).get("DefaultVCpus")
            if isinstance(count, int):
                type_vcpus[str(info.get("InstanceType"))] = count
    return left(values, active, type_vcpus)
