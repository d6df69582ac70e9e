"""Opening hours: weekly ranges, overnight ranges, closed and special dates, in a time zone.

A range ``"22:00-02:00"`` belongs to the day it starts on, so closing that
day closes the whole range, tail included, and leaves the previous night's
tail alone. Times are wall-clock times in the schedule's zone, so DST
changeover days follow the zone's rules.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from router.engine.problems import did_you_mean

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])\Z")
_DAY = 24 * 3600

Range = tuple[int, int]  # seconds from local midnight; end may pass 86400 (overnight)


class ScheduleError(ValueError):
    """A schedule value that cannot be read; the message says what is expected."""


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; :class:`ScheduleError` with a suggestion if unknown."""
    if not name or name.startswith(("/", ".")) or ".." in name or "\\" in name:
        raise ScheduleError(f"unknown time zone '{name}'")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        hint = did_you_mean(name, available_timezones())
        raise ScheduleError(f"unknown time zone '{name}'{hint}") from None


def parse_hours(text: str) -> Range:
    """``"08:00-18:00"`` → seconds; an end at or before the start runs past midnight."""
    match = _HOURS.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ScheduleError(f"hours '{text}' should look like '08:00-18:00' (24-hour HH:MM-HH:MM)")
    start = int(match[1]) * 3600 + int(match[2]) * 60
    end = int(match[3]) * 3600 + int(match[4]) * 60
    if end > _DAY:
        raise ScheduleError(f"hours '{text}': 24:00 is the latest end time")
    if end <= start:
        end += _DAY
    return start, end


def parse_days(key: str) -> list[int]:
    """``"mon"`` → [0]; ``"mon-fri"`` → [0..4]; ``"fri-mon"`` wraps over the weekend."""
    parts = key.strip().lower().split("-")
    for part in parts:
        if part not in DAYS:
            raise ScheduleError(f"unknown day '{part}'{did_you_mean(part, DAYS)}; use mon … sun")
    if len(parts) == 1:
        return [DAYS.index(parts[0])]
    if len(parts) != 2:
        raise ScheduleError(f"day range '{key}' should look like 'mon-fri'")
    first, last = DAYS.index(parts[0]), DAYS.index(parts[1])
    return [(first + i) % 7 for i in range(((last - first) % 7) + 1)]


def parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text) if isinstance(text, str) and len(text) == 10 else _bad(text)
    except ValueError:
        return _bad(text)


def _bad(text: object) -> date:
    raise ScheduleError(f"date '{text}' should look like 2026-12-25")


@dataclass(frozen=True, slots=True)
class Schedule:
    """A compiled schedule: ask :meth:`is_open` with an aware datetime."""

    name: str
    tz: ZoneInfo
    weekly: tuple[tuple[Range, ...], ...]  # index 0 = Monday
    closed: frozenset[date]
    special: Mapping[date, tuple[Range, ...]]
    _last_minute: list[tuple[float, bool]] = field(
        default_factory=lambda: [(math.nan, False)], init=False, repr=False, compare=False
    )
    """The UTC minute last judged and its answer (see :meth:`is_open`)."""

    def ranges_on(self, day: date) -> tuple[Range, ...]:
        if day in self.special:
            return self.special[day]
        if day in self.closed:
            return ()
        return self.weekly[day.weekday()]

    def is_open(self, at: datetime) -> bool:
        """Whether ``at`` falls in an open range.

        Ranges start and end on whole local minutes, so where the zone's offset from UTC is
        a whole number of minutes (every zone today; not some before 1970) the answer is
        the same for a whole UTC minute: it is worked out once a minute, not per call
        (the time-zone conversion is most of the cost of a rule with ``during``)."""
        try:
            minute = at.timestamp() // 60
        except (OverflowError, ValueError, OSError):
            minute = math.nan
        last = self._last_minute[0]
        if last[0] == minute:
            return last[1]
        try:
            local = at.astimezone(self.tz)
            yesterday = local.date() - timedelta(days=1)
        except OverflowError:  # the first or last day representable: no office is open then
            return False
        answer = self._open_at(local, yesterday)
        offset = local.utcoffset()
        if offset is not None and not offset.seconds % 60:
            self._last_minute[0] = (minute, answer)
        return answer

    def _open_at(self, local: datetime, yesterday: date) -> bool:
        today = local.date()
        second = local.hour * 3600 + local.minute * 60 + local.second
        for start, end in self.ranges_on(today):
            if start <= second < end:
                return True
        # Yesterday's ranges that ran past midnight spill into today.
        return any(end > _DAY and second < end - _DAY for _, end in self.ranges_on(yesterday))

    def local_time(self, at: datetime) -> str:
        """For traces: the local wall-clock time the schedule was judged at."""
        return at.astimezone(self.tz).strftime("%a %Y-%m-%d %H:%M:%S %Z")
