"""Due work as rows: planned from the calendar, claimed and run exactly once.

`sync` writes the plan into `calendar_jobs` (new rows, new times for pending ones, pending
ones no longer wanted cancelled). `run_due` claims due rows with FOR UPDATE SKIP LOCKED
(SQLite serialises writers instead) and, in the same transaction, queues the messages,
marks the row done and appends the audit event: two instances never both send a job, and
a crash before the commit leaves it pending for the next tick, sent once, late.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flows.briefing import PROMPT, briefing_messages, reminder_messages
from flows.i18n import translator
from flows.model import State
from scheduler import audience
from scheduler.config import Calendar
from scheduler.facts import calendar_facts, load_moves, member_of
from scheduler.plan import (
    BRIEFING,
    REMINDER,
    Due,
    Member,
    after_quiet_hours,
    plan,
    superseded,
    timed_sessions,
)
from store import audit
from store.calendar import CANCELLED, DONE, PENDING, SKIPPED, BriefingRead, CalendarJob
from store.calendar import CalendarPreference as Preference
from store.contacts import preferred_contact
from store.db import dialect_insert
from store.models import Participant

# How due messages reach the outbox: the service's writer (bot.services.outgoing.enqueuer),
# called as `enqueue(session, participant, contact, messages, *, prompt_id, now, not_before,
# expires_at)` and returning the rows queued. Passed in: the scheduler knows no channel.
Enqueue = Callable[..., Awaitable[int]]

PLANNED_KINDS = (BRIEFING, REMINDER)
# A job run this long after its planned time counts as late: it then waits out quiet hours.
LATE_AFTER = timedelta(minutes=15)


@dataclass
class SyncResult:
    inserted: int = 0
    rescheduled: int = 0
    cancelled: int = 0


async def load_members(
    session: AsyncSession, calendar: Calendar, only: Iterable[str] | None = None
) -> list[Member]:
    """The panel (or `only` those of it) as the planner sees them, opted-out people left out."""
    ids = await audience.panel(session)
    if only is not None:
        ids &= set(only)
    if not ids:
        return []
    rows = (
        await session.execute(
            select(Participant, Preference.briefing_time)
            .outerjoin(Preference, Preference.participant_id == Participant.id)
            .where(Participant.id.in_(ids), Participant.opted_out.is_(False))
            .order_by(Participant.id)
        )
    ).all()
    return [
        Member(p.id, p.timezone, time.fromisoformat(chosen) if chosen else None, p.language)
        for p, chosen in rows
    ]


async def sync(
    session: AsyncSession, calendar: Calendar, now: datetime, *, only: Iterable[str] | None = None
) -> SyncResult:
    """Bring the pending jobs in line with the plan (for everyone, or `only` some people)."""
    only = set(only) if only is not None else None
    members = await load_members(session, calendar, only)
    # Everything planned; only what has not expired gets a new row (an expired pending row
    # stays, and the claimer records it as skipped).
    wanted = {d.key: d for d in plan(calendar, members, await load_moves(session))}
    # Plain rows, not ORM objects: the whole panel's jobs are read on every plan.
    J = CalendarJob
    query = select(
        J.id,
        J.kind,
        J.participant_id,
        J.subject,
        J.occurrence,
        J.status,
        J.send_at,
        J.due_at,
        J.expires_at,
    ).where(J.kind.in_(PLANNED_KINDS))
    if only is not None:
        query = query.where(J.participant_id.in_(only))
    existing = {
        (j.kind, j.participant_id, j.subject, j.occurrence): j
        for j in (await session.execute(query)).all()
    }
    result = SyncResult()
    new = [
        d
        for key, d in wanted.items()
        if key not in existing and (d.expires_at is None or d.expires_at > now)
    ]
    if new:
        rows = [
            dict(
                kind=d.kind,
                participant_id=d.participant_id,
                subject=d.subject,
                occurrence=d.occurrence,
                due_at=d.due_at,
                send_at=d.send_at,
                expires_at=d.expires_at,
                status=PENDING,
                payload={},
                created_at=now,
                updated_at=now,
            )
            for d in new
        ]
        for start in range(0, len(rows), 500):
            await session.execute(
                dialect_insert(session, CalendarJob)
                .values(rows[start : start + 500])
                .on_conflict_do_nothing()
            )
        result.inserted = len(new)
    for key, job in existing.items():
        if job.status != PENDING:
            continue
        due = wanted.get(key)
        if due is None:
            changed = await session.execute(
                update(J)
                .where(J.id == job.id, J.status == PENDING)
                .values(status=CANCELLED, result="no longer planned", updated_at=now)
            )
            result.cancelled += changed.rowcount
        elif (job.send_at, job.due_at, job.expires_at) != (due.send_at, due.due_at, due.expires_at):
            changed = await session.execute(
                update(J)
                .where(J.id == job.id, J.status == PENDING)
                .values(
                    send_at=due.send_at,
                    due_at=due.due_at,
                    expires_at=due.expires_at,
                    updated_at=now,
                )
            )
            result.rescheduled += changed.rowcount
    if result.inserted or result.rescheduled or result.cancelled:
        await audit.append(
            session,
            "calendar.planned",
            {
                "inserted": result.inserted,
                "rescheduled": result.rescheduled,
                "cancelled": result.cancelled,
            },
            at=now,
        )
    return result


async def run_due(
    sessions: async_sessionmaker[AsyncSession],
    enqueue: Enqueue,
    calendar: Calendar,
    now: datetime,
    *,
    owner: str = "local",
    batch: int = 50,
) -> int:
    """Claim and run every job due at `now`, a batch per transaction. Returns jobs run."""
    ran = 0
    while True:
        async with sessions.begin() as session:
            jobs = (
                (
                    await session.execute(
                        select(CalendarJob)
                        .where(
                            CalendarJob.status == PENDING,
                            CalendarJob.send_at <= now,
                            CalendarJob.kind.in_(PLANNED_KINDS),
                        )
                        .order_by(CalendarJob.send_at, CalendarJob.id)
                        .limit(batch)
                        .with_for_update(skip_locked=True)
                    )
                )
                .scalars()
                .all()
            )
            if not jobs:
                break
            # Lock the people in one order, before any audit append, so a webhook turn
            # (participant, then audit head) can never wait on us in a cycle.
            ids = sorted({j.participant_id for j in jobs})
            people = {
                p.id: p
                for p in (
                    await session.execute(
                        select(Participant)
                        .where(Participant.id.in_(ids))
                        .order_by(Participant.id)
                        .with_for_update()
                    )
                ).scalars()
            }
            panel = await audience.panel(session)
            moves = await load_moves(session)
            for job in jobs:
                await _run(
                    session,
                    enqueue,
                    calendar,
                    job,
                    people.get(job.participant_id),
                    panel,
                    moves,
                    now,
                    owner,
                )
            ran += len(jobs)
        if len(jobs) < batch:
            break
    return ran


async def _finish(
    session: AsyncSession, job: CalendarJob, status: str, reason: str, now: datetime
) -> int:
    job.status, job.result, job.updated_at, job.done_at = status, reason, now, now
    await audit.append(
        session,
        f"calendar.{status}",
        {"kind": job.kind, "subject": job.subject, "occurrence": job.occurrence, "reason": reason},
        participant_id=job.participant_id or None,
        at=now,
    )
    return 0


async def _run(
    session: AsyncSession,
    enqueue: Enqueue,
    calendar: Calendar,
    job: CalendarJob,
    participant: Participant | None,
    panel: set[str],
    moves,
    now: datetime,
    owner: str,
) -> int:
    if job.expires_at is not None and now >= job.expires_at:
        return await _finish(session, job, SKIPPED, "expired", now)
    due = Due(
        job.kind,
        job.participant_id,
        job.subject,
        job.occurrence,
        job.due_at,
        job.send_at,
        job.expires_at,
    )
    if superseded(calendar, due, now):
        return await _finish(session, job, SKIPPED, "superseded", now)
    if participant is None or job.participant_id not in panel:
        return await _finish(session, job, CANCELLED, "not on the panel", now)
    if participant.opted_out:
        return await _finish(session, job, SKIPPED, "opted out", now)
    contact = await preferred_contact(session, participant.id)
    if contact is None:
        return await _finish(session, job, SKIPPED, "unreachable", now)
    member = await member_of(session, participant)
    facts = calendar_facts(calendar, member, moves)
    t = translator(participant.language)
    state = State.from_json(participant.state, language=participant.language)
    memory = state.data.setdefault("calendar", {})
    if job.kind == BRIEFING:
        briefing = facts["briefings"].get(job.subject)
        if briefing is None:
            return await _finish(session, job, CANCELLED, "not in the calendar", now)
        messages = briefing_messages(t, contact.channel, briefing)
        memory.update(briefing=job.subject, page=1)
        pages = 1 if contact.channel == "telegram" else len(briefing["pages"])
        await _record_sent(session, participant.id, job.subject, contact.channel, pages, now)
    else:
        session_facts = next((s for s in facts["sessions"] if s["id"] == job.subject), None)
        timed = {s.id: s for s in timed_sessions(calendar, moves)}.get(job.subject)
        if (
            session_facts is None
            or timed is None
            or not job.occurrence.endswith(f"@{timed.start:%Y%m%dT%H%MZ}")
        ):
            return await _finish(session, job, CANCELLED, "session moved or removed", now)
        messages = reminder_messages(t, contact.channel, session_facts, facts)
        memory["session"] = job.subject
    participant.state = state.to_json()
    late = now - job.send_at > LATE_AFTER
    zone = ZoneInfo(facts["timezone"])
    # On time: at its planned moment (a chosen briefing time is honoured). Late: not
    # before quiet hours end.
    not_before = after_quiet_hours(now, zone, calendar.schedule.quiet_hours) if late else now
    queued = await enqueue(
        session,
        participant,
        contact,
        messages,
        prompt_id=PROMPT,
        now=now,
        not_before=not_before,
        expires_at=job.expires_at,
    )  # a reminder lapses when its session starts
    job.status, job.updated_at, job.done_at, job.done_by = DONE, now, now, owner
    job.payload = {"channel": contact.channel, "late": late, "parts": queued}
    await audit.append(
        session,
        "calendar.sent",
        {
            "kind": job.kind,
            "subject": job.subject,
            "occurrence": job.occurrence,
            "channel": contact.channel,
            "late": late,
        },
        participant_id=participant.id,
        at=now,
    )
    return queued


async def _record_sent(
    session: AsyncSession,
    participant_id: str,
    briefing: str,
    channel: str,
    pages: int,
    now: datetime,
) -> None:
    read = (
        await session.execute(
            select(BriefingRead).where(
                BriefingRead.participant_id == participant_id, BriefingRead.briefing == briefing
            )
        )
    ).scalar_one_or_none()
    if read is None:
        session.add(
            BriefingRead(
                participant_id=participant_id,
                briefing=briefing,
                channel=channel,
                pages_sent=1,
                pages=pages,
                sent_at=now,
            )
        )
    else:
        read.channel, read.pages_sent, read.pages, read.sent_at = channel, 1, pages, now
