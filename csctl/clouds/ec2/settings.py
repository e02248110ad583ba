"""The configuration keys of an EC2 cloud section, and EC2's fixed limits."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

USER_DATA_LIMIT = 16 * 1024  # bytes, before base64: EC2's documented cap


class Settings(BaseModel):
    """Keys of a ``driver = "ec2"`` cloud section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region: str = Field(min_length=1)
    profile: str | None = Field(None, description="AWS profile; default credential chain if unset")
    endpoint_url: str | None = Field(None, description="API of an EC2-compatible cloud")
    subnet_id: str | None = None
    # several subnets or zones: a boot that finds no capacity in one tries the next
    subnets: list[str] = Field(default_factory=list, description="subnets to boot in, in order")
    availability_zones: list[str] = Field(default_factory=list, description="zones to boot in, in order")
    root_volume: bool = Field(
        True, description="size the root volume to the VM type's disk (false: the image's own size)"
    )
    security_group_ids: list[str] = Field(default_factory=list)
    key_name: str | None = None
    private_network: bool = Field(False, description="VMs have no public IP: join via CCB")
    connect_timeout: float = Field(10.0, gt=0, description="seconds to wait for a connection")
    read_timeout: float = Field(60.0, gt=0, description="seconds to wait for an answer")
    max_attempts: int = Field(3, ge=1, description="tries per API call, retries included")
    # the VMs' user-data holds their IDTOKEN and batch key: IMDSv2 only, and a hop limit
    # of 1 so that no container on the VM reaches the metadata service through it
    metadata_tokens: Literal["required", "optional"] = Field(
        "required", description='IMDSv2 session tokens: "required" (default) or "optional" (IMDSv1 allowed)'
    )
    metadata_hop_limit: int = Field(1, ge=1, le=64, description="IMDS PUT response hop limit")
    metadata_options: bool = Field(
        True, description="send MetadataOptions at all (false for EC2-compatible clouds that refuse it)"
    )
    # the vCPU limits live in AWS Service Quotas, which EC2-compatible clouds lack
    vcpu_quotas: bool | None = Field(
        None,
        description="read the account's vCPU limits from AWS Service Quotas "
        "(default: yes on AWS, no where endpoint_url is set without service_quotas_endpoint_url)",
    )
    service_quotas_endpoint_url: str | None = Field(
        None, description="Service Quotas API (default: AWS's, in the cloud's region)"
    )

    @field_validator("endpoint_url", "service_quotas_endpoint_url")
    @classmethod
    def _is_http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https?://\S+", value):
            raise PydanticCustomError("url", "expected an http:// or https:// URL")
        return value

    @field_validator("subnets", "availability_zones")
    @classmethod
    def _one_placement(cls, value: list[str], info: ValidationInfo) -> list[str]:
        # a subnet lies in one zone: naming subnets and zones both would contradict
        earlier = [k for k in ("subnet_id", "subnets") if k != info.field_name and info.data.get(k)]
        if value and earlier:
            raise PydanticCustomError(
                "one_placement",
                "{earlier} is set too: give only one of subnet_id, subnets and availability_zones",
                {"earlier": earlier[0]},
            )
        return value

    @model_validator(mode="after")
    def _quotas_reachable(self) -> Settings:
        # an EC2-compatible cloud's credentials mean nothing to AWS's own Service Quotas
        if self.vcpu_quotas and self.endpoint_url and not self.service_quotas_endpoint_url:
            raise PydanticCustomError(
                "vcpu_quotas",
                "vcpu_quotas = true with endpoint_url set needs service_quotas_endpoint_url "
                "(the cloud's Service Quotas API), or set vcpu_quotas = false",
            )
        return self

    @property
    def reads_vcpu_quotas(self) -> bool:
        """Whether quota() reads the vCPU limits: as set; unset, on AWS itself or where a
        Service Quotas endpoint is named (an EC2-compatible cloud has none to ask)."""
        if self.vcpu_quotas is not None:
            return self.vcpu_quotas
        return self.endpoint_url is None or self.service_quotas_endpoint_url is not None

    @property
    def zones(self) -> tuple[str, ...]:
        """The subnets or zones a boot may name, in the order to try them."""
        return tuple(dict.fromkeys(self.subnets or self.availability_zones))
