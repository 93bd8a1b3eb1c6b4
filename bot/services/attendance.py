"""LATE and CAN'T COME: the notices a participant's turn records, and forwarding them to
every organiser."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.organisers import organiser_contacts, record
from bot.services.outgoing import enqueue
from bot.settings import Settings
from flows.facts import ScheduledSession
from flows.i18n import translator
from flows.model import Outbound, Turn
from scheduler.config import Calendar
from scheduler.facts import load_moves
from scheduler.plan import timed_sessions
from store.calendar import AttendanceNotice
from store.models import Participant
from store.recruitment import PoolEntry


async def scheduled_sessions(
    session: AsyncSession, cal: Calendar | None
) -> tuple[list[ScheduledSession], str]:
    """The sessions of the running calendar (moves applied, in time order), and its zone.
    The flow picks the coming ones by its own clock."""
    if cal is None:
        return [], "UTC"
    found = []
    for number, timed in enumerate(timed_sessions(cal, await load_moves(session)), start=1):
        item = timed.session
        found.append(
            ScheduledSession(
                number=number,
                id=item.id,
                title=dict(item.title),
                start=timed.start,
                end=timed.end or timed.start,
                place=dict(item.place) if item.place else None,
                call_in=item.call_in,
            )
        )
    found.sort(key=lambda s: s.start)
    return found, cal.schedule.timezone


async def report_attendance(
    session: AsyncSession,
    settings: Settings,
    participant: Participant,
    *,
    text: str,
    turn: Turn,
    now: datetime,
    calendar: Calendar | None,
) -> int:
    """Record the notices a turn reported, then forward them (with what the person wrote)."""
    reported = [event for event in turn.events if event.kind == "attendance.reported"]
    if not reported:
        return 0
    for event in reported:
        session.add(
            AttendanceNotice(
                participant_id=participant.id,
                session_id=event.data.get("session"),
                kind=_report_kind(event.data),
                at=now,
            )
        )
    await session.flush()
    return await forward_attendance(
        session, settings, now, calendar=calendar, words={participant.id: text}
    )


def _report_kind(data: dict[str, Any]) -> str:
    """'late' or 'absent'. Emitters name it `report` (`kind` would clash with emit's own
    first argument); `kind` is read too, for events built without emit."""
    return "late" if (data.get("report") or data.get("kind")) == "late" else "absent"


async def forward_attendance(
    session: AsyncSession,
    settings: Settings,
    now: datetime,
    *,
    calendar: Calendar | None = None,
    words: dict[str, str] | None = None,
) -> int:
    """Tell every organiser about LATE / CAN'T COME notices not yet forwarded.

    Notices are locked (skipped if another instance holds them), so each goes out once; they
    stay unforwarded while there is no organiser to tell."""
    notices = (
        (
            await session.execute(
                select(AttendanceNotice)
                .where(AttendanceNotice.forwarded_at.is_(None))
                .order_by(AttendanceNotice.id)
                .with_for_update(skip_locked=True)
            )
        )
        .scalars()
        .all()
    )
    if not notices:
        return 0
    recipients = await organiser_contacts(session, settings.default_language)
    if not recipients:
        return 0
    numbers = {s.id: s.number for s in (await scheduled_sessions(session, calendar))[0]}
    refs = dict(
        (
            await session.execute(
                select(PoolEntry.participant_id, PoolEntry.external_id).where(
                    PoolEntry.participant_id.in_([n.participant_id for n in notices])
                )
            )
        ).all()
    )
    queued = 0
    for notice in notices:
        who = notice.participant_id + (
            f" ({refs[notice.participant_id]})" if refs.get(notice.participant_id) else ""
        )
        said = (words or {}).get(notice.participant_id)
        for _info, organiser, organiser_contact in recipients:
            t = translator(organiser.language)
            number = numbers.get(notice.session_id or "")
            if notice.kind == "late":
                line = (
                    t.gettext("{who} will be late for session {number}.", who=who, number=number)
                    if number
                    else t.gettext("{who} will be late.", who=who)
                )
            else:
                line = (
                    t.gettext("{who} cannot come to session {number}.", who=who, number=number)
                    if number
                    else t.gettext("{who} cannot come.", who=who)
                )
            if said:
                line += "\n" + t.gettext("Their message: {text}", text=said)
            queued += await enqueue(
                session,
                settings,
                organiser,
                organiser_contact,
                [Outbound(text=line, kind="attendance")],
                prompt_id=None,
                now=now,
            )
        notice.forwarded_at = now
        await record(
            session,
            "attendance.forwarded",
            None,
            notice=notice.id,
            kind=notice.kind,
            organisers=len(recipients),
        )
    return queued
