"""The messages a turn or a job causes, written to the outbox in channel-sized parts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.addresses import can_receive_sms
from bot.channels.render import render
from bot.services.people import contact_on
from bot.settings import Settings
from flows.model import Outbound
from store import outbox
from store.models import Contact, OutboxStatus, Participant

NO_SMS_REPLY = "the sender is a short code or name: it cannot receive SMS"


def enqueuer(settings: Settings) -> Callable[..., Awaitable[int]]:
    """`enqueue` with the settings bound: what the scheduler is given to write its due
    messages (it knows no channel or settings of its own)."""

    async def bound(
        session: AsyncSession,
        participant: Participant,
        contact: Contact,
        messages: Iterable[Outbound],
        **options: Any,
    ) -> int:
        return await enqueue(session, settings, participant, contact, messages, **options)

    return bound


async def enqueue(
    session: AsyncSession,
    settings: Settings,
    participant: Participant,
    contact: Contact,
    messages: Iterable[Outbound],
    *,
    prompt_id: str | None,
    now: datetime,
    not_before: datetime | None = None,
    broadcast_id: int | None = None,
    expires_at: datetime | None = None,
) -> int:
    """Write outbox rows for `messages`, in order, split into channel-sized parts; rows
    with `expires_at` are never sent from that moment on."""
    rows, count = await outbox_rows(
        session,
        settings,
        participant,
        contact,
        messages,
        prompt_id=prompt_id,
        not_before=not_before,
        broadcast_id=broadcast_id,
        expires_at=expires_at,
    )
    await outbox.write(session, rows, now=now)
    return count


async def outbox_rows(
    session: AsyncSession,
    settings: Settings,
    participant: Participant,
    contact: Contact,
    messages: Iterable[Outbound],
    *,
    prompt_id: str | None,
    not_before: datetime | None = None,
    broadcast_id: int | None = None,
    expires_at: datetime | None = None,
    created_at: datetime | None = None,
) -> tuple[list[outbox.Message], int]:
    """The outbox rows `enqueue` writes, not yet written (a batch of turns writes all of
    theirs at once), and how many of them will be sent."""
    rows: list[outbox.Message] = []
    count = 0
    for message in messages:
        target = contact
        if message.to_channel and message.to_channel != contact.channel:
            target = await contact_on(session, participant, message.to_channel) or contact
        parts = render(
            message, target.channel, participant.language, prompt_id, settings.sms_max_segments
        )
        # The reply to a sender that cannot receive SMS is a deliberate silence, on record.
        silent = target.channel == "sms" and not can_receive_sms(target.address)
        for number, part in enumerate(parts, start=1):
            rows.append(
                outbox.Message(
                    target,
                    part.text,
                    buttons=part.buttons,
                    markdown=message.markdown,
                    compliance=message.compliance,
                    kind=message.kind,
                    broadcast_id=broadcast_id,
                    part=number,
                    parts=len(parts),
                    segments=part.segments,
                    encoding=part.encoding,
                    not_before=not_before,
                    expires_at=expires_at,
                    created_at=created_at,
                    **({"status": OutboxStatus.CANCELLED, "error": NO_SMS_REPLY} if silent else {}),
                )
            )
            count += 0 if silent else 1
    return rows, count
