"""Refreshing queued jobs' proxies against the configured pool (``delegate-proxy --refresh-jobs``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from csctl.engine.services import Services
from csctl.errors import PoolUnreachable
from csctl.proxy.jobs import RefreshReport
from csctl.proxy.refresh import RefreshSettings, refresh_jobs
from csctl.proxy.schedd import pool_schedds

if TYPE_CHECKING:
    from csctl.pool.htcondor import HTCondorPool


def refresh_proxies(services: Services, settings: RefreshSettings) -> RefreshReport:
    """Find ``settings.owner``'s idle and running jobs whose proxy ends within the threshold
    and (unless a dry run) give them one new proxy, schedd by schedd.

    Raises PoolUnreachable when no schedd can be asked; a CredentialError from the issuer
    comes before any job is touched. A job's failure is in the report, not raised.
    """
    return refresh_jobs(
        pool_schedds(_bindings_pool(services)),
        owner=settings.owner,
        now=services.now(),
        threshold=settings.threshold,
        make=settings.issuer.maker(settings.bits),
        out=settings.out,
        dry_run=settings.dry_run,
    )


def _bindings_pool(services: Services) -> HTCondorPool:
    """The pool adapter, which must be the htcondor bindings' one: refreshing a job's proxy
    is a schedd call the Pool protocol does not cover."""
    from csctl.pool.htcondor import HTCondorPool

    pool = services.pool
    if not isinstance(pool, HTCondorPool):
        raise PoolUnreachable(f"{type(pool).__name__} cannot refresh job proxies: it has no schedds")
    return pool
