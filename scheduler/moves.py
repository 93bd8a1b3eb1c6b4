"""Moving a session: its new times are kept, and every reminder for it is planned again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from scheduler.config import Calendar
from scheduler.facts import MOVES_READ, load_moves
from scheduler.jobs import SyncResult, sync
from scheduler.plan import timed_sessions, utc
from store import audit
from store.calendar import SessionMove


class MoveError(ValueError):
    """The move cannot be made; the message says why."""


@dataclass
class Moved:
    number: int
    session_id: str
    old_start: datetime
    start: datetime
    end: datetime | None
    planned: SyncResult


async def move_session(
    session: AsyncSession, calendar: Calendar, key: str | int, start: datetime, now: datetime
) -> Moved:
    """Move session `key` (id or number) to `start`, keeping its length, inside the
    caller's transaction: roll it back for a dry run."""
    chosen = calendar.session(key)
    if chosen is None:
        known = ", ".join(f"{n} ({s.id})" for n, s in enumerate(calendar.sessions, start=1))
        raise MoveError(f"there is no session {key!r}; the sessions are {known or 'none'}")
    if start <= now:
        raise MoveError("the new start is in the past")
    number = calendar.sessions.index(chosen) + 1
    timed = {t.id: t for t in timed_sessions(calendar, await load_moves(session))}[chosen.id]
    end = start + (timed.end - timed.start) if timed.end else None
    session.info.pop(MOVES_READ, None)
    row = await session.get(SessionMove, chosen.id)
    if row is None:
        row = SessionMove(session_id=chosen.id)
        session.add(row)
    row.original_start = utc(calendar.localise(chosen.start))
    row.start, row.end, row.moved_at = utc(start), utc(end) if end else None, now
    await session.flush()
    await audit.append(
        session,
        "session.moved",
        {"session": chosen.id, "from": timed.start.isoformat(), "to": utc(start).isoformat()},
        at=now,
    )
    planned = await sync(session, calendar, now)
    return Moved(number, chosen.id, timed.start, utc(start), end, planned)
