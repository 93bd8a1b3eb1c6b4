"""What became of each send, written to the outbox in batches (group commit)."""

from __future__ import annotations

import asyncio
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
RETRY_PAUSE = 1.0  # seconds before outcomes that failed to be written are tried again


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
    unwritten_since: float | None = None  # first failed write (time.monotonic), if any


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
    first, it is sent again once the lease runs out, never lost. An outcome that cannot be
    written is kept and tried again (a database that blinked must not make us send twice),
    alone, so that one row the database refuses does not hold the others back; it is let go
    only when its lease is half gone, as the row is then due to be claimed and sent again.
    """

    def __init__(self, transactions: Transactions, owner: str, keep_for: float = 60.0):
        self.transactions = transactions
        self.keep_for = keep_for
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
        """Write `batch` in a transaction of its own; False when some of it could not be
        written: those outcomes wait to be tried again (see the class)."""
        if await self._write(batch):
            return True
        log.warning("could not record %d outbox outcomes; trying them one by one", len(batch))
        failed = batch
        if len(batch) > 1:
            failed = [outcome for outcome in batch if not await self._write([outcome])]
        self._keep(failed)
        return not failed

    async def _write(self, batch: list[Outcome]) -> bool:
        try:
            async with self.transactions.connect() as connection:
                await connection.run_sync(self.record, batch)
        except Exception:
            log.exception("recording outbox outcomes failed")
            return False
        self.settle(batch)
        return True

    def _keep(self, failed: list[Outcome]) -> None:
        """Put failed outcomes back in front, unless their rows are about to be claimed
        again: then the send is repeated (at least once, never lost)."""
        now = time.monotonic()
        kept: list[Outcome] = []
        for outcome in failed:
            if outcome.unwritten_since is None:
                outcome.unwritten_since = now
            if now - outcome.unwritten_since < self.keep_for:
                kept.append(outcome)
            else:
                log.error(
                    "gave up recording the outcome of outbox row %d; it will be sent again "
                    "once its lease runs out",
                    outcome.id,
                )
        if kept:
            # Counted as arriving a moment from now: the next try waits that long rather
            # than hammering a database that just failed.
            self.since = now + RETRY_PAUSE
            self._pending[:0] = kept

    async def flush(self, attempts: int = 3, pause: float = 0.5) -> None:
        """Write what waits; at shutdown a database that stays away loses nothing but the
        outcomes (their messages are sent again once their leases run out)."""
        for attempt in range(attempts):
            if not self._pending:
                return
            if not await self.write_batch(self.take()) and attempt + 1 < attempts:
                await asyncio.sleep(pause)
        if self._pending:
            log.error(
                "%d outbox outcomes could not be recorded; those messages will be sent again "
                "once their leases run out",
                len(self._pending),
            )
            self._pending = []
