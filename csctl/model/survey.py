"""An optional addition to the ``Cloud`` protocol (csctl/model/__init__.py): a cloud that
can tell its instances and its quota together, from fewer API calls than the two asked apart.

EC2 counts the account's instances for its quota with the same DescribeInstances that lists
csctl's, so it answers both from one. A cloud without ``survey`` (the local and OpenStack
drivers, plugins) is asked ``list_instances`` and ``quota`` at once, as before.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from csctl.model import Instance, Quota


@runtime_checkable
class Surveyor(Protocol):
    """A cloud whose snapshot question, "your csctl instances and your quota", costs fewer
    API calls asked as one (``survey``) than as ``list_instances`` and ``quota``."""

    def survey(self, pool: str) -> tuple[list[Instance], Quota]:
        """``list_instances(pool)`` and ``quota()`` from as few API calls as the cloud can.

        Raises a CloudError subclass when the instances cannot be listed (the snapshot then
        holds the quota unknown too). A quota that cannot be read while the listing stands
        comes back as ``Quota(error=...)`` beside the instances, as the snapshot records a
        failed ``quota()``.
        """
        ...
