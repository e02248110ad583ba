"""EC2 driver (boto3): AWS and EC2-compatible clouds through ``endpoint_url``.

One boot is one ``RunInstances`` call (MinCount=1, MaxCount=count) whose VMs share
one user-data payload and the batch's tags; each VM's csctl id is derived from the
``csctl-batch`` tag and its ``AmiLaunchIndex``, which the VM reads from its metadata
service too. boto3 is imported on first use only, and every botocore exception is
translated into a ``csctl.errors.CloudError`` subclass in ``errors``, at the boundary.
``settings`` holds the configuration keys, ``instances`` turns EC2's descriptions into
Instances (and picks csctl's from an account-wide listing), ``quota`` and ``vcpus`` read the
account's limits, ``driver`` makes the API calls.
"""

from csctl.clouds.ec2.driver import TERMINATE_CHUNK, Driver
from csctl.clouds.ec2.instances import LIVE_STATES
from csctl.clouds.ec2.settings import USER_DATA_LIMIT, Settings

__all__ = ["LIVE_STATES", "TERMINATE_CHUNK", "USER_DATA_LIMIT", "Driver", "Settings"]
