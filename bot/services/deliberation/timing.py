"""The conversation's timed work, and relaying what members' turns stored.

`run_due` is one tick: plan the file's prompts, relay every table with messages waiting
(each table in its own transaction), then claim due jobs one per transaction and run
them: open a scheduled prompt, nudge the silent, send a digest, close a prompt.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.relay import Relay
from bot.services.conflicts import retry_conflicts
from bot.services.deliberation.closing import close_table
from bot.services.deliberation.opening import Asked, ask, open_at
from bot.services.deliberation.relaying import answered, marks, relay_table, say, send_digest
from bot.services.deliberation.tables import lock_prompt, seated
from bot.services.deliberation.types import DeliberationError
from flows import events
from flows.deliberation import nudge_text
from flows.i18n import translator
from scheduler.deliberation import add_job, claim, done, plan_openings
from store import audit
from store.deliberation import (
    CLOSED,
    JOB_CLOSE,
    JOB_DIGEST,
    JOB_NUDGE,
    JOB_OPEN,
    OPEN,
    PAUSED,
    Contribution,
    DeliberationJob,
    PromptMember,
    TablePrompt,
)
from store.groups import GroupSeat, current_run
from store.models import utcnow


async def run_due(relay: Relay, *, now: datetime | None = None) -> int:
    """See bot/services/deliberation/__init__.py. Returns the jobs run."""
    now = now or utcnow()
    if relay.assembly is not None and relay.assembly.prompts:
        async with relay.write_turn(), relay.sessions.begin() as session:
            run = await current_run(session)
            if run is not None:
                await plan_openings(
                    session, relay.calendar, relay.assembly.prompts, run.run_id, now
                )
    queued = await seat_newcomers(relay, now=now)
    queued += await relay_waiting(relay, now=now)
    ran = 0
    while True:
        result = await retry_conflicts(lambda: _one_job(relay, now))
        if result is None:
            break
        ran += 1
        queued += result
    if queued:
        relay.outbox_signal.set()
    return ran


async def relay_waiting(relay: Relay, *, now: datetime | None = None) -> int:
    """Relay every open table with messages waiting; rows queued."""
    now = now or utcnow()
    async with relay.sessions() as session:
        ids = list(
            (
                await session.execute(
                    select(Contribution.table_prompt_id)
                    .join(TablePrompt, TablePrompt.id == Contribution.table_prompt_id)
                    .where(
                        Contribution.relayed_at.is_(None),
                        Contribution.held.is_(False),
                        Contribution.hidden_at.is_(None),
                        TablePrompt.status == OPEN,
                    )
                    .distinct()
                )
            ).scalars()
        )
    queued = 0
    for tp_id in sorted(ids):

        async def once(tp_id: int = tp_id) -> int:
            async with relay.write_turn(), relay.sessions.begin() as session:
                tp = await lock_prompt(session, tp_id)
                if tp is None or tp.status != OPEN:
                    return 0
                return await relay_table(session, relay, tp, now)

        queued += await retry_conflicts(once)
    if queued:
        relay.outbox_signal.set()
    return queued


async def seat_newcomers(relay: Relay, *, now: datetime) -> int:
    """Put the open prompt to members moved to a table since it opened; rows queued."""
    async with relay.sessions() as session:
        pairs = (
            await session.execute(
                select(TablePrompt.id, GroupSeat.participant_id)
                .join(
                    GroupSeat,
                    (GroupSeat.run_id == TablePrompt.run_id)
                    & (GroupSeat.round == TablePrompt.round)
                    & (GroupSeat.table_no == TablePrompt.table_no),
                )
                .outerjoin(
                    PromptMember,
                    (PromptMember.table_prompt_id == TablePrompt.id)
                    & (PromptMember.participant_id == GroupSeat.participant_id),
                )
                .where(TablePrompt.status != CLOSED, PromptMember.id.is_(None))
            )
        ).all()
    waiting: dict[int, set[str]] = {}
    for tp_id, pid in pairs:
        waiting.setdefault(tp_id, set()).add(pid)
    queued = 0
    for tp_id, ids in sorted(waiting.items()):

        async def once(tp_id: int = tp_id, ids: set[str] = ids) -> int:
            async with relay.write_turn(), relay.sessions.begin() as session:
                tp = await lock_prompt(session, tp_id)
                if tp is None or tp.status == CLOSED:
                    return 0
                table = await seated(session, tp.run_id, tp.round, tp.table_no, lock=True)
                new = ids - set(await marks_of(session, tp))
                seats = [s for s in table.active if s.participant.id in new]
                queued = await ask(session, relay, tp, table, seats, now) if seats else 0
                await marks(session, tp, sorted(new))  # asked, or unreachable: not again
                return queued

        queued += await retry_conflicts(once)
    return queued


async def marks_of(session: AsyncSession, tp: TablePrompt) -> list[str]:
    return list(
        (
            await session.execute(
                select(PromptMember.participant_id).where(PromptMember.table_prompt_id == tp.id)
            )
        ).scalars()
    )


async def _one_job(relay: Relay, now: datetime) -> int | None:
    """Claim and run one due job in its own transaction; None when none is due."""
    async with relay.write_turn(), relay.sessions.begin() as session:
        jobs = await claim(session, now, limit=1)
        if not jobs:
            return None
        job = jobs[0]
        runner = {
            JOB_OPEN: _open,
            JOB_NUDGE: _nudge,
            JOB_DIGEST: _digest,
            JOB_CLOSE: _close,
        }.get(job.kind)
        if runner is None:
            done(job, now, "unknown kind")
            return 0
        queued, result = await runner(session, relay, job, now)
        done(job, now, result)
        return queued


async def _open(session: AsyncSession, relay: Relay, job: DeliberationJob, now: datetime):
    prompt_id = job.payload.get("prompt")
    prompts = relay.assembly.prompts if relay.assembly else []
    prompt = next((p for p in prompts if p.id == prompt_id), None)
    run = await current_run(session)
    if prompt is None:
        return 0, "no longer in the assembly file"
    if run is None or not job.key.startswith(f"open:{run.run_id}:"):
        return 0, "allocation replaced"
    if job.due_at + timedelta(minutes=prompt.minutes) <= now:
        return 0, "missed: its time is over"
    try:
        opened = await open_at(
            session,
            relay,
            run,
            Asked(prompt.id, prompt),
            prompt.round,
            None,
            by="schedule",
            now=now,
        )
    except DeliberationError as exc:
        return 0, str(exc)
    return opened.messages, f"opened at {len(opened.tables)} tables"


async def _live(session: AsyncSession, job: DeliberationJob) -> TablePrompt | None:
    tp = await lock_prompt(session, job.table_prompt_id) if job.table_prompt_id else None
    return tp if tp is not None and tp.status != CLOSED else None


async def _nudge(session: AsyncSession, relay: Relay, job: DeliberationJob, now: datetime):
    tp = await _live(session, job)
    if tp is None:
        return 0, "closed"
    if tp.status == PAUSED:  # nobody is nudged to write to a paused table: a minute later
        later = now + timedelta(minutes=1)
        if later < tp.closes_at:
            key = f"nudge:{tp.id}:{later.isoformat()}"
            await add_job(session, JOB_NUDGE, key, later, table_prompt_id=tp.id, now=now)
        return 0, "paused"
    table = await seated(session, tp.run_id, tp.round, tp.table_no, lock=True)
    have = await answered(session, tp)
    silent = [s for s in table.active if s.participant.id not in have]
    member_marks = await marks(session, tp, [s.participant.id for s in silent])
    queued = 0
    for seat in silent:
        mark = member_marks[seat.participant.id]
        if mark.nudged_at is not None:
            continue
        mark.nudged_at = now
        t = translator(seat.participant.language)
        queued += await say(session, relay.settings, seat, [nudge_text(t, seat.letter)], now)
        await audit.append(
            session,
            events.NUDGED,
            {"table_prompt": tp.id, "round": tp.round, "table": tp.table_no, "letter": seat.letter},
            participant_id=seat.participant.id,
            at=now,
        )
    return queued, f"nudged {len(silent)}"


async def _digest(session: AsyncSession, relay: Relay, job: DeliberationJob, now: datetime):
    tp = await _live(session, job)
    if tp is None:
        return 0, "closed"
    table = await seated(session, tp.run_id, tp.round, tp.table_no, lock=True)
    seat = table.seat_of(job.participant_id)
    if seat is None or not seat.active:
        return 0, "no longer at the table"
    return await send_digest(session, relay, tp, table, seat, now), "sent"


async def _close(session: AsyncSession, relay: Relay, job: DeliberationJob, now: datetime):
    tp = await _live(session, job)
    if tp is None:
        return 0, "already closed"
    reason = "answered" if tp.limit_lifted_at is not None and now < tp.closes_at else "timer"
    return await close_table(session, relay, tp, now, reason=reason, by="schedule"), reason
