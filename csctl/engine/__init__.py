"""csctl's actions: take one snapshot of the pool and the clouds through the adapters,
call the planners of ``csctl/plan/``, carry out their plans, and report.

One use-case function per command; the CLI calls exactly that function and renders
what it returns.
"""
