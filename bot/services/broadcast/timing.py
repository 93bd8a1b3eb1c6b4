"""When broadcasts may go out: the assembly's zone and quiet hours.

A broadcast that is not urgent waits, per participant, until their quiet hours are over
(their own time zone, else the assembly's).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scheduler.config import Calendar, QuietHours
from scheduler.plan import after_quiet_hours

DEFAULT_QUIET = QuietHours(start=time(21, 0), end=time(8, 0))


@dataclass(frozen=True)
class Timing:
    """What broadcasts need of the assembly's calendar: its zone and quiet hours."""

    timezone: str = "UTC"
    quiet: QuietHours = DEFAULT_QUIET

    def zone(self, name: str | None) -> ZoneInfo:
        for candidate in (name, self.timezone):
            if candidate:
                try:
                    return ZoneInfo(candidate)
                except (ZoneInfoNotFoundError, ValueError):
                    continue
        return ZoneInfo("UTC")

    def release(self, now: datetime, tz: ZoneInfo) -> datetime:
        """`now`, or the end of the quiet hours `now` falls in (in zone `tz`)."""
        return after_quiet_hours(now, tz, self.quiet)


def timing_of(cal: Calendar | None) -> Timing:
    """The zone and quiet hours of an assembly's calendar (defaults without one)."""
    if cal is None:
        return Timing()
    return Timing(cal.schedule.timezone, cal.schedule.quiet_hours)
