"""csctl's decision core: pure functions from snapshots to plans (no click, no rich)."""
