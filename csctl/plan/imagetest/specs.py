"""What to test and how the test VM is set up: the specs the command line asks for, the
configuration the VM is rendered with, and when its slots count as drained."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from csctl.config import Config, VMTypeConfig
from csctl.errors import InputError
from csctl.model import StartdSlot
from csctl.plan.imagetest.probe import PROBE_ATTR
from csctl.plan.imagetest.report import ImageTestSpec

IMAGE_TYPE = "image-test"  # the VM type name of an --image/--flavor test


def image_test_specs(
    config: Config, cloud: str, vm_types: Sequence[str], image: str | None, flavor: str | None
) -> list[ImageTestSpec]:
    """The tests the command line asks for; InputError (one line) when it makes no sense."""
    if cloud not in config.clouds:
        known = ", ".join(sorted(config.clouds)) or "none configured"
        raise InputError(f'unknown cloud "{cloud}" (known: {known})')
    if vm_types and (image or flavor):
        raise InputError("give either --type or --image with --flavor, not both")
    if image or flavor:
        if not image or not flavor:
            raise InputError("--image and --flavor go together: give both")
        return [ImageTestSpec(image, cloud, IMAGE_TYPE, image, flavor, promised=False)]
    if not vm_types:
        raise InputError("give --type TYPE (repeatable) or --image IMAGE --flavor FLAVOR")
    specs = []
    for name in dict.fromkeys(vm_types):
        vm_type = config.vm_types.get(name)
        if vm_type is None:
            known = ", ".join(sorted(config.vm_types)) or "none configured"
            raise InputError(f'unknown VM type "{name}" (known: {known})')
        if cloud not in vm_type.images:
            raise InputError(f'VM type "{name}" has no image on cloud "{cloud}" (vm_types.{name}.images)')
        specs.append(ImageTestSpec(name, cloud, name, vm_type.images[cloud], vm_type.flavors.get(cloud)))
    return specs


def probe_config(config: Config, spec: ImageTestSpec, csctl_id: str) -> Config:
    """The configuration the test VM is rendered with: csctl's own, plus a START clause that
    admits only its probe job (no user job lands on an image under test), an attribute
    naming it in condor_status, and for ``--image`` a minimal VM type."""
    extra = [
        f"# csctl image-test: only the probe job may run on {csctl_id}",
        f'{PROBE_ATTR} = "{csctl_id}"',
        f"STARTD_ATTRS = $(STARTD_ATTRS) {PROBE_ATTR}",
        f'START = ($(START)) && (TARGET.{PROBE_ATTR} =?= "{csctl_id}")',
    ]
    vm_config = "\n".join([config.pool.vm_config.rstrip(), *extra]).lstrip("\n")
    update: dict[str, Any] = {"pool": config.pool.model_copy(update={"vm_config": vm_config})}
    if not spec.promised:
        # nothing is promised: advertise little, the probe reports what the VM detects
        minimal = VMTypeConfig.model_validate({"cpus": 1, "memory": 512, "disk": 1, "images": {}})
        update["vm_types"] = {**config.vm_types, spec.vm_type: minimal}
    return config.model_copy(update=update)


def drained(slots: Sequence[StartdSlot]) -> bool:
    """Whether the test VM has drained: no slot holds a claim, and its startd has left the
    pool or shows it drains."""
    if any(s.in_use for s in slots):
        return False
    return not slots or any(s.draining or s.state == "Drained" for s in slots)
