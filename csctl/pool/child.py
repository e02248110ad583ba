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
following it. It receives nothing before the configuration is valid and the schedd located.
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


# The process started ahead and the environment it was started with; at most one
_ahead: tuple[subprocess.Popen[str], dict[str, str]] | None = None
_ahead_lock = threading.Lock()


@contextmanager
def started_ahead() -> Iterator[None]:
    """Start the process the next query (or history read) of this block will run in, now:
    its start-up (Python, htcondor2's import: about 0.15 s) overlaps the caller's work until
    that query. It serves only a query whose environment is the one it started with (a pool
    with ``condor_params`` gets a fresh process, as before); unused, it is ended with the block."""
    global _ahead
    env = dict(os.environ)
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


def _take_ahead(env: dict[str, str]) -> subprocess.Popen[str] | None:
    """The process started ahead, if there is one and it was started with ``env``."""
    global _ahead
    with _ahead_lock:
        ahead, _ahead = _ahead, None
    if ahead is None:
        return None
    process, started_with = ahead
    if started_with == env and process.poll() is None:
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

    env = {**os.environ, **{f"_CONDOR_{key}": value for key, value in params.items()}}
    # the query waits as long as one in this process would: a process started ahead
    # predates the configuration that set it
    multiplier = htcondor.param.get(TIMEOUT_KNOB)
    process = _take_ahead(env) or _spawn(env)
    with process:  # as subprocess.run: the process is killed if this thread is interrupted
        try:
            stdout, stderr = process.communicate(
                json.dumps({"location": str(location), "timeout_multiplier": multiplier, **request})
            )
        except BaseException:
            process.kill()
            raise
    if process.returncode == REFUSED:
        raise htcondor.HTCondorException(stdout)
    if process.returncode != 0:
        last = (stderr.strip().splitlines() or ["no message"])[-1]
        raise htcondor.HTCondorException(f"query process ended with status {process.returncode}: {last}")
    return list(classad2.parseAds(stdout)) if stdout.strip() else []
