"""csctl's startd slots as the collector advertises them: the attributes asked for, and
each ad read into a StartdSlot (values from a VM are untrusted: wrong types read as absent)."""

from __future__ import annotations

from typing import Any

from csctl.model import StartdSlot
from csctl.plan import attributes as A

SLOT_PROJECTION = [
    "Name",
    "Machine",
    "MyAddress",
    "SlotType",
    "State",
    "Activity",
    "Cpus",
    "Memory",
    "Disk",
    "Draining",
    "NumDynamicSlots",
    "JobId",
    "EnteredCurrentState",
    "NumDynamicSlotsTime",
    "LastDrainStartTime",
    "MaxJobRetirementTime",
    A.CSCTL_IMAGE_TEST,
    A.CSCTL_KEEP_ALIVE,
    A.CSCTL_ID,
    A.CSCTL_TYPE,
    A.CSCTL_CLOUD,
    A.CSCTL_POOL,
]


def slot(ad: Any) -> StartdSlot:
    return StartdSlot(
        name=str(ad.get("Name", "")),
        machine=str(ad.get("Machine", "")),
        csctl_id=str(ad.get(A.CSCTL_ID, "")),
        vm_type=str(ad.get(A.CSCTL_TYPE, "")),
        cloud=str(ad.get(A.CSCTL_CLOUD, "")),
        slot_type=str(ad.get("SlotType", "Static")),
        state=str(ad.get("State", "")),
        activity=str(ad.get("Activity", "")),
        cpus=int(ad.get("Cpus", 0)),
        memory=int(ad.get("Memory", 0)),
        disk_kb=int(ad.get("Disk", 0)),
        draining=ad.get("Draining") is True,
        address=ad.get("MyAddress"),
        job_id=ad.get("JobId"),
        entered_state=ad.get("EnteredCurrentState"),
        dynamic_slots_changed=ad.get("NumDynamicSlotsTime"),
        drain_started=ad.get("LastDrainStartTime"),
        dynamic_slots=int(ad.get("NumDynamicSlots", 0)),
        image_test=ad.get(A.CSCTL_IMAGE_TEST),
        keep_alive_minutes=_minutes(ad.get(A.CSCTL_KEEP_ALIVE)),
        max_job_retirement_seconds=_minutes(ad.get("MaxJobRetirementTime")),
    )


def _minutes(value: Any) -> int | None:
    """A whole number of minutes from an ad, or None when absent or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return int(value)
