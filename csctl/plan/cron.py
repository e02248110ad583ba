"""Cron schedules (five fields, as crontab(5) and Karpenter's disruption budgets read them):
parsing, and the matching minutes just before and after a moment. Pure; times are UTC.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (name, lowest, highest, names) of the five fields
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
SEARCH_DAYS = 4 * 366  # "30 2 29 2 *" matches once in four years; further is never


class CronError(ValueError):
    """A schedule that is not a five-field cron expression; the message says where."""


@dataclass(frozen=True)
class Cron:
    """A parsed schedule: the allowed values of each field."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month is *
    any_weekday: bool  # day of week is *

    def day_matches(self, day: date) -> bool:
        """crontab(5): when both day fields are restricted, either one matching is enough."""
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week

    def matches(self, when: datetime) -> bool:
        """Whether the minute of ``when`` (UTC) is one of the schedule's."""
        when = when.astimezone(UTC)
        return when.minute in self.minutes and when.hour in self.hours and self.day_matches(when.date())

    def _day_times(self, day: date) -> Iterator[datetime]:
        for hour in self.hours:
            for minute in self.minutes:
                yield datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)

    def last_at_or_before(self, when: datetime, not_before: datetime) -> datetime | None:
        """The latest matching minute in [not_before, when], or None."""
        day = when.astimezone(UTC).date()
        while datetime(day.year, day.month, day.day, 23, 59, tzinfo=UTC) >= not_before:
            if self.day_matches(day):
                found = [t for t in self._day_times(day) if not_before <= t <= when]
                if found:
                    return found[-1]
            day -= timedelta(days=1)
        return None

    def next_after(self, when: datetime) -> datetime | None:
        """The first matching minute strictly after ``when``; None within SEARCH_DAYS."""
        day = when.astimezone(UTC).date()
        for _ in range(SEARCH_DAYS):
            if self.day_matches(day):
                for t in self._day_times(day):
                    if t > when:
                        return t
            day += timedelta(days=1)
        return None


def parse_cron(text: str) -> Cron:
    """Parse a five-field schedule (``*``, lists, ranges, steps, month and day names) or a
    macro (``@daily``, ``@weekly``, ...); CronError names the field at fault."""
    expanded = MACROS.get(text.strip().lower(), text)
    parts = expanded.split()
    if len(parts) != 5:
        raise CronError(f"schedule {text!r}: expected five fields (minute hour day month weekday)")
    values = [_field(part, *spec, text) for part, spec in zip(parts, _FIELDS, strict=True)]
    weekdays = frozenset(d % 7 for d in values[4])  # 7 is Sunday too
    return Cron(
        text,
        tuple(sorted(values[0])),
        tuple(sorted(values[1])),
        frozenset(values[2]),
        frozenset(values[3]),
        weekdays,
        any_day=parts[2] == "*",
        any_weekday=parts[4] == "*",
    )


def _field(part: str, name: str, low: int, high: int, names: tuple[str, ...], text: str) -> set[int]:
    found: set[int] = set()
    for item in part.lower().split(","):
        base, _, step_text = item.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if base == "*":
                first, last = low, high
            elif "-" in base:
                a, b = base.split("-", 1)
                first, last = _value(a, names, low), _value(b, names, low)
            else:
                first = _value(base, names, low)
                last = high if step_text else first
        except ValueError:
            raise CronError(f"schedule {text!r}: {name} {part!r} is not a number, range or list") from None
        if step < 1 or not low <= first <= last <= high:
            raise CronError(f"schedule {text!r}: {name} {part!r} is outside {low}-{high}")
        found.update(range(first, last + 1, step))
    return found


def _value(token: str, names: tuple[str, ...], low: int) -> int:
    if token in names:
        return names.index(token) + low
    if not token.isdigit():
        raise ValueError(token)
    return int(token)
