"""csctl's decisions: pure functions from snapshots (jobs, startd ads, instances,
configuration, now) to plans.

Nothing here acts. A module under ``csctl/plan/`` imports only the standard library,
pydantic (through ``csctl.config``), ``classad2``, ``csctl.model``, ``csctl.errors`` and
its siblings: no adapter, engine, SDK, click or rich, and no threads, subprocesses,
sockets or clocks. ``tests/plan/test_imports.py`` enforces it.
"""
