"""``csctl accounting apel``: APEL cloud records from the ledger, written into an outgoing
directory queue for APEL's own ``ssmsend`` to send (csctl never sends anything).

The queue is the ``dirq`` package's QueueSimple layout, which ssmsend reads with
``path_type: dirq``: one file per message, in a directory named by the minute
(``%08x`` of the epoch, rounded down to 60 s), named ``%08x%05x%01x`` (seconds,
microseconds, a hex digit of the pid). Each file is written as ``NAME.tmp``, synced,
then linked to its name, so ssmsend never reads half a message. Files are 0600 and
directories 0700: the records name the site's VMs.
"""

from __future__ import annotations

import errno
import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from csctl.engine.accounting.ledger import Ledger, ledger_for_command
from csctl.engine.services import Services
from csctl.errors import ConfigError, CsctlError
from csctl.plan.accounting.apel import Record, Site, messages, records
from csctl.plan.accounting.usage import month_of

EXPORTED = "apel_exported"  # meta key: when records were last written out
LATE_JOBS = 7 * 86400  # a VM gone this long before the last export may still gain late jobs
GRANULARITY = 60  # seconds per queue directory, as QueueSimple's default


@dataclass
class ApelResult:
    """What an export made: its messages (written unless ``dry_run``) and their files."""

    records: int
    messages: list[str]
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False


def export_apel(services: Services, outgoing: Path, since: datetime | None, dry_run: bool) -> ApelResult:
    """Write the APEL records that changed since the last export (every record from
    ``since``'s month on when given) into ``outgoing``; with ``dry_run``, only make them."""
    config, now = services.config, services.now()
    if config.accounting.site_name is None:
        raise ConfigError([f"{services.source}: accounting.site_name: required to write APEL records"])
    site = Site(
        config.accounting.site_name,
        config.pool.name,
        config.accounting.benchmark_type,
        config.accounting.fqan,
    )
    ledger, warnings = ledger_for_command(config.state_dir, now)
    with ledger:
        made = _records(ledger, site, int(now.timestamp()), since)
        texts = [r.text(int(now.timestamp())) for r in made]
        result = ApelResult(len(made), messages(texts), warnings=warnings, dry_run=dry_run)
        if dry_run or not made:
            return result
        result.files = [add_message(outgoing, m.encode()) for m in result.messages]
        with ledger.transaction():  # only records on disk count as written out
            ledger.publish((r.csctl_id, r.month, r.digest) for r in made)
            ledger.set_meta(EXPORTED, str(int(now.timestamp())))
    return result


def _records(ledger: Ledger, site: Site, now: int, since: datetime | None) -> list[Record]:
    if since is not None:
        start = int(since.timestamp())
        vms = ledger.vms(ended_since=start)
        return records(vms, ledger.cpu_by_month(vm.csctl_id for vm in vms), site, now, month_of(start))
    last = ledger.meta(EXPORTED)
    if last is None:
        vms, cpu = ledger.vms(), ledger.cpu_by_month()
    else:
        vms = ledger.vms(int(last) - LATE_JOBS, unpublished=True)
        cpu = ledger.cpu_by_month(vm.csctl_id for vm in vms)
    sent = ledger.published()
    made = records(vms, cpu, site, now)
    return [r for r in made if sent.get((r.csctl_id, r.month)) != r.digest]


def add_message(outgoing: Path, data: bytes) -> str:
    """Add one message to the QueueSimple queue at ``outgoing``; return its element name
    (``DIRECTORY/NAME``)."""
    _directory(outgoing, own=False)
    now = time.time()
    directory = f"{int(now) - int(now) % GRANULARITY:08x}"
    _directory(outgoing / directory)
    while True:
        seconds, micro = divmod(time.time_ns() // 1000, 1_000_000)
        name = f"{seconds:08x}{micro:05x}{os.getpid() % 16:01x}"
        tmp = outgoing / directory / f"{name}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            continue
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.link(tmp, outgoing / directory / name)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno == errno.EEXIST:
                continue
            raise CsctlError(f"{outgoing}: cannot write a message ({exc.strerror or exc})") from None
        tmp.unlink()
        return f"{directory}/{name}"


def _directory(path: Path, own: bool = True) -> None:
    """Create a queue directory 0700, or check that the one there is a directory (for one
    of the queue's own, a real one: a symbolic link there is not csctl's)."""
    try:
        path.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        if (own and path.is_symlink()) or not path.is_dir():
            raise CsctlError(f"{path}: not a directory; nothing was written") from None
    except OSError as exc:
        raise CsctlError(f"{path}: cannot create the outgoing queue ({exc.strerror or exc})") from None
