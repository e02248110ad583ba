"""An EC2 cloud's quota: the account's ``max-instances`` (DescribeAccountAttributes) and,
where the cloud reads them, its vCPU limits (vcpus.py), less what the account's pending and
running instances take. Both count every instance of the account in the region, csctl's or
not, so the driver lists them all; its ``survey`` lists csctl's from the same answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from csctl.clouds.ec2.errors import translated, unimplemented
from csctl.clouds.ec2.settings import Settings


def max_instances(cloud: str, settings: Settings, client: Any) -> int | None:
    """The account's ``max-instances`` attribute: None where the cloud does not implement
    DescribeAccountAttributes or gives no number. Raises a CloudError when the call fails."""
    from botocore.exceptions import ClientError

    with translated(cloud, settings, "DescribeAccountAttributes"):
        try:
            response = client.describe_account_attributes(AttributeNames=["max-instances"])
        except ClientError as exc:
            if unimplemented(exc):
                return None
            raise
    return _attribute_int(response.get("AccountAttributes", []), "max-instances")


def needs_instances(limit: int | None, settings: Settings) -> bool:
    """Whether the quota counts the account's instances: a readable ``max-instances``
    (``limit``), or vCPU limits to read. Without either the quota is ``Quota()``."""
    return limit is not None or settings.reads_vcpu_quotas


def _attribute_int(attributes: Sequence[Mapping[str, Any]], name: str) -> int | None:
    for attribute in attributes:
        if attribute.get("AttributeName") != name:
            continue
        for value in attribute.get("AttributeValues", []):
            try:
                return int(value.get("AttributeValue", ""))
            except ValueError:
                return None
    return None
