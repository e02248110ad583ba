"""csctl's id grammar, applied to what clouds and startds say about themselves.

Tags, metadata and startd attributes are written by whoever controls the instance or
the VM, so they are untrusted: an id is used in file names (saved consoles), tokens and
reports. Instances and slots whose ids or names fall outside the grammar are set aside
and reported, never acted on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from csctl.model import Instance, StartdSlot

# <batch>-<launch index>, the batch being <cloud>-<8 hex> (csctl/engine/boot.py); a site's
# own plugins may name batches differently, so only the shape and the alphabet are fixed
CSCTL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,126}-[0-9]{1,6}")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,126}")  # cloud and VM type names, as configured


def _shown(value: str) -> str:
    return repr(value[:80] + ("..." if len(value) > 80 else ""))


def instance_problem(inst: Instance) -> str | None:
    """Why a listed instance's own account of itself cannot be used, or None."""
    if not CSCTL_ID.fullmatch(inst.csctl_id) or ".." in inst.csctl_id:
        return f"csctl id {_shown(inst.csctl_id)} is not a csctl id"
    for what, value in (("cloud", inst.cloud), ("VM type", inst.vm_type)):
        if not NAME.fullmatch(value):
            return f"{what} {_shown(value)} is not a name csctl gives"
    return None


def screen(
    instances: Iterable[Instance], slots: Iterable[StartdSlot]
) -> tuple[list[Instance], list[StartdSlot], list[str]]:
    """The instances and slots whose ids and names follow csctl's grammar, and one line
    for each one set aside (naming where it came from, never trusting what it says)."""
    kept_instances, kept_slots, problems = [], [], []
    for inst in instances:
        problem = instance_problem(inst)
        if problem:
            problems.append(f"instance {_shown(inst.provider_id)} skipped: {problem}")
        else:
            kept_instances.append(inst)
    for slot in slots:
        if CSCTL_ID.fullmatch(slot.csctl_id) and ".." not in slot.csctl_id:
            kept_slots.append(slot)
        else:
            problems.append(f"startd {_shown(slot.name)} skipped: {_shown(slot.csctl_id)} is not a csctl id")
    return kept_instances, kept_slots, problems
