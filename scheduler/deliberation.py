"""When the small-group conversation's work is due, as rows claimed once.

The assembly file's prompts open at their session's start (as moved) plus `after_minutes`;
`plan_openings` keeps one pending "open" row per prompt of the current allocation in line
with that. Nudges, digests and closes are added by the conversation as it goes. `claim`
takes due rows with FOR UPDATE SKIP LOCKED (SQLite serialises writers instead): the
caller runs each and marks it done in the same transaction, so two instances never both
run one, and a crash leaves it pending for the next tick.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from flows.deliberation_config import Prompt
from scheduler.config import Calendar
from scheduler.facts import load_moves
from scheduler.plan import timed_sessions
from store.db import dialect_insert
from store.deliberation import CANCELLED, DONE, JOB_OPEN, PENDING, DeliberationJob

J = DeliberationJob


async def add_job(
    session: AsyncSession,
    kind: str,
    key: str,
    due_at: datetime,
    *,
    table_prompt_id: int | None = None,
    participant_id: str | None = None,
    payload: dict | None = None,
    now: datetime,
) -> bool:
    """Insert a job unless one with `key` exists (whatever its state); True if inserted."""
    inserted = await session.execute(
        dialect_insert(session, J)
        .values(
            kind=kind,
            key=key,
            due_at=due_at,
            status=PENDING,
            table_prompt_id=table_prompt_id,
            participant_id=participant_id,
            payload=payload or {},
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return bool(inserted.rowcount)


async def move_job(session: AsyncSession, key: str, due_at: datetime) -> None:
    """A pending job's new time (a close brought forward once the table has answered)."""
    await session.execute(update(J).where(J.key == key, J.status == PENDING).values(due_at=due_at))


async def cancel_jobs(
    session: AsyncSession, table_prompt_id: int, kinds: Iterable[str], *, why: str
) -> None:
    await session.execute(
        update(J)
        .where(J.table_prompt_id == table_prompt_id, J.kind.in_(list(kinds)), J.status == PENDING)
        .values(status=CANCELLED, result=why)
    )


async def claim(session: AsyncSession, now: datetime, *, limit: int = 20) -> list[DeliberationJob]:
    """Due pending jobs, locked for this transaction (others skip them), oldest first."""
    return list(
        (
            await session.execute(
                select(J)
                .where(J.status == PENDING, J.due_at <= now)
                .order_by(J.due_at, J.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    )


def done(job: DeliberationJob, now: datetime, result: str = "done") -> None:
    job.status, job.done_at, job.result = DONE, now, result[:64]


def opening_key(run_id: str, prompt_id: str) -> str:
    return f"open:{run_id}:{prompt_id}"


def openings(
    calendar: Calendar | None, moves: dict, prompts: Iterable[Prompt]
) -> dict[str, datetime]:
    """When each scheduled prompt opens: its session's start (moves applied) + after."""
    if calendar is None:
        return {}
    starts = {t.session.id: t.start for t in timed_sessions(calendar, moves)}
    return {
        p.id: starts[p.session] + timedelta(minutes=p.after_minutes)
        for p in prompts
        if p.session is not None and p.session in starts
    }


async def plan_openings(
    session: AsyncSession,
    calendar: Calendar | None,
    prompts: list[Prompt],
    run_id: str,
    now: datetime,
) -> int:
    """One pending "open" row per scheduled prompt of allocation `run_id`, at its time
    (moved with its session); returns the rows added."""
    wanted = openings(calendar, await load_moves(session), prompts)
    existing = {
        j.key: j
        for j in (
            await session.execute(
                select(J).where(J.kind == JOB_OPEN, J.key.like(f"open:{run_id}:%"))
            )
        ).scalars()
    }
    added = 0
    for prompt_id, due in wanted.items():
        key = opening_key(run_id, prompt_id)
        job = existing.get(key)
        if job is None:
            added += await add_job(
                session, JOB_OPEN, key, due, payload={"prompt": prompt_id}, now=now
            )
        elif job.status == PENDING and job.due_at != due:
            job.due_at = due
    return added
