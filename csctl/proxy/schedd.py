"""The schedd as refreshing proxies needs it: the ProxySchedd protocol and its htcondor adapter.

The bindings offer one call per job (``Schedd.refreshGSIProxy``). The schedd replaces
the job's spooled proxy and, for a running job, passes it on to the starter on the VM.

The schedd only refreshes a proxy it holds in its SPOOL (jobs submitted with spooling,
as remote submitters do): for a job that reads its proxy from a shared file system, the
schedd refuses ("does not contain a gsi credential in SPOOL" in its log).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from csctl.errors import CsctlError, PoolUnreachable
from csctl.proxy.jobs import IDLE, PROJECTION, RUNNING, STATUS_NAMES, check_owner

if TYPE_CHECKING:
    from csctl.pool.htcondor import HTCondorPool

log = logging.getLogger(__name__)

DELEGATION_HINT = (
    "if the SchedLog says 'X509Credential::Request() failed', the schedd cannot receive a "
    "delegated proxy (HTCondor built with OpenSSL >= 3.4 before the HTCONDOR-2904 fix): "
    'set DELEGATE_JOB_GSI_CREDENTIALS = "false" in pool.condor_params'
)


class JobGone(CsctlError):
    """The job is no longer in the queue (it finished or was removed)."""


class ProxySchedd(Protocol):
    """One schedd, as far as refreshing proxies needs it."""

    name: str

    def proxy_jobs(self, owner: str) -> list[Mapping[str, Any]]:
        """Ads (at least PROJECTION) of ``owner``'s idle and running jobs with an x509userproxy.

        Raises PoolUnreachable when the schedd cannot be queried.
        """
        ...

    def refresh_proxy(self, cluster: int, proc: int, proxy_file: Path) -> None:
        """Make ``proxy_file`` the job's proxy; the schedd re-reads its expiry.

        Raises JobGone when the job has left the queue, CsctlError for any other refusal.
        """
        ...


class _BindingsSchedd:
    """ProxySchedd over one ``htcondor2.Schedd``; htcondor errors become csctl errors."""

    def __init__(self, htcondor: Any, ad: Any) -> None:
        self.htcondor = htcondor
        self.name = str(ad.get("Name", "?"))
        self.schedd = htcondor.Schedd(ad)

    def proxy_jobs(self, owner: str) -> list[Mapping[str, Any]]:
        constraint = (
            f'Owner == "{check_owner(owner)}" && x509userproxy =!= undefined'
            f" && (JobStatus == {IDLE} || JobStatus == {RUNNING})"
        )
        try:
            return list(self.schedd.query(constraint, PROJECTION))
        except self.htcondor.HTCondorException as exc:
            log.debug("schedd %s failed", self.name, exc_info=True)
            raise PoolUnreachable(f"schedd {self.name}: {exc}") from None

    def refresh_proxy(self, cluster: int, proc: int, proxy_file: Path) -> None:
        try:
            # lifetime 0: the schedd keeps the proxy's own end, never a shorter one
            self.schedd.refreshGSIProxy(cluster, proc, str(proxy_file), 0)
        except self.htcondor.HTCondorException as exc:
            log.debug("refresh of %s.%s failed", cluster, proc, exc_info=True)
            status = self._status(cluster, proc)
            if status is None:
                raise JobGone(f"job {cluster}.{proc} left the queue") from None
            if status not in STATUS_NAMES:
                raise JobGone(
                    f"job {cluster}.{proc} is no longer idle or running (JobStatus {status})"
                ) from None
            message = f"schedd {self.name} refused: {exc}".rstrip(": ")
            if "delegateGSIcredential" in str(exc):
                message += f" ({DELEGATION_HINT})"
            raise CsctlError(message) from None

    def _status(self, cluster: int, proc: int) -> int | None:
        try:
            ads = self.schedd.query(f"ClusterId == {cluster} && ProcId == {proc}", ["JobStatus"])
        except self.htcondor.HTCondorException:
            return IDLE  # cannot tell: report the refusal itself
        return int(ads[0]["JobStatus"]) if ads else None


def pool_schedds(pool: HTCondorPool) -> list[ProxySchedd]:
    """The pool's schedds (``pool.schedds`` in the configuration, else all the collector knows)."""
    ads = pool.schedd_ads()  # the same lookup idle_jobs uses
    if not ads:
        raise PoolUnreachable(f"collector {pool.config.collector} knows no schedd")
    return [_BindingsSchedd(pool.htcondor, ad) for ad in ads]
