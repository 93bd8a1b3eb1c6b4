"""The calendar as plain data for a panel member's conversations (`ctx.facts.calendar`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import time
from functools import partial
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from flows.facts import CalendarFacts
from scheduler import audience
from scheduler.config import Calendar, CalendarSource, pick
from scheduler.paging import render_briefing
from scheduler.plan import Member, Move, timed_sessions
from store.calendar import CalendarPreference, SessionMove
from store.models import Participant
from store.recruitment import CONFIRMED, Selection

# The session moves as the current transaction read them: a group of inbound turns asks
# for them once per panel member. Only `scheduler.moves.move_session` changes them (it
# forgets them here first); another transaction reads them again.
MOVES_READ = "calendar_moves"


async def load_moves(session: AsyncSession) -> dict[str, Move]:
    transaction = session.sync_session.get_transaction()
    read = session.info.get(MOVES_READ)
    if read is None or read[0] is not transaction or transaction is None:
        rows = (await session.execute(select(SessionMove))).scalars()
        moves = {m.session_id: Move(m.original_start, m.start, m.end) for m in rows}
        read = session.info[MOVES_READ] = (session.sync_session.get_transaction(), moves)
    return dict(read[1])


async def member_of(session: AsyncSession, participant: Participant) -> Member:
    pref = await session.get(CalendarPreference, participant.id)
    return _member(participant, pref.briefing_time if pref else None)


def _member(participant: Participant, briefing_time: str | None) -> Member:
    chosen = time.fromisoformat(briefing_time) if briefing_time else None
    return Member(participant.id, participant.timezone, chosen, participant.language)


def calendar_facts(
    calendar: Calendar, member: Member, moves: Mapping[str, Move] | None = None
) -> dict[str, Any]:
    """Sessions and briefings in the member's language, times as ISO UTC strings."""
    language, default = member.language, calendar.default_language
    sessions = []
    for timed in timed_sessions(calendar, moves):
        s = timed.session
        sessions.append(
            {
                "id": s.id,
                "title": pick(s.title, language, default),
                "start": timed.start.isoformat(),
                "end": timed.end.isoformat() if timed.end else None,
                "place": pick(s.place, language, default) or None,
                "call_in": s.call_in,
            }
        )
    briefings = {}
    for b in calendar.briefings:
        rendered = render_briefing(calendar, b.id, language)
        briefings[b.id] = {
            "title": rendered.title,
            "document": rendered.document,
            "pages": list(rendered.pages),
        }
    clock = member.briefing_time or calendar.schedule.briefing_time
    return {
        "timezone": member.timezone or calendar.schedule.timezone,
        "default_timezone": calendar.schedule.timezone,
        "briefing_time": f"{clock:%H:%M}",
        "quiet_hours": str(calendar.schedule.quiet_hours),
        "sessions": sessions,
        "briefings": briefings,
    }


async def panel_calendar(
    calendar_of: CalendarSource, session: AsyncSession, participant: Participant
) -> dict[str, Any]:
    calendar = calendar_of()
    if calendar is None or not await audience.on_panel(session, participant.id):
        return {}
    member = await member_of(session, participant)
    return {"calendar": panel_facts(calendar, member, await load_moves(session))}


FACTS_KEPT = 256  # panel facts kept per calendar: languages x time zones x briefing times


def panel_facts(calendar: Calendar, member: Member, moves: Mapping[str, Move]) -> CalendarFacts:
    """`calendar_facts` as the flows take them, made once per language, time zone, briefing
    time and session moves and kept with the calendar (a reloaded calendar starts afresh):
    every turn of a panel member needs them, and making them costs milliseconds."""
    kept = calendar.memo().setdefault("panel facts", {})
    key = (member.language, member.timezone, member.briefing_time, tuple(sorted(moves.items())))
    found = kept.get(key)
    if found is None:
        if len(kept) >= FACTS_KEPT:
            kept.clear()
        found = kept[key] = CalendarFacts.from_plain(calendar_facts(calendar, member, moves))
    return found


# Who of a group is on the panel (as `audience.on_panel` says), with their own briefing time.
_PANEL_AMONG = (
    select(Selection.participant_id, CalendarPreference.briefing_time)
    .outerjoin(CalendarPreference, CalendarPreference.participant_id == Selection.participant_id)
    .where(
        Selection.participant_id.in_(bindparam("ids", expanding=True)),
        Selection.status == CONFIRMED,
    )
)


async def panel_calendar_for_group(
    calendar_of: CalendarSource, session: AsyncSession, participants: Sequence[Participant]
) -> Callable[[Participant], dict[str, Any]]:
    """`panel_calendar` for many people: who is on the panel and their briefing times in
    one query, the session moves once (only when someone is on the panel)."""
    calendar = calendar_of()
    ids = sorted({p.id for p in participants})
    panel: dict[str, str | None] = {}
    if calendar is not None and ids:
        panel = dict((await session.execute(_PANEL_AMONG, {"ids": ids})).all())
    moves = await load_moves(session) if panel else {}

    def facts_of(participant: Participant) -> dict[str, Any]:
        if participant.id not in panel:
            return {}
        member = _member(participant, panel[participant.id])
        return {"calendar": panel_facts(calendar, member, moves)}

    return facts_of


def register(hooks, calendar_of: CalendarSource) -> None:
    """Give panel members' conversations the calendar (`hooks`: bot.hooks.Hooks)."""
    hooks.provide_facts(
        partial(panel_calendar, calendar_of), partial(panel_calendar_for_group, calendar_of)
    )
