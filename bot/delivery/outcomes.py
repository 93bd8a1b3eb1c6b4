"""What became of each send, written to the outbox in batches (group commit)."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, update

from bot.delivery.claims import Claimed
from bot.delivery.transactions import Transactions
from bot.metrics import MESSAGES_OUT
from store.models import OutboxMessage, OutboxStatus, UTCDateTime

log = logging.getLogger(__name__)
outbox = OutboxMessage.__table__
ERROR_MAX = 255


def short(reason: str) -> str:
    """A reason cut to fit the outbox's error column."""
    return reason if len(reason) <= ERROR_MAX else reason[: ERROR_MAX - 1] + "…"


@dataclass(slots=True)
class Outcome:
    """The new state of a row after one attempt; written by the batched outcome writer."""

    id: int
    channel: str
    status: str
    next_attempt_at: datetime
    provider_id: str | None = None
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    error: str | None = None
    fault: int = 0  # 1: this attempt failed before an outcome (outbox.faults)
    contact_id: int | None = None  # whose next message may follow it (Claims.claim_next)


@functools.cache
def _sent_counter(channel: str, status: str) -> Any:
    return MESSAGES_OUT.labels(channel, status)  # labels() is a locked lookup: once a pair


class OutcomeWriter:
    """Group commit: outcomes wait in memory and are written together.

    A send does not wait for its outcome's commit. While the dispatcher's loop runs it
    takes the waiting outcomes itself (`take`) and writes them in the same transaction as
    its next claim (`wake` tells it when `wake_at` are waiting): one commit then both
    records what was sent and leases what goes next. Otherwise `flush` writes them.

    Until its outcome is committed a row stays "sending" under our lease: if we crash
    first, it is sent again once the lease runs out, never lost.
    """

    def __init__(self, transactions: Transactions, owner: str):
        self.transactions = transactions
        self.wake: Callable[[], None] | None = None
        self.wake_at = 1  # how many waiting outcomes call `wake`
        self.since = 0.0  # when the oldest waiting outcome arrived (time.monotonic)
        self._pending: list[Outcome] = []
        ours = (
            outbox.c.id == bindparam("b_id"),
            outbox.c.lease_owner == owner,
            outbox.c.status == OutboxStatus.SENDING,
        )
        released = {"lease_until": None, "lease_owner": None}
        # Two shapes: a send (the common case) leaves the schedule alone, so it binds
        # fewer values; anything else may move the next attempt and says why.
        self._sent = (
            update(outbox)
            .where(*ours)
            .values(
                status=bindparam("b_status"),
                provider_id=bindparam("b_provider"),
                sent_at=bindparam("b_sent", type_=UTCDateTime()),
                delivered_at=bindparam("b_delivered", type_=UTCDateTime()),
                error=None,
                **released,
            )
        )
        self._other = (
            update(outbox)
            .where(*ours)
            .values(
                status=bindparam("b_status"),
                next_attempt_at=bindparam("b_next", type_=UTCDateTime()),
                error=bindparam("b_error"),
                faults=outbox.c.faults + bindparam("b_fault"),
                **released,
            )
        )

    def finish(
        self,
        row: Claimed,
        status: str,
        *,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
        provider_id: str | None = None,
        sent_at: datetime | None = None,
        delivered_at: datetime | None = None,
        fault: int = 0,
    ) -> None:
        """Queue the end of one attempt at `row` (the schedule stays unless moved)."""
        self.add(
            Outcome(
                id=row.id,
                channel=row.channel,
                status=status,
                next_attempt_at=next_attempt_at or row.next_attempt_at,
                provider_id=provider_id,
                sent_at=sent_at,
                delivered_at=delivered_at,
                error=short(error) if error else None,
                fault=fault,
                contact_id=row.contact_id,
            )
        )

    def add(self, outcome: Outcome) -> None:
        pending = self._pending
        if not pending:
            self.since = time.monotonic()
        pending.append(outcome)
        if self.wake is not None and len(pending) == self.wake_at:
            self.wake()

    @property
    def count(self) -> int:
        return len(self._pending)

    def take(self) -> list[Outcome]:
        batch, self._pending = self._pending, []
        return batch

    def record(self, connection: Connection, batch: list[Outcome]) -> None:
        """Write `batch` on a synchronous connection (or one that `run_sync` lends)."""
        sent = [
            {
                "b_id": o.id,
                "b_status": o.status,
                "b_provider": o.provider_id,
                "b_sent": o.sent_at,
                "b_delivered": o.delivered_at,
            }
            for o in batch
            if o.sent_at is not None
        ]
        other = [
            {
                "b_id": o.id,
                "b_status": o.status,
                "b_next": o.next_attempt_at,
                "b_error": o.error,
                "b_fault": o.fault,
            }
            for o in batch
            if o.sent_at is None
        ]
        if sent:
            connection.execute(self._sent, sent)
        if other:
            connection.execute(self._other, other)

    @staticmethod
    def settle(batch: list[Outcome]) -> None:
        """Count what was committed (once a pair: labels() is a locked lookup)."""
        counts: dict[tuple[str, str], int] = {}
        for outcome in batch:
            key = (outcome.channel, outcome.status)
            counts[key] = counts.get(key, 0) + 1
        for (channel, status), count in counts.items():
            _sent_counter(channel, status).inc(count)

    async def write_batch(self, batch: list[Outcome]) -> bool:
        """Write `batch` in a transaction of its own; False (and logged) when it failed."""
        try:
            async with self.transactions.connect() as connection:
                await connection.run_sync(self.record, batch)
        except Exception:  # the rows stay "sending"; their lease will expire
            log.exception("could not record %d outbox outcomes", len(batch))
            return False
        self.settle(batch)
        return True

    async def flush(self) -> None:
        while self._pending:
            await self.write_batch(self.take())
