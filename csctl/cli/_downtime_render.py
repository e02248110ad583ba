"""How ``csctl downtime`` shows what it changed and what is declared."""

from __future__ import annotations

from csctl.cli.app import Application
from csctl.engine.downtime import Change, Listed
from csctl.plan.downtime_rules import to_json


def show_list(app: Application, listed: list[Listed], warnings: list[str]) -> None:
    """The declared downtimes as a table, or JSON."""
    for line in warnings:
        app.console.warn(line)
    if app.console.json_output:
        rows = [
            {**to_json(e.downtime), "phase": e.phase.value, "window": [t.isoformat() for t in e.window or ()]}
            for e in listed
        ]
        app.console.print_json({"schema": "csctl.downtimes/1", "downtimes": rows})
        return
    if not listed:
        app.console.result("no downtime declared")
        return
    app.console.table(
        None,
        ["id", "state", "scope", "severity", "window (UTC)", "reason"],
        [
            (e.downtime.id, e.phase.value, e.downtime.scope, _severity(e), _window(e), e.downtime.reason)
            for e in listed
        ],
    )


def _severity(entry: Listed) -> str:
    return entry.downtime.severity.value


def _window(entry: Listed) -> str:
    window, schedule = entry.window, entry.downtime.schedule
    text = f"{window[0]:%Y-%m-%d %H:%M} - {window[1]:%Y-%m-%d %H:%M}" if window else "over"
    return f"{text} ({schedule})" if schedule else text


def show(app: Application, change: Change) -> None:
    """What a downtime command changed, and its warnings."""
    for line in change.warnings + change.skipped:
        app.console.warn(line)
    if app.console.json_output:
        app.console.print_json(
            {
                "added": [to_json(d) for d in change.added],
                "removed": [to_json(d) for d in change.removed],
                "skipped": change.skipped,
            }
        )
        return
    now = app.services.now()
    for d in change.added:
        app.console.result(f"declared {d.describe(now)}")
    for d in change.removed:
        app.console.result(f"removed {d.describe(now)}")
