"""The planners decide and never act: csctl/plan/ imports only what a pure function needs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PLAN = Path(__file__).resolve().parents[2] / "csctl" / "plan"

# First-party modules a planner may use, and third-party ones (pydantic through the
# configuration's types, classad2 as a pure expression library).
ALLOWED_FIRST_PARTY = ("csctl.plan", "csctl.model", "csctl.config", "csctl.errors")
ALLOWED_THIRD_PARTY = ("pydantic", "pydantic_core", "classad2")
# Standard-library modules that act on the world: threads, processes, sockets, clocks,
# randomness, the file system.
FORBIDDEN_STDLIB = {
    "asyncio", "concurrent", "fcntl", "http", "multiprocessing", "os", "pathlib", "random",
    "secrets", "select", "shutil", "signal", "socket", "ssl", "subprocess", "tempfile",
    "threading", "time", "urllib", "uuid",
}  # fmt: skip


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, "csctl.plan"))  # a relative import stays inside plan/
    return found


def _verdict(module: str) -> str | None:
    root = module.split(".")[0]
    if root == "csctl":
        return None if module.startswith(ALLOWED_FIRST_PARTY) else "an adapter or the engine"
    if root in ALLOWED_THIRD_PARTY or root == "__future__":
        return None
    if root in FORBIDDEN_STDLIB:
        return "acting standard library"
    if root in sys.stdlib_module_names:
        return None
    return "a third-party package"


@pytest.mark.parametrize("path", sorted(PLAN.rglob("*.py")), ids=lambda p: str(p.relative_to(PLAN)))
def test_a_planner_imports_only_pure_modules(path: Path) -> None:
    bad = [f"{path.name}:{line}: {mod} ({why})" for line, mod in _imports(path) if (why := _verdict(mod))]
    assert not bad, "\n".join(bad)


def test_the_rule_catches_what_it_forbids() -> None:
    assert _verdict("csctl.engine.boot") and _verdict("csctl.clouds.ec2") and _verdict("csctl.pool")
    assert _verdict("threading") and _verdict("subprocess") and _verdict("time") and _verdict("boto3")
    assert _verdict("click") and _verdict("rich.table") and _verdict("htcondor2")
    assert not _verdict("csctl.model") and not _verdict("classad2") and not _verdict("datetime")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PLAN.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_importing_every_planner_loads_no_adapter_or_sdk() -> None:
    modules = sorted(_module_name(p) for p in PLAN.rglob("*.py"))
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('boto3', 'botocore', 'openstack', 'htcondor', 'htcondor2', 'click', 'rich')"
        " or m.startswith(('csctl.engine', 'csctl.clouds', 'csctl.pool', 'csctl.cli', 'csctl.context')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
