"""Local driver: a "VM" is a condor_master + startd process on this host, started from
the same contextualization payload a cloud VM receives."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class Settings(BaseModel):
    """Keys of a ``driver = "local"`` cloud section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    root: Path | None = Field(None, description="run HTCondor inside this chroot")
    condor_master: str = "condor_master"
