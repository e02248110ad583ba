"""The one console: results to stdout, messages to stderr, JSON for scripts, NO_COLOR."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import pytest

from csctl.console import Console


class Color(StrEnum):
    RED = "red"


@dataclass
class Thing:
    name: str
    when: datetime
    tags: set[str]
    color: Color


def test_json_goes_to_stdout_only_and_serialises_csctl_types(capsys):
    Console(json_output=True).print_json(
        {"b": Thing("x", datetime(2026, 11, 25, 12, 0, tzinfo=UTC), {"z", "a"}, Color.RED), "a": [1]}
    )
    out, err = capsys.readouterr()
    assert err == ""
    assert json.loads(out) == {
        "a": [1],
        "b": {"name": "x", "when": "2026-11-25T12:00:00+00:00", "tags": ["a", "z"], "color": "red"},
    }
    assert out.index('"a"') < out.index('"b"') and out.endswith("}\n")  # sorted keys, one document


def test_json_refuses_what_it_cannot_represent(capsys):
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        Console().print_json({"x": object()})


def test_results_go_to_stdout_and_messages_to_stderr(capsys):
    console = Console()
    console.result("3 VMs [bold]idle[/bold]")  # shown as written, never as markup
    console.info("looking")
    console.warn("cloud B: timed out")
    console.detail("not shown without -v")
    console.error("it broke", hint="try again")
    out, err = capsys.readouterr()
    assert out == "3 VMs [bold]idle[/bold]\n"
    assert err == "looking\nwarning: cloud B: timed out\nerror: it broke\nhint: try again\n"


def test_quiet_keeps_only_errors_and_verbose_adds_detail(capsys):
    quiet = Console(verbosity=-1)
    quiet.info("looking")
    quiet.warn("careful")
    quiet.error("it broke")
    assert capsys.readouterr() == ("", "error: it broke\n")
    Console(verbosity=1).detail("step 2")
    assert capsys.readouterr() == ("", "step 2\n")


def test_a_table_piped_is_plain_text_on_stdout(capsys):
    Console().table("VMs", ["VM", "jobs", "note"], [("a-0", 2, None), ("a-1", 10, "late")])
    out, err = capsys.readouterr()
    assert err == "" and "\x1b[" not in out
    lines = out.splitlines()
    assert lines[0].strip() == "VMs"
    assert re.search(r"a-0\s+\S\s+2\s+\S\s+-", out)  # None is shown as "-"
    assert any("a-1" in line and "10" in line and "late" in line for line in lines)


TERMINAL = (
    "from csctl.console import Console\n"
    "c = Console()\n"
    "c.warn('w'); c.error('e'); c.result('r')\n"
    "c.table(None, ['a', 'b'], [(1, 'x')])\n"
)
SGR = re.compile(r"\x1b\[([0-9;]*)m")


def on_a_terminal(**env: str) -> str:
    """What a csctl console prints to a real (pseudo-)terminal, escapes included."""
    master, slave = pty.openpty()
    environ = {"PATH": os.environ["PATH"], "TERM": "xterm-256color", "COLUMNS": "80", **env}
    proc = subprocess.Popen([sys.executable, "-c", TERMINAL], stdout=slave, stderr=slave, env=environ)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the terminal closed: the child is done
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert proc.wait(timeout=30) == 0
    return out.decode()


def colors(text: str) -> list[str]:
    """The colour parameters of every SGR escape (bold and the like are not colour)."""
    found = []
    for params in SGR.findall(text):
        codes = [int(p) for p in params.split(";") if p]
        found += [str(c) for c in codes if 30 <= c <= 49 or 90 <= c <= 107]
    return found


def test_no_color_turns_colour_off_on_a_terminal():
    coloured = on_a_terminal()
    assert colors(coloured)  # the terminal does get colour without NO_COLOR
    plain = on_a_terminal(NO_COLOR="1")
    assert colors(plain) == []
    assert "warning: w" in plain and "error: e" in plain and "r" in plain.splitlines()
