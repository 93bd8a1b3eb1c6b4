"""What calendar replies mean for the store, written in the reply's own transaction."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from flows import events
from flows.model import Event
from scheduler.config import CalendarSource
from scheduler.jobs import sync
from store.calendar import BriefingRead, CalendarPreference
from store.models import Participant


async def briefing_time_changed(
    calendar_of: CalendarSource,
    session: AsyncSession,
    participant: Participant,
    event: Event,
    now: datetime,
) -> None:
    pref = await session.get(CalendarPreference, participant.id)
    if pref is None:
        session.add(
            CalendarPreference(
                participant_id=participant.id, briefing_time=event.data["time"], updated_at=now
            )
        )
    else:
        pref.briefing_time, pref.updated_at = event.data["time"], now
    await session.flush()
    calendar = calendar_of()
    if calendar is not None:  # their pending briefings move to the new time at once
        await sync(session, calendar, now, only=[participant.id])


async def _read_row(
    session: AsyncSession, participant: Participant, briefing: str, channel: str, now: datetime
) -> BriefingRead:
    read = (
        await session.execute(
            select(BriefingRead).where(
                BriefingRead.participant_id == participant.id, BriefingRead.briefing == briefing
            )
        )
    ).scalar_one_or_none()
    if read is None:
        read = BriefingRead(
            participant_id=participant.id,
            briefing=briefing,
            channel=channel,
            pages_sent=1,
            pages=1,
            sent_at=now,
        )
        session.add(read)
    return read


async def briefing_paged(
    session: AsyncSession, participant: Participant, event: Event, now: datetime
) -> None:
    read = await _read_row(session, participant, event.data["briefing"], "sms", now)
    read.pages_sent = max(read.pages_sent or 0, int(event.data["page"]))
    read.pages = int(event.data["pages"])


async def briefing_read(
    session: AsyncSession, participant: Participant, event: Event, now: datetime
) -> None:
    read = await _read_row(
        session, participant, event.data["briefing"], event.data.get("channel", "telegram"), now
    )
    read.read_at = read.read_at or now


async def read_counts(session: AsyncSession) -> dict[str, tuple[int, int]]:
    """Per briefing: how many members it was sent to, and how many said they read it."""
    rows = await session.execute(
        select(
            BriefingRead.briefing,
            func.count(),
            func.count().filter(BriefingRead.read_at.is_not(None)),
        ).group_by(BriefingRead.briefing)
    )
    return {briefing: (int(sent), int(read)) for briefing, sent, read in rows}


def register(hooks, calendar_of: CalendarSource) -> None:
    """Join the conversations: calendar replies become rows (`hooks`: bot.hooks.Hooks)."""
    hooks.on_event(events.BRIEFING_TIME_CHANGED, partial(briefing_time_changed, calendar_of))
    hooks.on_event(events.BRIEFING_PAGED, briefing_paged)
    hooks.on_event(events.BRIEFING_READ, briefing_read)
