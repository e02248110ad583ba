"""A configuration that needs no pool to load: a local cloud, a VM type, an unreachable
collector, and (when asked) a signing key of the right mode."""

from __future__ import annotations

from pathlib import Path

from csctl.context.tokens import scramble

CONFIG = """
state_dir = "{tmp}/state"
[pool]
name = "pool.test"
collector = "127.0.0.1:1"
{key}
[clouds.A]
driver = "local"
work_dir = "{tmp}/vms"
max_vms = 2
[vm_types.big]
cpus = 8
memory = 16000
disk = 100
images = {{ A = "img-a" }}
"""
# what csctl says when the collector does not answer (csctl's part of the line)
UNREACHABLE = "error: cannot query collector 127.0.0.1:1"


def write_config(tmp_path: Path, signing_key: bool = False) -> Path:
    """csctl.toml in ``tmp_path``; with ``signing_key`` a POOL key file (mode 0600) too."""
    key = ""
    if signing_key:
        path = tmp_path / "POOL"
        path.write_bytes(scramble(b"pool-secret"))
        path.chmod(0o600)
        key = f'signing_key = "{path}"'
    config = tmp_path / "csctl.toml"
    config.write_text(CONFIG.format(tmp=tmp_path, key=key))
    return config


def lock_lines(state_dir: Path, pid: int, holder: str = "run") -> list[str]:
    """The two lines a command prints when another csctl holds the state lock."""
    return [
        f"error: another csctl {holder} holds {state_dir / 'run.lock'} (pid {pid})",
        "hint: csctl commands that act must not overlap; this one exits without acting",
    ]


def flat(text: str) -> str:
    """Help text with its line wrapping undone, so a test does not depend on the width."""
    return " ".join(text.split())
