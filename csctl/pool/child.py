"""Schedd queries in a child process, for the queries that must overlap other work.

The htcondor2 bindings (25.x) hold the GIL for the whole of a ``Schedd.query``, also while
the schedd works on its answer: every other thread of the process stops until the query
ends (measured with 100,000 idle jobs: a counting thread makes no progress, and a 50 ms
sleep ends 4 s late, while the schedd groups them). A snapshot lists the clouds while it
asks the schedds, and asks several schedds at once; so each such query runs in its own
short-lived Python process (start-up and htcondor2's import: about 0.15 s), whose GIL is
its own. The answer comes back as ClassAd text; an HTCondorException comes back as its
message and is raised again here, so callers see what an in-process query would raise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

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
request = json.load(sys.stdin)
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


def _run(htcondor: Any, location: Any, request: dict[str, Any], params: Mapping[str, str]) -> list[Any]:
    import classad2

    env = {**os.environ, **{f"_CONDOR_{key}": value for key, value in params.items()}}
    done = subprocess.run(
        [sys.executable, "-P", "-c", CHILD],
        input=json.dumps({"location": str(location), **request}),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode == REFUSED:
        raise htcondor.HTCondorException(done.stdout)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise htcondor.HTCondorException(f"query process ended with status {done.returncode}: {last}")
    return list(classad2.parseAds(done.stdout)) if done.stdout.strip() else []
