"""5-field POSIX cron: validate an expression and list its next fire times.

Used only to fill a deployment's computed ``upcoming_runs_at``; the local provider has no
scheduler and never fires a schedule by itself. Rules as on the wire: minute hour
day-of-month month day-of-week, day-of-week 0-7 (0 and 7 are Sunday), ``*``, lists, ranges,
steps and three-letter names; no seconds, years, ``L W # ?`` or ``@daily``. When both
day fields are restricted a day matches either (classic cron). Times are local wall-clock
times of an IANA zone: a skipped local time does not fire, a repeated one fires twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_FIELDS = (  # (name, low, high, names)
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day-of-month", 1, 31, None),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 7, _DAYS),
)


class CronError(ValueError):
    """The expression or the time zone is invalid; the message says why."""


@dataclass(frozen=True)
class CronSchedule:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    dom_restricted: bool
    dow_restricted: bool
    zone: ZoneInfo

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.dom_restricted and self.dow_restricted:
            return dom or dow
        return dom and dow

    def upcoming(self, after: datetime, count: int = 5) -> list[datetime]:
        """The next ``count`` fire instants strictly after ``after``, in UTC."""
        found: list[datetime] = []
        start = after.astimezone(self.zone).date() - timedelta(days=1)
        # Eight years covers every satisfiable pattern (Feb 29 on a given weekday included).
        for offset in range(366 * 8):
            day = start + timedelta(days=offset)
            if not self.matches_day(day):
                continue
            for hour in self.hours:
                for minute in self.minutes:
                    for instant in _instants(datetime.combine(day, time(hour, minute)), self.zone):
                        if instant > after:
                            found.append(instant)
                # Finish the hour before stopping: a repeated (DST) hour interleaves instants.
                if len(found) >= count:
                    break
            if len(found) >= count:
                break
        return sorted(found)[:count]


def _instants(wall: datetime, zone: ZoneInfo) -> list[datetime]:
    """UTC instants of a local wall-clock time: none if skipped, two if repeated."""
    result = []
    for fold in (0, 1):
        aware = wall.replace(tzinfo=zone, fold=fold)
        utc = aware.astimezone(UTC)
        if utc.astimezone(zone).replace(tzinfo=None) == wall and utc not in result:
            result.append(utc)
    return result


def _parse_value(text: str, low: int, high: int, names: list[str] | None, field: str) -> int:
    if names is not None and text.lower() in names:
        return names.index(text.lower()) + (1 if names is _MONTHS else 0)
    if not text.isdigit():
        raise CronError(f"invalid {field} value {text!r}")
    value = int(text)
    if not low <= value <= high:
        raise CronError(f"{field} value {value} is outside {low}-{high}")
    return value


def _parse_field(text: str, low: int, high: int, names: list[str] | None, field: str) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError(f"empty list item in {field}")
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"invalid step {step_text!r} in {field}")
            step = int(step_text)
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            first = _parse_value(a, low, high, names, field)
            last = _parse_value(b, low, high, names, field)
            if first > last:
                raise CronError(f"range {base!r} in {field} runs backwards")
        else:
            first = _parse_value(base, low, high, names, field)
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    return values


def parse_cron(expression: str, timezone: str) -> CronSchedule:
    """Validate ``expression`` in ``timezone``.

    Raises:
        CronError: with a sentence naming the bad part.
    """
    if not timezone or timezone != timezone.strip():
        raise CronError(f"unknown time zone {timezone!r}")
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(f"unknown time zone {timezone!r}") from None
    parts = expression.split()
    if len(parts) != 5:
        raise CronError("a cron expression has exactly 5 fields: minute hour day month weekday")
    sets = [
        _parse_field(p, lo, hi, names, name) for p, (name, lo, hi, names) in zip(parts, _FIELDS)
    ]
    weekdays = frozenset(d % 7 for d in sets[4])
    return CronSchedule(
        minutes=tuple(sorted(sets[0])),
        hours=tuple(sorted(sets[1])),
        days=frozenset(sets[2]),
        months=frozenset(sets[3]),
        weekdays=weekdays,
        dom_restricted=not parts[2].startswith("*"),
        dow_restricted=not parts[4].startswith("*"),
        zone=zone,
    )
