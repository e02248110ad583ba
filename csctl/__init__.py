"""csctl: boot IaaS VMs for idle HTCondor jobs, and retire them when no job needs them."""

__version__ = "0.1.0"
