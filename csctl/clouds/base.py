"""The cloud driver interface, for drivers written against ``csctl.clouds.base``.

The types live in ``csctl.model`` (shared by the planners and the engine); this module
re-exports them so third-party drivers of the ``csctl.clouds.v1`` entry-point group keep
importing them from here.
"""

from csctl.model import (
    TAG_BATCH,
    TAG_BOOTED,
    TAG_CLOUD,
    TAG_POOL,
    TAG_TYPE,
    BootRequest,
    Cloud,
    Instance,
    Quota,
    VMState,
    vm_id,
)

__all__ = [
    "TAG_BATCH",
    "TAG_BOOTED",
    "TAG_CLOUD",
    "TAG_POOL",
    "TAG_TYPE",
    "BootRequest",
    "Cloud",
    "Instance",
    "Quota",
    "VMState",
    "vm_id",
]
