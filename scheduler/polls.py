"""When each wave of a poll is due: a fixed time, or its session's start (as moved) plus
`hours`, or its briefing's day at the schedule's briefing time plus `hours` (a briefing
for a session comes on that session's day, or the day before when the briefing time is
not before the start, as scheduler/plan.py has it). A wave tied to the calendar when the
assembly has none is due only by hand (`concorder poll send`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from flows.poll_spec import PollDef, PollWave
from scheduler.config import Calendar
from scheduler.plan import Move, TimedSession, timed_sessions, utc


def _briefing_time(calendar: Calendar, key: str, sessions: Mapping[str, TimedSession]):
    briefing = calendar.briefing(key)
    if briefing is None:
        return None
    zone, clock = calendar.zone, calendar.schedule.briefing_time
    if briefing.session is not None:
        timed = sessions.get(briefing.session)
        if timed is None:
            return None
        day = timed.start.astimezone(zone).date()
        due = utc(datetime.combine(day, clock, tzinfo=zone))
        if due >= timed.start:
            due = utc(datetime.combine(day - timedelta(days=1), clock, tzinfo=zone))
        return due
    return utc(datetime.combine(briefing.day, clock, tzinfo=zone))


def wave_time(
    wave: PollWave, calendar: Calendar | None, moves: Mapping[str, Move] | None = None
) -> datetime | None:
    if wave.at is not None:
        return utc(wave.at)
    if calendar is None:
        return None
    sessions = {t.session.id: t for t in timed_sessions(calendar, moves)}
    if wave.session is not None:
        timed = sessions.get(wave.session)
        anchor = timed.start if timed else None
    elif wave.briefing is not None:
        anchor = _briefing_time(calendar, wave.briefing, sessions)
    else:
        return None
    return anchor + timedelta(hours=wave.hours) if anchor else None


def wave_times(
    poll: PollDef, calendar: Calendar | None, moves: Mapping[str, Move] | None = None
) -> dict[str, datetime | None]:
    """Each wave's due time by id (None: by hand only)."""
    return {wave.id: wave_time(wave, calendar, moves) for wave in poll.waves}
