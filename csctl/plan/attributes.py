"""Names of the attributes a csctl VM's startd advertises (STARTD_ATTRS).

The contextualization writes them, the synthetic machine ads of demand use them,
and reconciliation joins startd ads to cloud instances on ``CsctlId``.
"""

CSCTL_ID = "CsctlId"
CSCTL_POOL = "CsctlPool"
CSCTL_TYPE = "CsctlType"
CSCTL_CLOUD = "CsctlCloud"
CSCTL_BATCH = "CsctlBatch"
# Cloud Scheduler's own name for the VM type, which existing job files test:
# Requirements = VMType =?= "pandacernvm"
VM_TYPE = "VMType"
CLOUD_NAME = "CloudName"
# minutes an idle VM stays for more jobs of its type: the VMKeepAlive of the jobs it was
# booted for, so retire honours it after those jobs have left the queue
CSCTL_KEEP_ALIVE = "CsctlKeepAlive"
# on a VM under `csctl image-test` and on its probe job: neither is ordinary supply or demand
CSCTL_IMAGE_TEST = "CsctlImageTest"
