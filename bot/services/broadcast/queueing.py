"""Previewing a broadcast (a dry run), storing it, and putting it in the outbox.

Sending is one transaction: the broadcast row, every outbox row (carrying broadcast_id)
and the audit event commit together, so a crash sends all of it or none of it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.broadcast.audience import Audience, AudienceCount, load_members, parse_audience
from bot.services.broadcast.common import BroadcastError
from bot.services.broadcast.content import Content, Renderer, content_of
from bot.services.broadcast.timing import Timing
from bot.services.organisers import record
from bot.settings import Settings
from store import outbox as outbox_writer
from store.models import utcnow
from store.organisers import Broadcast


@dataclass
class DryRun:
    audience: str
    count: AudienceCount
    by_language: Counter  # (channel, language) -> people
    sms_messages: int = 0  # outbox rows on SMS (long texts make several)
    sms_segments: int = 0
    cost: float = 0.0
    held: int = 0  # people whose copy waits for the end of their quiet hours
    samples: dict[str, str] = field(default_factory=dict)  # language -> their text


async def dry_run(
    session: AsyncSession,
    settings: Settings,
    content: Content,
    audience: Audience,
    *,
    urgent: bool = False,
    now: datetime | None = None,
    timing: Timing | None = None,
) -> DryRun:
    now = now or utcnow()
    renderer = Renderer(content, settings, urgent, timing or Timing(), now)
    result = DryRun(str(audience), AudienceCount(), Counter())
    for member in await load_members(session):
        if not audience.includes(member):
            continue
        result.count.add(member)
        if member.opted_out or member.contact is None:
            continue
        channel = member.contact.channel
        result.by_language[(channel, member.language)] += 1
        result.samples.setdefault(member.language, renderer.text(member.language, member.timezone))
        if renderer.not_before(member.timezone) > now:
            result.held += 1
        if channel == "sms":
            parts = renderer.parts(member.language, member.timezone, "sms")
            result.sms_messages += len(parts)
            result.sms_segments += sum(p.segments for p in parts)
    result.cost = round(result.sms_segments * settings.sms_cost_per_segment, 4)
    return result


async def create(
    session: AsyncSession,
    settings: Settings,
    content: Content,
    audience: Audience,
    *,
    organiser_id: int | None,
    origin: str,
    urgent: bool = False,
    at: datetime | None = None,
    now: datetime | None = None,
    timing: Timing | None = None,
) -> Broadcast:
    """Store a broadcast; queue it at once unless `at` is in the future (then it waits)."""
    now = now or utcnow()
    if at is not None and at.tzinfo is None:
        raise BroadcastError("the time needs a time zone")
    row = Broadcast(
        text=content.text,
        template=content.template,
        params=content.params,
        audience=str(audience),
        urgent=urgent,
        scheduled_at=at,
        status="scheduled",
        created_by=organiser_id,
        origin=origin,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    if at is not None and at > now:
        await record(
            session,
            "broadcast.scheduled",
            organiser_id,
            broadcast=row.id,
            audience=str(audience),
            template=content.template,
            urgent=urgent,
            origin=origin,
            at=at.astimezone(UTC).isoformat(),
        )
        return row
    await queue(session, settings, row, now=now, timing=timing)
    return row


async def queue(
    session: AsyncSession,
    settings: Settings,
    row: Broadcast,
    *,
    now: datetime | None = None,
    timing: Timing | None = None,
) -> int:
    """Write one outbox row per message part for every reachable member of the audience."""
    now = now or utcnow()
    audience = parse_audience(row.audience)
    renderer = Renderer(content_of(row), settings, row.urgent, timing or Timing(), now)
    outbox: list[outbox_writer.Message] = []
    people = 0
    for member in await load_members(session, lock=True):
        contact = member.contact
        if member.opted_out or contact is None or not audience.includes(member):
            continue
        people += 1
        parts = renderer.parts(member.language, member.timezone, contact.channel)
        not_before = renderer.not_before(member.timezone)
        outbox += [
            outbox_writer.Message(
                contact,
                part.text,
                buttons=part.buttons,
                kind="broadcast",
                broadcast_id=row.id,
                part=number,
                parts=len(parts),
                segments=part.segments,
                encoding=part.encoding,
                not_before=not_before,
            )
            for number, part in enumerate(parts, start=1)
        ]
    await outbox_writer.write(session, outbox, now=now)
    row.status, row.recipients, row.queued_at = "queued", people, now
    await session.flush()
    await record(
        session,
        "broadcast.queued",
        row.created_by,
        broadcast=row.id,
        audience=row.audience,
        template=row.template,
        urgent=row.urgent,
        origin=row.origin,
        recipients=people,
        messages=len(outbox),
    )
    return len(outbox)


async def release_due(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    now: datetime | None = None,
    timing: Timing | None = None,
) -> list[int]:
    """Queue every scheduled broadcast whose time has come, each in its own transaction.

    The row is locked (skipped if another instance holds it) and its status checked again,
    so two service instances never queue one broadcast twice."""
    released = []
    while True:
        current = now or utcnow()
        async with sessions.begin() as session:
            row = (
                await session.execute(
                    select(Broadcast)
                    .where(Broadcast.status == "scheduled", Broadcast.scheduled_at <= current)
                    .order_by(Broadcast.scheduled_at, Broadcast.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).scalar_one_or_none()
            if row is None:
                return released
            await queue(session, settings, row, now=current, timing=timing)
            released.append(row.id)


async def discard(
    session: AsyncSession,
    broadcast_id: int,
    *,
    organiser_id: int | None = None,
    origin: str = "cli",
) -> Broadcast:
    """Drop a broadcast that is still waiting for its time."""
    row = await session.get(Broadcast, broadcast_id, with_for_update=True)
    if row is None:
        raise BroadcastError(f"no broadcast {broadcast_id}")
    if row.status != "scheduled":
        raise BroadcastError(
            f"broadcast {broadcast_id} is {row.status}; only a scheduled broadcast can be discarded"
        )
    row.status = "discarded"
    await record(session, "broadcast.discarded", organiser_id, broadcast=row.id, origin=origin)
    return row
