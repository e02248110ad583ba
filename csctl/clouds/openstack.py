"""OpenStack driver: openstacksdk's ``conn.compute`` proxy, credentials from clouds.yaml."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    """Keys of a ``driver = "openstack"`` cloud section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cloud: str = Field(min_length=1, description="entry in clouds.yaml")
    network: str | None = None
    key_name: str | None = None
    security_groups: list[str] = Field(default_factory=list)
    availability_zone: str | None = None
    private_network: bool = Field(False, description="VMs have no public IP: join via CCB")
