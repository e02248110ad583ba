"""``csctl config check --clouds``: what the configuration promises, checked against the
clouds themselves: that each VM type's flavor holds the type's disk, and that each
cloud's quota can be read (on AWS: the vCPU limits, which need their own permission)."""

from __future__ import annotations

from dataclasses import dataclass, field

from csctl.engine.services import Services
from csctl.errors import CloudError


@dataclass
class CloudCheck:
    """``problems``: one line per setting a cloud contradicts, as ``key.path: why``;
    ``warnings``: the look-ups that failed (nothing is concluded from them)."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    looked_up: int = 0


def check_clouds(services: Services) -> CloudCheck:
    """Look up each VM type's flavor on each enabled cloud whose driver can say how large
    its root disk is; a flavor smaller than the type's disk is a problem (the VMs would
    boot, and the jobs demand packed onto them would never fit)."""
    config, clouds = services.config, services.clouds
    result = CloudCheck()
    for type_name, vm_type in config.vm_types.items():
        for cloud_name, flavor in vm_type.flavors.items():
            cloud_config = config.clouds.get(cloud_name)
            check = getattr(clouds.get(cloud_name), "check_flavor", None)
            if check is None or cloud_config is None or not cloud_config.enabled:
                continue  # EC2 sizes the root volume at boot; the local driver has no disk
            result.looked_up += 1
            try:
                why = check(flavor, vm_type.disk)
            except CloudError as exc:
                result.warnings.append(
                    f"vm_types.{type_name}.flavors.{cloud_name}: not checked: {exc.message}"
                )
                continue
            if why:
                result.problems.append(f"vm_types.{type_name}.flavors.{cloud_name}: {why}")
    for cloud_name, cloud in clouds.items():
        cloud_config = config.clouds.get(cloud_name)
        if cloud_config is None or not cloud_config.enabled:
            continue
        try:
            cloud.quota()  # what every cycle asks: a failure here would be a warning each time
        except CloudError as exc:
            result.warnings.append(
                f"clouds.{cloud_name}: quota not read (boots keep to the configured limits): {exc.message}"
            )
    return result
