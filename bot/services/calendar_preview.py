"""What the calendar will send, when, to how many, and what it will cost on SMS."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.render import render
from bot.settings import Settings
from flows.briefing import PROMPT, reminder_messages
from flows.i18n import translator
from scheduler.config import Calendar, pick
from scheduler.facts import calendar_facts, load_moves
from scheduler.jobs import load_members
from scheduler.paging import sms_cost
from scheduler.plan import BRIEFING, Member, plan
from store.calendar import PENDING, CalendarJob
from store.contacts import preferred_contacts


@dataclass
class PreviewRow:
    send_at: datetime  # UTC; several people's items going at one moment share a row
    kind: str
    subject: str
    title: str
    people: int = 0
    by_channel: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    sms_segments: int = 0  # what is certain: the first page of a briefing
    sms_segments_all_pages: int = 0  # if every SMS reader asks for every page


async def members_with_channels(session: AsyncSession, calendar: Calendar) -> list[Member]:
    """The panel with the channel each would be reached on now (the one contact choice:
    Telegram that still works, else SMS they agreed to)."""
    members = await load_members(session, calendar)
    chosen = await preferred_contacts(session, [m.id for m in members])
    out = []
    for member in members:
        contact = chosen.get(member.id)
        out.append(
            Member(
                member.id,
                member.timezone,
                member.briefing_time,
                member.language,
                contact.channel if contact is not None else None,
            )
        )
    return out


def reminder_segments(
    calendar: Calendar, member: Member, session_id: str, moves, settings: Settings
) -> int:
    facts = calendar_facts(calendar, member, moves)
    session = next(s for s in facts["sessions"] if s["id"] == session_id)
    messages = reminder_messages(translator(member.language), "sms", session, facts)
    return sum(
        part.segments
        for message in messages
        for part in render(message, "sms", member.language, PROMPT, settings.sms_max_segments)
    )


async def preview(
    session: AsyncSession, calendar: Calendar, settings: Settings, start: datetime, until: datetime
) -> list[PreviewRow]:
    """Planned items going out in [start, until), less those already done, one row per
    moment and subject."""
    members = await members_with_channels(session, calendar)
    by_id = {m.id: m for m in members}
    moves = await load_moves(session)
    settled = {
        (j.kind, j.participant_id, j.subject, j.occurrence)
        for j in (
            await session.execute(select(CalendarJob).where(CalendarJob.status != PENDING))
        ).scalars()
    }
    rows: dict[tuple, PreviewRow] = {}
    reminder_cost: dict[tuple[str, str, str], int] = {}
    for item in plan(calendar, members, moves):
        if not start <= item.send_at < until or item.key in settled:
            continue
        member = by_id[item.participant_id]
        if member.channel is None:
            continue
        key = (item.send_at, item.kind, item.subject)
        row = rows.get(key)
        if row is None:
            if item.kind == BRIEFING:
                title = pick(calendar.briefing(item.subject).title, calendar.default_language)
            else:
                title = pick(calendar.session(item.subject).title, calendar.default_language)
            row = rows[key] = PreviewRow(item.send_at, item.kind, item.subject, title)
        row.people += 1
        row.by_channel[member.channel] += 1
        if member.channel != "sms":
            continue
        if item.kind == BRIEFING:
            cost = sms_cost(calendar, item.subject, member.language)
            row.sms_segments += cost.first_page_segments
            row.sms_segments_all_pages += cost.all_pages_segments
        else:
            cache = (item.subject, member.language, member.timezone or "")
            if cache not in reminder_cost:
                reminder_cost[cache] = reminder_segments(
                    calendar, member, item.subject, moves, settings
                )
            row.sms_segments += reminder_cost[cache]
            row.sms_segments_all_pages += reminder_cost[cache]
    return sorted(rows.values(), key=lambda r: (r.send_at, r.kind, r.subject))


def briefing_costs(calendar: Calendar) -> list[tuple[str, str, int, int, int, str]]:
    """(briefing, language, pages, first-page segments, all-pages segments, encoding)."""
    out = []
    for briefing in calendar.briefings:
        for language in calendar.languages:
            cost = sms_cost(calendar, briefing.id, language)
            out.append(
                (
                    briefing.id,
                    language,
                    cost.pages,
                    cost.first_page_segments,
                    cost.all_pages_segments,
                    cost.encoding,
                )
            )
    return out
