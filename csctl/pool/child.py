"""Schedd queries in a child process, for the queries that must overlap other work.

The htcondor2 bindings (25.x) hold the GIL for the whole of a ``Schedd.query``, also while
the schedd works on its answer: every other thread of the process stops until the query
ends (measured with 100,000 idle jobs: a counting thread makes no progress, and a 50 ms
sleep ends 4 s late, while the schedd groups them). A snapshot lists the clouds while it
asks the schedds, and asks several schedds at once; so each such query runs in its own
short-lived Python process (start-up and htcondor2's import: about 0.15 s), whose GIL is
its own. The answer comes back as ClassAd text; an HTCondorException comes back as its
message and is raised again here, so callers see what an in-process query would raise.

A command that knows it will query (``csctl demand``) starts one such process ahead
(``started_ahead``), before its configuration is loaded: the process imports htcondor2 and
waits for its query on stdin, so its start-up overlaps the command's own instead of
following it. It receives nothing before the schedd is located, with the pool's address
read and checked (csctl/config_early.py); a command whose configuration then turns out
invalid kills it (``end_queries_in_flight``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from csctl.pool.settings import TIMEOUT_KNOB

# the child's exit status when the query raised HTCondorException (its message on stdout)
REFUSED = 3
# ... when, asked to locate the schedd itself, it found no single one
NOT_ONE = 4
# ... when it could not ask the collector (HTCondorException's message on stdout)
COLLECTOR_FAILED = 5

# Imports htcondor2 and classad2 only (not csctl): with -P the current directory is not on
# its path either, so nothing the parent's working directory holds can shadow them.
CHILD = f"""
import json, sys, warnings
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*condor_config.*")
    import htcondor2
import classad2
text = sys.stdin.read()
if not text:  # started ahead, and its parent ended without a query for it
    sys.exit(0)
request = json.loads(text)
if request["timeout_multiplier"] is not None:  # the parent's, set after its configuration
    htcondor2.param["{TIMEOUT_KNOB}"] = request["timeout_multiplier"]
if "locate" in request:  # sent ahead: only the collector and the schedd names are known
    try:
        collector = htcondor2.Collector(request["locate"]["collector"])
        names = request["locate"]["schedds"]
        if names:
            found = [collector.locate(htcondor2.DaemonType.Schedd, name) for name in names]
        else:
            found = list(collector.locateAll(htcondor2.DaemonType.Schedd))
    except htcondor2.HTCondorException as exc:
        sys.stdout.write(str(exc))
        sys.exit({COLLECTOR_FAILED})
    if len(found) != 1 or found[0] is None:
        sys.exit({NOT_ONE})
    request["location"] = str(found[0])
    request["opts"] = int(htcondor2.QueryOpt[request["opts"]])
    sys.stdout.write(json.dumps(request["location"]) + "\\n")
try:
    schedd = htcondor2.Schedd(classad2.ClassAd(request["location"]))
    if request["since"] is None:
        ads = schedd.query(request["constraint"], request["projection"], opts=request["opts"])
    else:
        since = classad2.ExprTree(request["since"]) if request["since"] else None
        ads = schedd.history(request["constraint"], request["projection"], since=since)
    text = "\\n".join(str(ad) for ad in ads)  # a history is read as it is iterated
except htcondor2.HTCondorException as exc:
    sys.stdout.write(str(exc))
    sys.exit({REFUSED})
sys.stdout.write(text)
"""


def query_apart(
    htcondor: Any,
    location: Any,
    constraint: str,
    projection: Sequence[str],
    opts: int,
    params: Mapping[str, str],
) -> list[Any]:
    """``htcondor.Schedd(location).query(constraint, projection, opts=opts)`` run in a
    child process: the same ads, or the same HTCondorException message. ``params`` (the
    pool's condor_params, set in this process through ``htcondor.param``) reach the child
    as ``_CONDOR_*`` variables, the way HTCondor reads settings from the environment."""
    request = {"constraint": constraint, "projection": list(projection), "opts": opts, "since": None}
    return _run(htcondor, location, request, params)


def history_apart(
    htcondor: Any,
    location: Any,
    constraint: str,
    projection: Sequence[str],
    since: Any,
    params: Mapping[str, str],
) -> list[Any]:
    """``htcondor.Schedd(location).history(constraint, projection, since=since)`` run in a
    child process, as ``query_apart`` runs a query; ``since`` an expression or None."""
    request = {
        "constraint": constraint,
        "projection": list(projection),
        "opts": 0,
        "since": "" if since is None else str(since),
    }
    return _run(htcondor, location, request, params)


class CollectorFailed(Exception):
    """The collector a query sent ahead was to locate its schedd with did not answer."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ScheddFailed(Exception):
    """The schedd a query sent ahead located refused or failed the query."""

    def __init__(self, location: Any, message: str) -> None:
        super().__init__(message)
        self.location, self.message = location, message


class LocatedQuery:
    """A schedd query sent before this process has located the schedd: the query's process
    locates it (see ``query_located``). ``result`` waits for the answer."""

    def __init__(self, process: subprocess.Popen[str] | None) -> None:
        self._process = process

    def result(self) -> tuple[Any, list[Any]] | None:
        """The schedd's location ad and the query's ads. None when the collector knows no
        single schedd by the names given, or the process failed: the caller asks as usual,
        and hears why. The collector's or the schedd's HTCondorException comes back as
        CollectorFailed or ScheddFailed, as asking again would only wait as long again."""
        process, self._process = self._process, None
        if process is None:
            return None
        with process:
            try:
                stdout, _ = process.communicate()
            finally:
                _landed(process)
        if process.returncode == COLLECTOR_FAILED:
            raise CollectorFailed(stdout)
        if process.returncode not in (0, REFUSED):
            return None
        import classad2

        first, _, rest = stdout.partition("\n")
        try:
            location = classad2.ClassAd(json.loads(first))
        except ValueError:  # not a line this module's child writes: asked as usual
            return None
        if process.returncode == REFUSED:
            raise ScheddFailed(location, rest)
        return location, list(classad2.parseAds(rest)) if rest.strip() else []

    def abandon(self) -> None:
        """Kill the query's process: its answer will not be read."""
        process, self._process = self._process, None
        if process is not None:
            _landed(process)
            _end(process)


def query_located(
    collector: str,
    schedds: Sequence[str],
    constraint: str,
    projection: Sequence[str],
    opts: str,
    params: Mapping[str, str],
    multiplier: str | None,
) -> LocatedQuery:
    """Send a query to the one schedd of the pool at ``collector`` (the one named, if
    ``schedds`` names one) in a child process that locates it itself, and return at once:
    this process imports nothing of HTCondor for it. ``opts`` names a ``QueryOpt``;
    ``multiplier`` is the TOOL_TIMEOUT_MULTIPLIER the query waits with (None: HTCondor's, or
    the one ``params`` set)."""
    env = _environment(params)
    process = _take_ahead(env) or _spawn(env)
    request = {
        "locate": {"collector": collector, "schedds": list(schedds)},
        "constraint": constraint,
        "projection": list(projection),
        "opts": opts,
        "since": None,
        "timeout_multiplier": multiplier,
    }
    assert process.stdin is not None
    try:  # a few hundred bytes: the pipe takes them without waiting for the process
        process.stdin.write(json.dumps(request))
        process.stdin.close()
    except OSError:  # the process has died: result() says None
        pass
    process.stdin = None  # written and closed: communicate() must not flush it again
    with _ahead_lock:
        _in_flight.add(process)
    return LocatedQuery(process)


# The process started ahead and the environment it was started with; at most one
_ahead: tuple[subprocess.Popen[str], dict[str, str]] | None = None
_ahead_lock = threading.Lock()
# Query processes that have their query and have not answered yet
_in_flight: set[subprocess.Popen[str]] = set()


@contextmanager
def started_ahead(params: Mapping[str, str] | None = None) -> Iterator[None]:
    """Start the process the next query (or history read) of this block will run in, now:
    its start-up (Python, htcondor2's import: about 0.15 s) overlaps the caller's work until
    that query. It serves only a query whose environment is the one it started with, so
    ``params`` are the pool's condor_params when the caller knows them already (a query with
    other ones gets a fresh process); unused, it is ended with the block."""
    global _ahead
    env = _environment(params or {})
    process = _spawn(env)
    with _ahead_lock:
        previous, _ahead = _ahead, (process, env)
    if previous is not None:
        _end(previous[0])
    try:
        yield
    finally:
        with _ahead_lock:
            unused = _ahead is not None and _ahead[0] is process
            if unused:
                _ahead = None
        if unused:
            _end(process)


def end_queries_in_flight() -> None:
    """Kill the query processes that are working on a query now: for a command that fails
    after it sent a query it will never read (``csctl demand`` with an invalid
    configuration), so that it exits at once rather than when the schedd answers."""
    with _ahead_lock:
        running = list(_in_flight)
    for process in running:
        process.kill()


def _landed(process: subprocess.Popen[str]) -> None:
    """``process`` is no longer working on a query (answered, or killed)."""
    with _ahead_lock:
        _in_flight.discard(process)


def _environment(params: Mapping[str, str]) -> dict[str, str]:
    """This process's environment with ``params`` as ``_CONDOR_*`` variables, the way
    HTCondor reads settings from the environment."""
    return {**os.environ, **{f"_CONDOR_{key}": value for key, value in params.items()}}


def _same_environment(started_with: Mapping[str, str], env: Mapping[str, str]) -> bool:
    # htcondor2, imported after the process was started, sets CONDOR_CONFIG to /dev/null in
    # this process when the host has no HTCondor configuration (normal for csctl, which
    # names the collector); the process started ahead finds none either and does the same
    if "CONDOR_CONFIG" not in started_with and env.get("CONDOR_CONFIG") == os.devnull:
        env = {key: value for key, value in env.items() if key != "CONDOR_CONFIG"}
    return started_with == env


def _take_ahead(env: dict[str, str]) -> subprocess.Popen[str] | None:
    """The process started ahead, if there is one and it was started with ``env``."""
    global _ahead
    with _ahead_lock:
        ahead, _ahead = _ahead, None
    if ahead is None:
        return None
    process, started_with = ahead
    if _same_environment(started_with, env) and process.poll() is None:
        return process
    _end(process)
    return None


def _spawn(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-P", "-c", CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _end(process: subprocess.Popen[str]) -> None:
    process.kill()
    process.communicate()


def _run(htcondor: Any, location: Any, request: dict[str, Any], params: Mapping[str, str]) -> list[Any]:
    import classad2

    env = _environment(params)
    # the query waits as long as one in this process would: a process started ahead
    # predates the configuration that set it
    multiplier = htcondor.param.get(TIMEOUT_KNOB)
    process = _take_ahead(env) or _spawn(env)
    with _ahead_lock:
        _in_flight.add(process)
    with process:  # as subprocess.run: the process is killed if this thread is interrupted
        try:
            stdout, stderr = process.communicate(
                json.dumps({"location": str(location), "timeout_multiplier": multiplier, **request})
            )
        except BaseException:
            process.kill()
            raise
        finally:
            _landed(process)
    if process.returncode == REFUSED:
        raise htcondor.HTCondorException(stdout)
    if process.returncode != 0:
        last = (stderr.strip().splitlines() or ["no message"])[-1]
        raise htcondor.HTCondorException(f"query process ended with status {process.returncode}: {last}")
    return list(classad2.parseAds(stdout)) if stdout.strip() else []
