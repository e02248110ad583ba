"""Workload traces for ``csctl simulate``: the Standard Workload Format of the Parallel
Workloads Archive, and ``condor_history -json`` output.

Each job becomes its submit time, its run time and the attributes of the job ad csctl
would see in the queue (the JSON ``condor_q -json`` prints), so the simulator builds its
job groups exactly as ``csctl demand --from-file`` does.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from csctl.errors import InputError
from csctl.plan.jobs import NEEDS_ATTRS
from csctl.plan.matching import own_references
from csctl.plan.queue import json_expression

FORMATS = ("swf", "history")
SWF_FIELDS = 18
MAX_TRACE_BYTES = 1 << 30  # decompressed; a year of a large site's history is far less
# what a history job keeps: who ran it, what it asked of a VM, and its Requirements
HISTORY_ATTRS = ("Owner", "AcctGroup", "Requirements", *NEEDS_ATTRS)
# condor_history: a removed job's run says nothing of what the work needed
REMOVED = 3

Fields = tuple[tuple[str, Any], ...]  # a job ad's attributes, sorted: one shape per value


@dataclass(frozen=True)
class TraceJob:
    """One job of a trace: when it was submitted, how long it runs, and its ad."""

    submit: int  # seconds, in the trace's own time
    run: int  # seconds
    fields: Fields

    @property
    def owner(self) -> str:
        value = dict(self.fields).get("Owner")
        return value if isinstance(value, str) else "?"


@dataclass
class Trace:
    """The jobs of a trace in submit order, and the lines or jobs left out, and why."""

    source: str
    format: str
    jobs: list[TraceJob]
    skipped: dict[str, int] = field(default_factory=dict)


def _skip(skipped: dict[str, int], why: str) -> None:
    skipped[why] = skipped.get(why, 0) + 1


def _text(path: Path) -> str:
    """The file's text, gunzipped when its name ends in .gz; InputError if unreadable."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as stream:
                raw = stream.read(MAX_TRACE_BYTES + 1)
        else:
            with path.open("rb") as stream:
                raw = stream.read(MAX_TRACE_BYTES + 1)
        if len(raw) > MAX_TRACE_BYTES:
            raise InputError(f"{path}: larger than {MAX_TRACE_BYTES >> 20} MiB")
        return raw.decode("utf-8")
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot read trace: {getattr(exc, 'strerror', None) or exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: cannot read trace: not UTF-8 text (byte {exc.start})") from None


def _fields(attrs: dict[str, Any]) -> Fields:
    return tuple(sorted(attrs.items()))


# -- Standard Workload Format -------------------------------------------------------------


def parse_swf(lines: Iterable[str], source: str = "trace") -> Trace:
    """Jobs of a Standard Workload Format (v2.2) log: 18 numbers per line, ``;`` comments,
    -1 for unknown. RequestCpus is the requested processors (else the allocated ones),
    RequestMemory the requested memory (KB per processor) in MB for the whole job, where
    known; Owner is ``u<user id>``. A job with no known run time or processors is skipped
    and counted. InputError names a line that is not 18 numbers."""
    jobs: list[TraceJob] = []
    skipped: dict[str, int] = {}
    for number, line in enumerate(lines, 1):
        text = line.split(";", 1)[0].strip()
        if not text:
            continue
        parts = text.split()
        if len(parts) != SWF_FIELDS:
            raise InputError(f"{source}:{number}: expected {SWF_FIELDS} fields, got {len(parts)}")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise InputError(f"{source}:{number}: expected numbers, got {text[:80]!r}") from None
        if not all(math.isfinite(v) for v in values):
            raise InputError(f"{source}:{number}: expected finite numbers")
        job = _swf_job(values, skipped)
        if job is not None:
            jobs.append(job)
    jobs.sort(key=lambda j: j.submit)
    return Trace(source, "swf", jobs, skipped)


def _swf_job(v: list[float], skipped: dict[str, int]) -> TraceJob | None:
    submit, run, allocated, requested, memory_kb, user = v[1], v[3], v[4], v[7], v[9], v[11]
    cpus = requested if requested > 0 else allocated
    if submit < 0:
        _skip(skipped, "submit time unknown")
        return None
    if run < 0:
        _skip(skipped, "run time unknown")
        return None
    if cpus <= 0:
        _skip(skipped, "processors unknown")
        return None
    attrs: dict[str, Any] = {"RequestCpus": int(cpus), "Owner": f"u{int(user)}" if user >= 0 else "unknown"}
    if memory_kb > 0:
        attrs["RequestMemory"] = math.ceil(memory_kb * cpus / 1024)
    return TraceJob(int(submit), int(run), _fields(attrs))


# -- condor_history -json ------------------------------------------------------------------


def _history_ads(text: str, source: str) -> Iterator[Any]:
    """The ads of ``condor_history -json`` (one array) or of one ad per line (-jsonl)."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, list):
        yield from data
        return
    if isinstance(data, dict):
        yield data
        return
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield json.loads(line)
            except ValueError as exc:
                raise InputError(f"{source}:{number}: not JSON: {exc}") from None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def parse_history(text: str, source: str = "trace") -> Trace:
    """Jobs of ``condor_history -json`` output: QDate, RemoteWallClockTime, RequestCpus,
    RequestMemory (else Memory), RequestDisk (else Disk), Owner, AcctGroup, Requirements and
    the VM attributes (VMType, TargetClouds, ...) where present, and the job's own
    attributes its Requirements refers to. An expression Request*
    falls back to the provisioned value; removed jobs and ads without QDate are skipped."""
    jobs: list[TraceJob] = []
    skipped: dict[str, int] = {}
    for ad in _history_ads(text, source):
        if not isinstance(ad, dict):
            _skip(skipped, "not a job ad")
            continue
        submit = _number(ad.get("QDate"))
        if submit is None:
            _skip(skipped, "no QDate")
            continue
        if ad.get("JobStatus") == REMOVED:
            _skip(skipped, "removed")
            continue
        run = _number(ad.get("RemoteWallClockTime")) or 0.0
        attrs = {k: v for k, v in ad.items() if k in HISTORY_ATTRS and v is not None}
        # what Requirements reads from the job's own ad (MY.FileSystemDomain, say) goes along,
        # or the expression would be undefined where it matched the pool's machines
        requirements = json_expression(ad.get("Requirements"))
        if requirements is not None:
            wanted = own_references(requirements)
            own = {k: v for k, v in ad.items() if k.lower() in wanted and v is not None}
            attrs = {**own, **attrs}
        for request, provisioned in (("RequestMemory", "Memory"), ("RequestDisk", "Disk")):
            if _number(attrs.get(request)) is None and _number(ad.get(provisioned)) is not None:
                attrs[request] = ad[provisioned]
        shape = _fields(attrs)
        try:
            hash(shape)
        except TypeError:  # an array or object value cannot be a shape: the job is left out
            _skip(skipped, "attribute values that are arrays or objects")
            continue
        jobs.append(TraceJob(int(submit), max(0, int(run)), shape))
    jobs.sort(key=lambda j: j.submit)
    return Trace(source, "history", jobs, skipped)


def read_trace(path: Path, fmt: str | None = None) -> Trace:
    """The trace in ``path`` (gzipped when it ends in .gz), in ``fmt`` or, when None,
    guessed from its first character: ``[`` or ``{`` is history JSON, anything else SWF."""
    text = _text(path)
    if fmt is None:
        fmt = "history" if text.lstrip()[:1] in ("[", "{") else "swf"
    if fmt == "swf":
        return parse_swf(text.splitlines(), str(path))
    if fmt == "history":
        return parse_history(text, str(path))
    raise InputError(f"unknown trace format {fmt!r} (known: {', '.join(FORMATS)})")
