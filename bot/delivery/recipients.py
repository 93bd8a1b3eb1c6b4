"""What a channel tells us about a recipient, and moving their messages to SMS.

Opted-out people get nothing but the opt-out confirmation; a contact that became
unreachable has its messages moved to SMS when the person agreed to SMS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.channels.render import render
from bot.channels.transport import PermanentFailure
from bot.delivery.claims import Claimed
from bot.delivery.outcomes import OutcomeWriter, short
from bot.delivery.transactions import Transactions
from bot.metrics import MESSAGES_OUT
from bot.services import people
from bot.settings import Settings
from flows.model import Choice, Outbound
from store import audit, contacts
from store import outbox as store_outbox
from store.models import Contact, OutboxMessage, OutboxStatus

outbox = OutboxMessage.__table__


class Recipients:
    """Records refusals on the contact and reroutes what cannot reach it.

    `moved` is called when new SMS rows were queued, so they go out at once.
    """

    def __init__(
        self,
        *,
        transactions: Transactions,
        writer: OutcomeWriter,
        owner: str,
        settings: Settings,
        clock: Callable[[], datetime],
        moved: Callable[[], None],
    ):
        self.transactions = transactions
        self.writer = writer
        self.owner = owner
        self.settings = settings
        self.clock = clock
        self.moved = moved

    async def refused(self, row: Claimed, exc: PermanentFailure) -> None:
        """Record what the channel told us about the person (unreachable, opted out), then
        reroute or end the row."""
        await self._mark_contact(row, exc)
        if exc.unreachable and not exc.opted_out:
            await self.reroute(row, exc.reason, status=OutboxStatus.UNDELIVERABLE)
        else:
            self.writer.finish(row, OutboxStatus.UNDELIVERABLE, error=exc.reason)

    async def _mark_contact(self, row: Claimed, exc: PermanentFailure) -> None:
        now = self.clock()
        async with self.transactions.begin() as session:
            contact = await session.get(Contact, row.contact_id, with_for_update=True)
            facts = {"channel": row.channel, "contact_id": row.contact_id}
            if exc.opted_out and contact.opted_out_at is None:
                contact.opted_out_at = now
                await audit.append(
                    session,
                    "contact.opted_out",
                    facts,
                    participant_id=row.participant_id,
                    at=now,
                )
            if exc.unreachable and contact.unreachable_at is None:
                contact.unreachable_at = now
                await audit.append(
                    session,
                    "contact.unreachable",
                    facts,
                    participant_id=row.participant_id,
                    at=now,
                )

    async def reroute(
        self, row: Claimed, reason: str, status: OutboxStatus = OutboxStatus.CANCELLED
    ) -> None:
        """Move a message for an unreachable contact to the person's consented SMS number.

        The new SMS rows and the end of this row commit together, so a crash in between
        can never queue the message twice.
        """
        if row.compliance or row.channel == "sms":
            self.writer.finish(row, status, error=f"{reason}; no other channel")
            return
        now = self.clock()
        async with self.transactions.begin() as session:
            moved = await self._requeue_on_sms(session, row, now)
            if moved:
                await session.execute(
                    update(outbox)
                    .where(outbox.c.id == row.id, outbox.c.lease_owner == self.owner)
                    .values(
                        status=status,
                        error=short(f"{reason}; moved to sms"),
                        lease_until=None,
                        lease_owner=None,
                    )
                )
        if not moved:
            self.writer.finish(row, status, error=f"{reason}; no other channel")
            return
        MESSAGES_OUT.labels(row.channel, status).inc()
        self.moved()

    async def _requeue_on_sms(self, session: AsyncSession, row: Claimed, now: datetime) -> int:
        # The same lock service.receive takes, so sequence numbers never collide.
        participant = await people.lock_participant(session, row.participant_id)
        if participant.opted_out:
            return 0
        sms = await contacts.preferred_contact(session, participant.id, channels=("sms",))
        if sms is None:
            return 0
        message = Outbound(
            text=row.text,
            choices=tuple(_choices(row.buttons or [])),
            markdown=row.markdown,
            kind=row.kind,
            compliance=row.compliance,
        )
        parts = render(message, "sms", participant.language, None, self.settings.sms_max_segments)
        return await store_outbox.write(
            session,
            [
                store_outbox.Message(
                    sms,
                    part.text,
                    compliance=row.compliance,
                    kind=row.kind,
                    broadcast_id=row.broadcast_id,
                    part=number,
                    parts=len(parts),
                    segments=part.segments,
                    encoding=part.encoding,
                    expires_at=row.expires_at,
                    created_at=row.created_at,
                )
                for number, part in enumerate(parts, start=1)
            ],
            now=now,
        )


def _choices(buttons: Iterable[dict[str, str]]) -> Iterable[Choice]:
    for number, button in enumerate(buttons, start=1):
        key = button.get("data", "").partition(":")[2] or str(number)
        yield Choice(key=key, label=button.get("label", ""))
