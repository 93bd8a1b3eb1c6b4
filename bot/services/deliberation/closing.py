"""Closing a table's prompt: what was kept back is relayed, digests are sent, and every
member is told the question is closed."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.relay import Relay
from bot.services.deliberation.relaying import answered, relay_table, say, send_digest
from bot.services.deliberation.tables import seated
from flows import events
from flows.deliberation import DIGEST, closed_text
from flows.i18n import translator
from scheduler.deliberation import cancel_jobs
from store import audit
from store.deliberation import CLOSED, JOB_CLOSE, JOB_DIGEST, JOB_NUDGE, TablePrompt


async def close_table(
    session: AsyncSession, relay: Relay, tp: TablePrompt, now: datetime, *, reason: str, by: str
) -> int:
    """Close one prompt (the caller holds its lock); rows queued."""
    table = await seated(session, tp.run_id, tp.round, tp.table_no, lock=True)
    queued = await relay_table(session, relay, tp, now, table=table, closing=True)
    for seat in table.active:
        if seat.mode == DIGEST:
            queued += await send_digest(session, relay, tp, table, seat, now)
    tp.status, tp.closed_at, tp.close_reason = CLOSED, now, reason[:32]
    await cancel_jobs(session, tp.id, (JOB_NUDGE, JOB_CLOSE, JOB_DIGEST), why="closed")
    for seat in table.active:
        queued += await say(
            session, relay.settings, seat, [closed_text(translator(seat.participant.language))], now
        )
    have = await answered(session, tp)
    await audit.append(
        session,
        events.PROMPT_CLOSED,
        {
            "table_prompt": tp.id,
            "prompt": tp.prompt_key,
            "round": tp.round,
            "table": tp.table_no,
            "reason": reason,
            "answered": len(have),
            "seated": len(table.seats),
            "by": by,
        },
        at=now,
    )
    return queued
