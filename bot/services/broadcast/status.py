"""How far a broadcast has got, counted in outbox rows and in people."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.broadcast.common import BroadcastError
from store.models import OutboxMessage, OutboxStatus
from store.organisers import Broadcast

STATUS_GROUPS = {
    OutboxStatus.QUEUED: OutboxStatus.QUEUED,
    OutboxStatus.SENDING: OutboxStatus.QUEUED,
    OutboxStatus.SENT: OutboxStatus.SENT,
    OutboxStatus.DELIVERED: OutboxStatus.DELIVERED,
    OutboxStatus.FAILED: OutboxStatus.FAILED,
    OutboxStatus.UNDELIVERABLE: OutboxStatus.FAILED,
    OutboxStatus.CANCELLED: OutboxStatus.CANCELLED,
}


@dataclass
class Status:
    broadcast: Broadcast
    messages: Counter  # queued / sent / delivered / failed / cancelled -> outbox rows
    people: Counter  # the same, counting each person once (by their least advanced part)


async def status(session: AsyncSession, broadcast_id: int) -> Status:
    row = await session.get(Broadcast, broadcast_id)
    if row is None:
        raise BroadcastError(f"no broadcast {broadcast_id}")
    messages: Counter = Counter()
    for state, n in await session.execute(
        select(OutboxMessage.status, func.count())
        .where(OutboxMessage.broadcast_id == row.id)
        .group_by(OutboxMessage.status)
    ):
        messages[STATUS_GROUPS.get(state, state)] += n
    order = [
        OutboxStatus.FAILED,
        OutboxStatus.CANCELLED,
        OutboxStatus.QUEUED,
        OutboxStatus.SENT,
        OutboxStatus.DELIVERED,
    ]
    worst: dict[str, int] = {}
    for pid, state in await session.execute(
        select(OutboxMessage.participant_id, OutboxMessage.status).where(
            OutboxMessage.broadcast_id == row.id
        )
    ):
        rank = order.index(STATUS_GROUPS.get(state, OutboxStatus.QUEUED))
        worst[pid] = min(worst.get(pid, rank), rank)
    people = Counter(order[rank] for rank in worst.values())
    return Status(row, messages, people)


async def recent(session: AsyncSession, limit: int = 20) -> list[Broadcast]:
    return list(
        (
            await session.execute(select(Broadcast).order_by(Broadcast.id.desc()).limit(limit))
        ).scalars()
    )
