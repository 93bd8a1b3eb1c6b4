"""What is due when: pure functions of the calendar, the panel and `now`.

Nothing here reads a clock or a database, so the service, tests and `schedule preview`
all plan on whatever clock they are given. All returned datetimes are aware, in UTC.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from scheduler.config import Briefing, Calendar, QuietHours, Session, format_duration

BRIEFING, REMINDER = "briefing", "reminder"


@dataclass(frozen=True)
class Member:
    """A panel member as the planner sees them."""

    id: str
    timezone: str | None = None  # None: the schedule's time zone
    briefing_time: time | None = None  # None: the schedule's default briefing time
    language: str = "en"
    channel: str | None = None  # where they would be reached now (for previews)


@dataclass(frozen=True)
class Move:
    """A session moved from the command line, valid while the file still says `original`."""

    original_start: datetime
    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class Due:
    kind: str
    participant_id: str
    subject: str  # briefing id or session id
    occurrence: str  # "" for briefings (one per person); offset@start for reminders
    due_at: datetime  # the moment it is meant for
    send_at: datetime  # the moment it may go: after quiet hours
    expires_at: datetime | None  # never sent from this moment on

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.kind, self.participant_id, self.subject, self.occurrence)


@dataclass(frozen=True)
class TimedSession:
    """A session with aware start and end after any move."""

    session: Session
    start: datetime
    end: datetime | None

    @property
    def id(self) -> str:
        return self.session.id


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def zone_of(calendar: Calendar, member: Member) -> ZoneInfo:
    return ZoneInfo(member.timezone) if member.timezone else calendar.zone


def timed_sessions(
    calendar: Calendar, moves: Mapping[str, Move] | None = None
) -> list[TimedSession]:
    """Sessions with their effective times: the file's, or a move made since."""
    out = []
    for session in calendar.sessions:
        start = calendar.localise(session.start)
        end = calendar.localise(session.end) if session.end else None
        move = (moves or {}).get(session.id)
        if move is not None and utc(move.original_start) == utc(start):
            start, end = move.start, move.end
        out.append(TimedSession(session, utc(start), utc(end) if end else None))
    return out


def after_quiet_hours(moment: datetime, zone: ZoneInfo, quiet: QuietHours) -> datetime:
    """The first moment at or after `moment` that is outside quiet hours, local to `zone`."""
    local = moment.astimezone(zone)
    if not quiet.contains(local.timetz().replace(tzinfo=None)):
        return utc(moment)
    end = datetime.combine(local.date(), quiet.end, tzinfo=zone)
    if end <= local:
        end = datetime.combine(local.date() + timedelta(days=1), quiet.end, tzinfo=zone)
    return utc(end)


def in_quiet_hours(moment: datetime, zone: ZoneInfo, quiet: QuietHours) -> bool:
    return quiet.contains(moment.astimezone(zone).time())


def _at_local(day, clock: time, zone: ZoneInfo) -> datetime:
    return utc(datetime.combine(day, clock, tzinfo=zone))


def briefing_item(
    calendar: Calendar, briefing: Briefing, member: Member, sessions: Mapping[str, TimedSession]
) -> Due | None:
    """When `member` gets `briefing`: their briefing time on its day, in their time zone.

    A briefing for a session comes on the session's day, or the day before when the
    person's briefing time is not before the session starts; it expires at the session's
    start. A day's briefing expires at the end of that day.
    """
    zone = zone_of(calendar, member)
    clock = member.briefing_time or calendar.schedule.briefing_time
    if briefing.session is not None:
        timed = sessions.get(briefing.session)
        if timed is None:
            return None
        day = timed.start.astimezone(zone).date()
        due = _at_local(day, clock, zone)
        if due >= timed.start:
            due = _at_local(day - timedelta(days=1), clock, zone)
        expires = timed.start
    else:
        day = briefing.day
        due = _at_local(day, clock, zone)
        expires = _at_local(day + timedelta(days=1), time(0), zone)
    # A time the person chose themselves is honoured; the default waits out quiet hours.
    quiet = calendar.schedule.quiet_hours
    send = due if member.briefing_time else after_quiet_hours(due, zone, quiet)
    if send >= expires:
        return None
    return Due(BRIEFING, member.id, briefing.id, "", due, send, expires)


def reminder_occurrence(offset: timedelta, start: datetime) -> str:
    """Names a reminder by its offset and the session start it counts from, so a moved
    session gets fresh reminders while the old ones lapse."""
    return f"{format_duration(offset)}@{utc(start):%Y%m%dT%H%MZ}"


def reminder_items(calendar: Calendar, timed: TimedSession, member: Member) -> list[Due]:
    zone = zone_of(calendar, member)
    items = []
    for offset in calendar.schedule.reminders:
        due = timed.start - offset
        send = after_quiet_hours(due, zone, calendar.schedule.quiet_hours)
        if send >= timed.start:
            continue  # quiet hours last until the session: the other reminders do the job
        items.append(
            Due(
                REMINDER,
                member.id,
                timed.id,
                reminder_occurrence(offset, timed.start),
                due,
                send,
                timed.start,
            )
        )
    return items


def plan(
    calendar: Calendar, members: Iterable[Member], moves: Mapping[str, Move] | None = None
) -> list[Due]:
    """Every briefing and reminder for every member, in the order they go out."""
    timed = timed_sessions(calendar, moves)
    by_id = {t.id: t for t in timed}
    items: list[Due] = []
    for member in members:
        for briefing in calendar.briefings:
            item = briefing_item(calendar, briefing, member, by_id)
            if item is not None:
                items.append(item)
        for session in timed:
            items.extend(reminder_items(calendar, session, member))
    items.sort(key=lambda d: (d.send_at, d.kind, d.subject, d.participant_id))
    return items


def superseded(calendar: Calendar, item: Due, now: datetime) -> bool:
    """A late reminder is dropped when a closer one for the same session is already due,
    so someone joining (or a service back up) gets one reminder, not a burst."""
    if item.kind != REMINDER or item.expires_at is None:
        return False
    offset = item.expires_at - item.due_at
    return any(o < offset and item.expires_at - o <= now for o in calendar.schedule.reminders)


def parse_local_time(text: str, calendar: Calendar, *, base: datetime | None = None) -> datetime:
    """'2027-03-04T19:00', '2027-03-04 19:00' or '19:00' (on `base`'s local day) in the
    schedule's time zone (or with an explicit offset) -> aware UTC datetime."""
    from scheduler.config import parse_clock

    text = text.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        if base is None:
            raise ValueError(f"{text!r} is not a date and time such as 2027-03-04T19:00") from None
        try:
            clock = parse_clock(text)
        except ValueError:
            raise ValueError(
                f"{text!r} is not a date and time such as 2027-03-04T19:00 or a time such as 19:00"
            ) from None
        moment = datetime.combine(base.astimezone(calendar.zone).date(), clock)
    return utc(calendar.localise(moment))
