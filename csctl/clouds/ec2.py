"""EC2 driver (boto3): AWS and EC2-compatible clouds through ``endpoint_url``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    """Keys of a ``driver = "ec2"`` cloud section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str = Field(min_length=1)
    profile: str | None = Field(None, description="AWS profile; default credential chain if unset")
    endpoint_url: str | None = None
    subnet_id: str | None = None
    security_group_ids: list[str] = Field(default_factory=list)
    key_name: str | None = None
    private_network: bool = Field(False, description="VMs have no public IP: join via CCB")
