"""OpenStack driver: openstacksdk's ``conn.compute`` proxy, credentials from clouds.yaml.

One boot is one ``POST /servers`` with min_count=1 and max_count=count. Nova starts as
many servers as the quota allows and names them ``<batch>-1`` .. ``<batch>-N`` (a lone
server keeps the plain batch name); that suffix is the launch index + 1, and the launch
index is what each VM reads from its metadata service (``launch_index`` in
meta_data.json). The API shows ``OS-EXT-SRV-ATTR:launch_index`` to admins only, so the
csctl id is derived from the ``csctl-batch`` metadata and the server name.

openstacksdk is imported on first use only, and every openstacksdk, keystoneauth and
requests exception is translated into a ``csctl.errors.CloudError`` subclass in
``errors``. ``settings`` holds the configuration keys, ``servers`` turns Nova servers
into Instances, ``driver`` makes the API calls.
"""

from csctl.clouds.openstack.driver import Driver
from csctl.clouds.openstack.settings import (
    DEFAULT_API_TIMEOUT,
    NOVA_USER_DATA_MAX,
    TAG_IMAGE,
    USER_DATA_LIMIT,
    Settings,
)

__all__ = ["DEFAULT_API_TIMEOUT", "NOVA_USER_DATA_MAX", "TAG_IMAGE", "USER_DATA_LIMIT", "Driver", "Settings"]
