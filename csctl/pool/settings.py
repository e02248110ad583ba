"""HTCondor client settings csctl changes: how long it waits on a daemon, and the tokens
it hands the bindings for one block.

HTCondor's settings are the process's, read by every call that follows; a block that
changes one puts it back on leaving.
"""

from __future__ import annotations

import math
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol


class PoolAddress(Protocol):
    """What the pool adapter reads of the configuration's ``[pool]``: csctl.config's
    PoolConfig, or csctl.config_early's EarlyPool (the same keys, read before the rest)."""

    @property
    def name(self) -> str: ...
    @property
    def collector(self) -> str: ...
    @property
    def schedds(self) -> Sequence[str]: ...
    @property
    def condor_params(self) -> Mapping[str, str]: ...
    @property
    def timeout(self) -> int: ...


# HTCondor's own wait on a daemon, in seconds, and the knob that multiplies it
HTCONDOR_TIMEOUT = 20
TIMEOUT_KNOB = "TOOL_TIMEOUT_MULTIPLIER"

# SEC_TOKEN_DIRECTORY is one setting for the whole process: one token_directory at a time
TOKENS_IN_USE = threading.Lock()


def timeout_multiplier(seconds: int) -> int:
    """HTCondor's TOOL_TIMEOUT_MULTIPLIER for waiting ``seconds`` on a daemon.

    A client's calls wait 20 s (a schedd query's is fixed at that, whatever
    Q_QUERY_TIMEOUT says) times the multiplier. A schedd grouping a large queue on a busy
    host sends nothing until it is done: four schedds of 250,000 jobs on one 2-CPU host
    take 35 s to answer at once, and every one of them fails at 20 s.
    """
    return max(1, math.ceil(seconds / HTCONDOR_TIMEOUT))


def operator_multiplier(params: Mapping[str, str]) -> str | None:
    """The TOOL_TIMEOUT_MULTIPLIER the pool's ``condor_params`` set, if they set one: it
    wins over ``[pool] timeout``, for queries and drains alike."""
    return next((value for key, value in params.items() if key.upper() == TIMEOUT_KNOB), None)


@contextmanager
def param_set(htcondor: Any, knob: str, value: str | None) -> Iterator[None]:
    """HTCondor's ``knob`` set to ``value`` (None: HTCondor's default) within the block."""
    old = htcondor.param.get(knob)
    if value is None:
        htcondor.param.pop(knob, None)
    else:
        htcondor.param[knob] = value
    try:
        yield
    finally:
        if old is None:
            htcondor.param.pop(knob, None)
        else:
            htcondor.param[knob] = old


@contextmanager
def token_directory(htcondor: Any, tokens: dict[str, str]) -> Iterator[None]:
    """Tokens handed to the bindings for the duration of a ``with`` block.

    The bindings take tokens from SEC_TOKEN_DIRECTORY and pick the one whose key the
    server trusts; csctl's per-VM command tokens live in a private temporary
    directory (mode 0700, files 0600) that is removed on exit.
    """
    with tempfile.TemporaryDirectory(prefix="csctl-tokens-") as directory:
        for name, token in tokens.items():
            fd = os.open(Path(directory) / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(token + "\n")
        with param_set(htcondor, "SEC_TOKEN_DIRECTORY", directory):
            yield
