"""The pool's address read ahead of the whole configuration (csctl/config_early.py): the
same five values the validated configuration has, and nothing csctl.config would refuse."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from csctl.config import load_config
from csctl.config_early import EarlyPool, early_pool
from csctl.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

POOLS = [
    '[pool]\nname = "p"\ncollector = "127.0.0.1:9618"\n',
    '[pool]\nname = "cm.example.org"\ncollector = "cm.example.org"\nschedds = ["a@s1", "s2"]\ntimeout = 20\n',
    '[pool]\nname = "p"\ncollector = "[::1]:9618"\ntimeout = 3600\n'
    '[pool.condor_params]\nSEC_CLIENT_AUTHENTICATION_METHODS = "IDTOKENS"\nTOOL_DEBUG = "D_ALWAYS"\n',
]

# each a [pool] csctl.config refuses, for a reason in one of the five keys
REFUSED = {
    "no name": '[pool]\ncollector = "c"\n',
    "name with a space": '[pool]\nname = "p q"\ncollector = "c"\n',
    "name with a newline at its end": '[pool]\nname = "p\\n"\ncollector = "c"\n',
    "collector not a host": '[pool]\nname = "p"\ncollector = "c d:1"\n',
    "collector port 0": '[pool]\nname = "p"\ncollector = "c:0"\n',
    "collector a number": '[pool]\nname = "p"\ncollector = 9618\n',
    "an empty schedd name": '[pool]\nname = "p"\ncollector = "c"\nschedds = [""]\n',
    "schedds a string": '[pool]\nname = "p"\ncollector = "c"\nschedds = "s"\n',
    "a schedd name with a control character": '[pool]\nname = "p"\ncollector = "c"\nschedds = ["s\\u0007"]\n',
    "a knob name with a space": '[pool]\nname = "p"\ncollector = "c"\ncondor_params = { "A B" = "1" }\n',
    "a knob value not a string": '[pool]\nname = "p"\ncollector = "c"\ncondor_params = { A = 1 }\n',
    "a knob value on two lines": '[pool]\nname = "p"\ncollector = "c"\ncondor_params = { A = "1\\nB = 2" }\n',
    "timeout too short": '[pool]\nname = "p"\ncollector = "c"\ntimeout = 19\n',
    "timeout too long": '[pool]\nname = "p"\ncollector = "c"\ntimeout = 3601\n',
    "timeout a float": '[pool]\nname = "p"\ncollector = "c"\ntimeout = 60.0\n',
    "timeout a boolean": '[pool]\nname = "p"\ncollector = "c"\ntimeout = true\n',
    "pool not a table": 'pool = "p"\n',
    "not TOML": "[pool\n",
}


@pytest.mark.parametrize("text", POOLS)
def test_the_address_read_ahead_is_the_validated_pool_s(tmp_path, text):
    path = tmp_path / "csctl.toml"
    path.write_text(text)
    address, pool = early_pool(path), load_config(path).pool
    assert address is not None and address.same_as(pool)
    assert (address.name, address.collector, list(address.schedds), dict(address.condor_params)) == (
        pool.name,
        pool.collector,
        pool.schedds,
        pool.condor_params,
    )
    assert address.timeout == pool.timeout


@pytest.mark.parametrize("text", REFUSED.values(), ids=REFUSED.keys())
def test_nothing_csctl_config_refuses_is_read_ahead(tmp_path, text):
    path = tmp_path / "csctl.toml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_config(path)
    assert early_pool(path) is None


def test_the_rest_of_the_file_is_not_looked_at(tmp_path):
    # the whole file's validation reports the rest; the query may already have gone out
    path = tmp_path / "csctl.toml"
    path.write_text(POOLS[0] + "[vm_types.small]\ncpus = 0\n")
    with pytest.raises(ConfigError):
        load_config(path)
    assert early_pool(path) == EarlyPool("p", "127.0.0.1:9618")


def test_a_file_that_is_not_there_or_not_a_file_is_left_to_the_validation(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert early_pool(fifo) is None  # refused at once, not waited on
    assert early_pool(tmp_path / "missing.toml") is None
    assert early_pool(tmp_path) is None


@pytest.mark.parametrize(
    "change",
    [
        {"name": "q"},
        {"collector": "127.0.0.1:9619"},
        {"schedds": ("s",)},
        {"condor_params": {"TOOL_DEBUG": "D_ALWAYS"}},
        {"timeout": 61},
    ],
)
def test_an_address_that_differs_in_any_key_is_not_the_same(tmp_path, change):
    path = tmp_path / "csctl.toml"
    path.write_text(POOLS[0])
    pool = load_config(path).pool
    address = early_pool(path)
    assert address is not None and address.same_as(pool)
    assert not EarlyPool(**{**address.__dict__, **change}).same_as(pool)


def test_reading_the_address_imports_no_pydantic(tmp_path):
    path = tmp_path / "csctl.toml"
    path.write_text(POOLS[2])
    script = (
        "import sys\nfrom pathlib import Path\nfrom csctl.config_early import early_pool\n"
        f"assert early_pool(Path({str(path)!r})) is not None\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pydantic_core')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"
