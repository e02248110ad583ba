"""The safety valve: when csctl's view of the pool looks incomplete, it destroys nothing.

Like cluster-autoscaler, which stops scaling down while its view of the cluster is not
healthy: a collector that does not answer, a schedd that does not answer, or far more
joined VMs without an ad at once than one VM's failure explains (a collector restart
forgets every startd ad until the startds advertise again). In such a cycle csctl
terminates nothing, drains nothing and counts no failure against an image; it may still
boot, since booting kills no job.
"""

from __future__ import annotations

from collections.abc import Sequence

from csctl.plan.reconcile import JoinReport, Status

# More than this share of the VMs that joined, and at least MIN_VANISHED of them, without
# an ad in the same cycle: the pool's view is broken, not the VMs.
VANISHED_SHARE = 0.25
MIN_VANISHED = 2


def hold_reasons(report: JoinReport, pool_errors: Sequence[str]) -> list[str]:
    """Why this cycle must take no destructive action (empty: it may act)."""
    reasons = [f"the pool did not answer in full: {error}" for error in pool_errors]
    joined = [vm for vm in report.vms if vm.slots or vm.status is Status.UNSEEN]
    vanished = [vm for vm in joined if vm.status is Status.UNSEEN]
    if len(vanished) >= MIN_VANISHED and len(vanished) > VANISHED_SHARE * len(joined):
        reasons.append(
            f"{len(vanished)} of {len(joined)} VMs that joined the pool have no startd ad now "
            "(a collector restart or a network partition?)"
        )
    return reasons
