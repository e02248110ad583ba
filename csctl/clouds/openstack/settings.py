"""The configuration keys of an OpenStack cloud section, and Nova's fixed limits."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

TAG_IMAGE = "csctl-image"  # metadata: the image the batch was booted from, as configured

# Nova's API schema caps the base64 text of user_data at 65535 characters (maxLength in
# nova/api/openstack/compute/schemas/servers.py); base64 turns 3 bytes into 4 characters.
NOVA_USER_DATA_MAX = 65535
USER_DATA_LIMIT = NOVA_USER_DATA_MAX // 4 * 3  # 49149 bytes before base64
DEFAULT_API_TIMEOUT = 60.0  # seconds, where neither csctl nor clouds.yaml set api_timeout


class Settings(BaseModel):
    """Keys of a ``driver = "openstack"`` cloud section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cloud: str = Field(min_length=1, description="entry in clouds.yaml")
    network: str | None = None
    key_name: str | None = None
    security_groups: list[str] = Field(default_factory=list)
    availability_zone: str | None = None
    boot_from_volume: bool = Field(
        False,
        description="boot from a new volume of the VM type's disk (needs Cinder), not the flavor's disk",
    )
    private_network: bool = Field(False, description="VMs have no public IP: join via CCB")
    api_timeout: float | None = Field(
        None, gt=0, description="seconds per API request; unset: clouds.yaml's api_timeout, else 60"
    )
