"""The outbox dispatcher: claims queued messages and hands them to the channel transports.

Guarantees:
- Several dispatchers on one database never send a row twice: a claim marks rows
  "sending" under a lease (`lease_until`, `lease_owner`) in one short transaction, with
  `FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite serialises writers with BEGIN IMMEDIATE).
  A row whose lease ran out (its dispatcher died mid-send) is claimed again.
- Messages to one contact leave in `seq` order: a row is only claimable while no earlier row
  of its contact is queued or sending. Different contacts are sent concurrently, so a slow,
  failing or blocked recipient holds up no one else.
- A message that fails for a passing reason (provider down, timeout) is retried with capped
  exponential backoff and jitter until it has been due for `settings.retry_for` (24 hours
  by default): it is given up by age, not after a few attempts. Meanwhile the messages
  behind it to the same contact wait, so they still arrive in order.
- A message with `expires_at` (a reminder of a session that has begun) is never sent after
  it: it ends "expired" and the messages behind it go on.
- Opted-out people get nothing but the opt-out confirmation; a contact that became
  unreachable has its messages moved to SMS when the person agreed to SMS.
- While `run()` loops, long-lived send workers take claimed rows from a queue in memory,
  and one transaction records every outcome that finished meanwhile and then claims what
  goes next (one UPDATE ... RETURNING). `drain()` commits a batch's outcomes together
  after its sends.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import random
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import (
    Connection,
    bindparam,
    literal_column,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.channels.render import render
from bot.channels.transport import (
    Outgoing,
    PermanentFailure,
    RetryLater,
    Sent,
    Transport,
    build_transports,
)
from bot.delivery import queue as outbox_queue
from bot.delivery.health import ChannelBook
from bot.delivery.outcomes import Outcome, OutcomeWriter
from bot.delivery.ratelimit import DeliveryLimits
from bot.delivery.send_watch import Sender, SendWatch
from bot.delivery.shared_limits import PermitStore
from bot.delivery.transactions import Transactions
from bot.metrics import DISPATCH_LATENCY, MESSAGES_OUT, OLDEST_WAITING, QUEUE_DEPTH
from bot.relay import Relay
from bot.services import invite_codes
from bot.services import turns as service
from bot.settings import Settings
from flows.model import Choice, Outbound
from store import audit, contacts
from store import outbox as store_outbox
from store.models import (
    PENDING_STATUSES,
    Contact,
    OutboxMessage,
    OutboxStatus,
    Participant,
    UTCDateTime,
    utcnow,
)

log = logging.getLogger(__name__)

outbox = OutboxMessage.__table__
# What a claim reads back: the message and its schedule (fewer columns, less to convert).
CLAIMED_COLUMNS = (
    "id",
    "participant_id",
    "contact_id",
    "seq",
    "channel",
    "address",
    "text",
    "buttons",
    "markdown",
    "compliance",
    "kind",
    "broadcast_id",
    "part",
    "parts",
    "segments",
    "attempts",
    "next_attempt_at",
    "created_at",
    "not_before",
    "expires_at",
)
ERROR_MAX = 255
# Rows held claimed per send slot with no rate limit, counting the one being sent: a worker
# that frees up takes the next claimed row at once, even while a claim transaction is
# under way, and each claim transaction covers a good batch of rows.
READ_AHEAD = 16
# The longest wait between two attempts at one message (before jitter halves it at most):
# after an outage the queue starts moving again within five minutes.
BACKOFF_CAP = 300.0
# How long a finished send's outcome may wait in memory for others to share its commit.
RECORD_DELAY = 0.02


@dataclass(slots=True)
class Claimed:
    """A snapshot of one claimed row and the facts about its recipient checked before send."""

    id: int
    participant_id: str
    contact_id: int
    seq: int
    channel: str
    address: str
    text: str
    buttons: list[dict[str, str]] | None
    markdown: bool
    compliance: bool
    kind: str
    broadcast_id: int | None
    part: int
    parts: int
    segments: int
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    not_before: datetime  # when it first became due: retries are counted from here
    expires_at: datetime | None
    language: str
    participant_opted_out: bool
    contact_opted_out: bool
    contact_unreachable: bool
    # When the contact's previous message was sent (read only under a per-chat limit).
    previous_sent_at: datetime | None = None

    def outgoing(self, invite_key: bytes) -> Outgoing:
        return Outgoing(
            id=self.id,
            channel=self.channel,
            address=self.address,
            text=invite_codes.reveal(self.text, self.kind, invite_key),
            buttons=self.buttons,
            markdown=self.markdown,
            part=self.part,
            parts=self.parts,
            kind=self.kind,
        )


def backoff(
    attempt: int,
    *,
    base: float = 2.0,
    cap: float = BACKOFF_CAP,
    rng: Callable[[], float] = random.random,
) -> float:
    """Exponential backoff with jitter: half fixed, half random, so retries spread out."""
    ceiling = min(cap, base * 2 ** min(30, max(0, attempt - 1)))
    return ceiling / 2 + ceiling / 2 * rng()


def _sql(value: str) -> Any:
    """A string written into the SQL itself, not bound."""
    return literal_column(f"'{value}'")


def pending(table: Any) -> Any:
    """`status IN ('queued', 'sending')`, as the partial indexes spell it (PENDING_SQL)."""
    return table.c.status.in_([_sql(status) for status in PENDING_STATUSES])


def _age(age: timedelta) -> str:
    hours, seconds = divmod(int(age.total_seconds()), 3600)
    return f"{hours} h {seconds // 60} min" if hours else f"{seconds // 60} min {seconds % 60} s"


def _short(reason: str) -> str:
    return reason if len(reason) <= ERROR_MAX else reason[: ERROR_MAX - 1] + "…"


class ReadyRows:
    """Claimed rows waiting for a send worker, taken from each channel in turn.

    One queue in claim order would put a channel's next message behind every row claimed
    before it on another; here a worker takes from the channels round the table. Each row
    put is one ticket in an asyncio.Queue, so a worker waits only when none is left.
    """

    def __init__(self, channels: Iterable[str]):
        self._rows: dict[str, collections.deque[Claimed]] = {
            channel: collections.deque() for channel in channels
        }
        self._order = list(self._rows)
        self._turn = 0
        self._tickets: asyncio.Queue[bool] = asyncio.Queue()

    def put(self, row: Claimed) -> None:
        self._rows[row.channel].append(row)
        self._tickets.put_nowait(True)

    def close(self, workers: int) -> None:
        """Each worker stops once the rows put before this are taken."""
        for _ in range(workers):
            self._tickets.put_nowait(False)

    async def get(self) -> Claimed | None:
        if not await self._tickets.get():
            return None
        order, count = self._order, len(self._order)
        for step in range(count):
            rows = self._rows[order[(self._turn + step) % count]]
            if rows:
                self._turn = (self._turn + step + 1) % count
                return rows.popleft()
        raise AssertionError("a ticket without a row")


class Dispatcher:
    """Claims due outbox rows and sends them; `run()` until `stop()`."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        transports: dict[str, Transport],
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
        *,
        limits: DeliveryLimits | None = None,
        concurrency: int = 64,
        lease: timedelta = timedelta(seconds=120),
        send_timeout: float = 30.0,
        poll_interval: float = 0.5,
        depth_interval: float = 15.0,
        rng: Callable[[], float] = random.random,
        owner: str | None = None,
        signal: asyncio.Event | None = None,
        health: ChannelBook | None = None,
        invite_key: bytes | None = None,
    ):
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if send_timeout >= lease.total_seconds():
            raise ValueError("send_timeout must be shorter than the lease")
        self.sessions = sessions
        self.transports = transports
        self.settings = settings
        # Set by whoever queues rows (the service's turns), so new rows go out at once.
        self.signal = signal or asyncio.Event()
        self.health = health or ChannelBook()
        self._invite_key = invite_key
        self.clock = clock
        self.limits = limits if limits is not None else shared_limits(settings, sessions)
        self.concurrency = concurrency
        self.lease = lease
        self.send_timeout = send_timeout
        self.poll_interval = poll_interval
        self.depth_interval = depth_interval
        self.rng = rng
        self.owner = owner or f"dispatcher-{uuid.uuid4().hex[:12]}"
        self.transactions = Transactions(sessions)
        self.writer = OutcomeWriter(self.transactions, self.owner)
        self._follow = any(
            self.limits.for_channel(channel) is not None
            and self.limits.for_channel(channel).per_recipient is not None
            for channel in transports
        )
        self._claim_statement = self._build_claim_statement()
        # Rows claimed ahead per channel: about two seconds' worth at the channel's rate, so
        # no claimed row waits in memory for long (its lease would run out meanwhile); with
        # no limit, READ_AHEAD times `concurrency`. `concurrency` workers send; the other
        # claimed rows wait their turn in memory.
        self._budget = {channel: self._channel_budget(channel) for channel in transports}
        # Claim once half the budget is free, and record outcomes in batches as large: under
        # load each transaction then carries many rows, while the other half keeps the
        # workers busy meanwhile.
        self._batch = {channel: max(1, budget // 2) for channel, budget in self._budget.items()}
        self._record_batch = max(self._batch.values(), default=1)
        self._held = dict.fromkeys(transports, 0)  # claimed rows whose outcome is not in yet
        self._ready: ReadyRows | None = None
        self._watch = SendWatch(send_timeout)
        self._health = {channel: self.health.channel(channel) for channel in transports}
        self._stopping = False
        self._wake: asyncio.Event | None = None

    @property
    def invite_key(self) -> bytes:
        if self._invite_key is None:  # read when the first row goes out, not at start-up
            self._invite_key = invite_codes.server_key(self.settings)
        return self._invite_key

    def _channel_budget(self, channel: str) -> int:
        limits = self.limits.for_channel(channel)
        rates = [] if limits is None else [limiter.rate for limiter in limits.shared()]
        if not rates:
            return READ_AHEAD * self.concurrency
        return max(1, min(self.concurrency, math.ceil(min(rates) * 2)))

    # --- running -------------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping = True
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        """Claim and send until stopped; rows already claimed are sent before this returns."""
        self._stopping = False
        self._wake = asyncio.Event()
        self._ready = ReadyRows(self.transports)
        self.writer.wake = self._wake.set
        self.writer.wake_at = self._record_batch
        async with self._watch.watching():
            workers = [
                asyncio.create_task(self._work(self._ready), name=f"outbox-sender-{n}")
                for n in range(self.concurrency)
            ]
            try:
                await self._loop()
            finally:
                self._ready.close(len(workers))  # each worker stops after what is queued
                _, stuck = await asyncio.wait(workers, timeout=self.send_timeout + 5)
                for worker in stuck:
                    worker.cancel()
                self.writer.wake = None
                await self.writer.flush()
                await self.transactions.release()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_depth = 0.0
        while not self._stopping:
            if loop.time() >= next_depth:
                await self._refresh_depth_safely()
                next_depth = loop.time() + self.depth_interval
            if not await self._pump():
                await self._idle()

    async def _work(self, ready: ReadyRows) -> None:
        """A send worker: one row at a time, for as long as the loop runs."""
        sender = self._watch.enlist()
        try:
            while (row := await ready.get()) is not None:
                await self._process_safely(row, sender)
        finally:
            self._watch.senders.discard(sender)

    async def _process_safely(self, row: Claimed, sender: Sender) -> None:
        try:
            await self.process(row, sender)
        except Exception:
            # The row stays "sending" under our lease and is tried again when it runs out.
            log.exception("sending outbox row %d failed", row.id)
        finally:
            channel = row.channel
            self._held[channel] -= 1
            # Wake the loop when a claim is due, not for every row.
            held = self._held[channel]
            if self._wake is not None and (
                not held or self._budget[channel] - held == self._batch[channel]
            ):
                self._wake.set()

    async def _pump(self) -> bool:
        """Record finished sends and claim more, in one transaction.

        Outcomes wait for a batch, for RECORD_DELAY, or for a claim to ride along with.
        Returns True when there may be more to do at once (a claim came back full), False
        when the loop should wait.
        """
        assert self._ready is not None
        wanted: dict[str, int] = {}
        for channel in self.transports:
            held = self._held[channel]
            free = self._budget[channel] - held
            # Claim in batches: one claim per freed slot would cost a transaction per
            # message under load.
            if free > 0 and (not held or free >= self._batch[channel]):
                wanted[channel] = free
        waiting = self.writer.count
        if not wanted and (
            not waiting
            or (
                waiting < self._record_batch
                and any(self._held.values())
                and time.monotonic() - self.writer.since < RECORD_DELAY
            )
        ):
            return False
        outcomes = self.writer.take()
        try:
            claimed = await self.transactions.run(self._record_and_claim, outcomes, wanted)
        except Exception:
            log.exception("claiming outbox rows failed; retrying shortly")
            if outcomes:  # a failed claim must not lose what was sent
                await self.writer.write_batch(outcomes)
            return False
        self.writer.settle(outcomes)
        for channel, rows in claimed.items():
            self._held[channel] += len(rows)
            for row in rows:
                self._ready.put(row)
        return any(len(claimed[channel]) == free for channel, free in wanted.items())

    async def _idle(self) -> None:
        """Wait for a claim to be due, a new message (the signal), outcomes to record, a
        stop, or the poll time. The signal is read as a flag rather than awaited: several
        writers set it and nobody else clears it."""
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.poll_interval
        while not self._stopping and loop.time() < deadline:
            if self.signal.is_set():
                self.signal.clear()
                return
            if self.writer.count and time.monotonic() - self.writer.since >= RECORD_DELAY:
                return
            try:
                async with asyncio.timeout(min(0.02, self.poll_interval)):
                    await self._wake.wait()
            except TimeoutError:
                continue
            self._wake.clear()
            return

    def _record_and_claim(
        self, connection: Connection, outcomes: list[Outcome], wanted: dict[str, int]
    ) -> dict[str, list[Claimed]]:
        self.writer.record(connection, outcomes)
        return {
            channel: self._claim_in(connection, free, [channel]) for channel, free in wanted.items()
        }

    async def run_once(self) -> int:
        """Claim one batch of due rows, send all of them and record the outcomes."""
        claimed: list[Claimed] = []
        for channel in self.transports:
            claimed += await self.claim(self._budget[channel], [channel])
        ready = ReadyRows(self.transports)
        workers = min(self.concurrency, len(claimed))
        for row in claimed:
            ready.put(row)
            self._held[row.channel] += 1
        ready.close(workers)
        async with self._watch.watching():
            await asyncio.gather(*(self._work(ready) for _ in range(workers)))
        await self.writer.flush()
        return len(claimed)

    async def drain(self, max_rounds: int = 10_000) -> int:
        """Process due rows until none is left (rows waiting for a retry time stay)."""
        total = 0
        for _ in range(max_rounds):
            count = await self.run_once()
            if count == 0:
                break
            total += count
        return total

    # --- claiming ------------------------------------------------------------------------

    async def claim(self, limit: int, channels: list[str] | None = None) -> list[Claimed]:
        """Mark up to `limit` due rows "sending" under our lease, in one short transaction."""
        channels = list(self.transports) if channels is None else channels
        if limit <= 0 or not channels:
            return []
        async with self.transactions.connect() as connection:
            return await connection.run_sync(self._claim_in, limit, channels)

    def _claim_in(self, connection: Connection, limit: int, channels: list[str]) -> list[Claimed]:
        """One UPDATE ... RETURNING: picks, leases and reads the rows in a single round trip."""
        now = self.clock()
        result = connection.execute(
            self._claim_statement,
            {
                "now": now,
                "limit": limit,
                "channels": channels,
                "lease_until": now + self.lease,
                "owner": self.owner,
            },
        )
        rows = [self._snapshot(row) for row in result.all()]
        return sorted(rows, key=lambda row: (row.contact_id, row.seq))

    def _build_claim_statement(self) -> Any:
        """The claim, built once: SQLAlchemy then reuses its compiled form on every call.

        Two scans, each able to walk ix_outbox_due in order and stop at the limit: leases
        that ran out (rare), then queued rows by due time. A row is picked only while no
        earlier row of its contact is queued or sending (per-contact order), which one probe
        of ix_outbox_pending_contact tells. Statuses are written out, not bound, so that
        both databases see the partial indexes' own condition and use them. On PostgreSQL
        each scan locks what it picks and skips rows another dispatcher holds, in a CTE that
        runs once, so two dispatchers never lease the same row.
        """
        now = bindparam("now", type_=UTCDateTime())
        limit = bindparam("limit")
        channels = bindparam("channels", expanding=True)
        candidate = outbox.alias("candidate")
        earlier = outbox.alias("earlier")
        blocked = (
            select(earlier.c.id)
            .where(
                pending(earlier),
                earlier.c.contact_id == candidate.c.contact_id,
                earlier.c.seq < candidate.c.seq,
            )
            .exists()
        )
        scans = []
        for due, order in (
            (
                (candidate.c.status == _sql(OutboxStatus.SENDING), candidate.c.lease_until < now),
                candidate.c.lease_until,
            ),
            (
                (
                    candidate.c.status == _sql(OutboxStatus.QUEUED),
                    candidate.c.next_attempt_at <= now,
                    candidate.c.not_before <= now,
                ),
                candidate.c.next_attempt_at,
            ),
        ):
            scan = (
                select(candidate.c.id)
                .where(pending(candidate), *due, candidate.c.channel.in_(channels), ~blocked)
                .order_by(order)
                .limit(limit)
            )
            if self.transactions.postgres:
                scan = scan.with_for_update(skip_locked=True)
            scans.append(select(scan.subquery().c.id))
        both = union_all(*scans).subquery()
        picked = select(both.c.id).limit(limit)
        if self.transactions.postgres:
            picked = select(picked.cte("picked").prefix_with("MATERIALIZED").c.id)
        else:
            picked = select(picked.subquery().c.id)

        # Spelt out: SQLite's RETURNING drops table names, and a bare "id" would be ambiguous.
        # The CAST gives the key back the type SQLite's RETURNING loses, so the primary key
        # index is searched instead of the whole table being scanned for every row.
        def recipient(table: str, column: str, key: str, key_type: str) -> Any:
            return literal_column(
                f"(SELECT {column} FROM {table} AS recipient"
                f" WHERE recipient.id = CAST(outbox.{key} AS {key_type}))"
            ).label(column)

        person, contact = Participant.__tablename__, Contact.__tablename__
        # Under a per-chat limit, when the contact's previous message went (one probe of
        # uq_outbox_contact_seq): the limit then holds whichever instance sent it.
        previous = (
            [
                literal_column(
                    "(SELECT previous.sent_at FROM outbox AS previous"
                    " WHERE previous.contact_id = outbox.contact_id AND previous.seq < outbox.seq"
                    " ORDER BY previous.seq DESC LIMIT 1)",
                    type_=UTCDateTime(),
                ).label("previous")
            ]
            if self._follow
            else []
        )

        return (
            update(outbox)
            .where(outbox.c.id.in_(picked))
            .values(
                status=OutboxStatus.SENDING.value,
                attempts=outbox.c.attempts + 1,
                lease_until=bindparam("lease_until", type_=UTCDateTime()),
                lease_owner=bindparam("owner"),
            )
            .returning(
                *(outbox.c[name] for name in CLAIMED_COLUMNS),
                recipient(person, "language", "participant_id", "TEXT"),
                recipient(person, "opted_out", "participant_id", "TEXT").label("p_out"),
                recipient(contact, "opted_out_at", "contact_id", "BIGINT"),
                recipient(contact, "unreachable_at", "contact_id", "BIGINT"),
                *previous,
            )
        )

    def _snapshot(self, row: Any) -> Claimed:
        # Positional: the RETURNING list is CLAIMED_COLUMNS, then the recipient's facts.
        previous = None
        if self._follow:
            *row, previous = row
        *columns, language, participant_out, contact_out, unreachable = row
        return Claimed(
            *columns,
            language,
            bool(participant_out),
            contact_out is not None,
            unreachable is not None,
            previous,
        )

    # --- sending -------------------------------------------------------------------------

    async def process(self, row: Claimed, sender: Sender) -> None:  # noqa: C901
        """Check the recipient, wait for the rate limits, send, and queue the outcome."""
        if row.expires_at is not None and row.expires_at <= self.clock():
            self._finish(
                row, OutboxStatus.EXPIRED, error="its moment passed before it could be sent"
            )
            return
        if (row.participant_opted_out or row.contact_opted_out) and not row.compliance:
            self._finish(row, OutboxStatus.CANCELLED, error="recipient opted out")
            return
        if row.contact_unreachable:
            await self._reroute(row, "contact unreachable")
            return
        limits = self.limits.for_channel(row.channel)
        if limits is not None and row.previous_sent_at is not None:
            limits.follow(row.address, row.previous_sent_at, self.clock())
        try:
            token = await limits.acquire(row.address) if limits is not None else None
            handed_over = self.clock()
            DISPATCH_LATENCY.observe(
                row.channel, max(0.0, (handed_over - row.created_at).total_seconds())
            )
            sender.deadline = time.monotonic() + self.send_timeout
            try:
                sent = await self.transports[row.channel].send(row.outgoing(self.invite_key))
            except asyncio.CancelledError:
                if not sender.expired:
                    raise
                sender.task.uncancel()  # our watchdog's cancellation: the send timed out
                raise TimeoutError from None
            finally:
                sender.deadline, sender.expired = None, False
                if limits is not None:
                    limits.done(token)
        except RetryLater as exc:
            if exc.after is not None and limits is not None:
                limits.hold(row.address, exc.after)
            if exc.after is None:  # the channel asking us to slow down is no failure of it
                self._health[row.channel].failed(self.clock(), exc.reason)
            self._retry(row, exc.reason, exc.after)
        except PermanentFailure as exc:
            await self._permanent(row, exc)
        except TimeoutError:
            self._health[row.channel].failed(self.clock(), "send timed out")
            self._retry(row, "send timed out", None)
        except Exception as exc:  # a transport bug or network error: retry, never crash
            log.warning(
                "transport %s raised %s for outbox row %d", row.channel, type(exc).__name__, row.id
            )
            reason = f"transport error: {type(exc).__name__}"
            self._health[row.channel].failed(self.clock(), reason)
            self._retry(row, reason, None)
        else:
            health = self._health[row.channel]
            if health.failures:
                health.succeeded()
            self._sent(row, sent)

    def _sent(self, row: Claimed, sent: Sent) -> None:
        now = self.clock()
        self._finish(
            row,
            OutboxStatus.DELIVERED if sent.delivered else OutboxStatus.SENT,
            provider_id=sent.provider_id,
            sent_at=now,
            delivered_at=now if sent.delivered else None,
        )

    def _retry(self, row: Claimed, reason: str, after: float | None) -> None:
        """Try again later, until the message has been due for `retry_for`; a message that
        expires sooner is looked at again when it expires, so it holds up nobody behind."""
        now = self.clock()
        give_up_at = row.not_before + self.settings.retry_for
        if now >= give_up_at:
            self._finish(
                row,
                OutboxStatus.FAILED,
                error=(
                    f"gave up after {row.attempts} attempts over {_age(now - row.not_before)}: "
                    f"{reason}"
                ),
            )
            return
        # The channel's own retry_after is honoured exactly; our guesses get jitter.
        delay = after if after is not None else backoff(row.attempts, rng=self.rng)
        next_attempt = min(now + timedelta(seconds=delay), give_up_at)
        if row.expires_at is not None:
            next_attempt = min(next_attempt, row.expires_at)
        self._finish(row, OutboxStatus.QUEUED, error=reason, next_attempt_at=next_attempt)

    def _finish(
        self,
        row: Claimed,
        status: str,
        *,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
        provider_id: str | None = None,
        sent_at: datetime | None = None,
        delivered_at: datetime | None = None,
    ) -> None:
        self.writer.add(
            Outcome(
                id=row.id,
                channel=row.channel,
                status=status,
                next_attempt_at=next_attempt_at or row.next_attempt_at,
                provider_id=provider_id,
                sent_at=sent_at,
                delivered_at=delivered_at,
                error=_short(error) if error else None,
            )
        )

    async def _permanent(self, row: Claimed, exc: PermanentFailure) -> None:
        """Record what the channel told us about the person, then reroute or give up."""
        if not (exc.unreachable or exc.opted_out):
            self._finish(row, OutboxStatus.FAILED, error=exc.reason)
            return
        now = self.clock()
        async with self.transactions.begin() as session:
            contact = await session.get(Contact, row.contact_id, with_for_update=True)
            if exc.opted_out and contact.opted_out_at is None:
                contact.opted_out_at = now
                await audit.append(
                    session,
                    "contact.opted_out",
                    {"channel": row.channel, "contact_id": row.contact_id},
                    participant_id=row.participant_id,
                    at=now,
                )
            if exc.unreachable and contact.unreachable_at is None:
                contact.unreachable_at = now
                await audit.append(
                    session,
                    "contact.unreachable",
                    {"channel": row.channel, "contact_id": row.contact_id},
                    participant_id=row.participant_id,
                    at=now,
                )
        if exc.unreachable and not exc.opted_out:
            await self._reroute(row, exc.reason, status=OutboxStatus.UNDELIVERABLE)
        else:
            self._finish(row, OutboxStatus.UNDELIVERABLE, error=exc.reason)

    async def _reroute(
        self, row: Claimed, reason: str, status: OutboxStatus = OutboxStatus.CANCELLED
    ) -> None:
        """Move a message for an unreachable contact to the person's consented SMS number.

        The new SMS rows and the end of this row commit together, so a crash in between
        can never queue the message twice.
        """
        if row.compliance or row.channel == "sms":
            self._finish(row, status, error=f"{reason}; no other channel")
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
                        error=_short(f"{reason}; moved to sms"),
                        lease_until=None,
                        lease_owner=None,
                    )
                )
        if not moved:
            self._finish(row, status, error=f"{reason}; no other channel")
            return
        MESSAGES_OUT.labels(row.channel, status).inc()
        self.signal.set()
        if self._wake is not None:
            self._wake.set()

    async def _requeue_on_sms(self, session: AsyncSession, row: Claimed, now: datetime) -> int:
        # The same lock service.receive takes, so sequence numbers never collide.
        participant = await service.lock_participant(session, row.participant_id)
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

    # --- metrics -------------------------------------------------------------------------

    async def refresh_queue_depth(self) -> dict[str, int]:
        now = self.clock()
        async with self.transactions.begin() as session:
            queues = await outbox_queue.waiting(session, now)
        for channel in set(self.transports) | set(queues):
            queue = queues.get(channel)
            QUEUE_DEPTH.labels(channel).set(queue.pending if queue else 0)
            OLDEST_WAITING.labels(channel).set(queue.waited(now) if queue else 0)
        return {channel: queue.pending for channel, queue in queues.items()}

    async def _refresh_depth_safely(self) -> None:
        try:
            await self.refresh_queue_depth()
        except Exception:
            log.exception("could not count the outbox queue")


def shared_limits(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> DeliveryLimits:
    """The configured limits, the overall ones shared with every instance on the database."""
    engine = sessions.kw.get("bind")
    if not isinstance(engine, AsyncEngine):
        return DeliveryLimits.from_settings(settings)
    return DeliveryLimits.from_settings(settings, permits=PermitStore(engine))


def _choices(buttons: Iterable[dict[str, str]]) -> Iterable[Choice]:
    for number, button in enumerate(buttons, start=1):
        key = button.get("data", "").partition(":")[2] or str(number)
        yield Choice(key=key, label=button.get("label", ""))


def install(app: web.Application, relay: Relay, dispatch: bool) -> None:
    """Run the dispatcher beside the web server while `dispatch` is on."""
    if not dispatch:
        return
    settings = relay.settings

    async def dispatcher_context(app: web.Application):
        transports = build_transports(settings)
        limits = shared_limits(settings, relay.sessions)
        for channel in settings.simulated_channels:
            # The simulator is no carrier: its replies should appear at once.
            limits.channels.pop(channel, None)
        dispatcher = Dispatcher(
            relay.sessions,
            transports,
            settings,
            limits=limits,
            lease=settings.send_lease,
            send_timeout=settings.send_timeout,
            signal=relay.outbox_signal,
            health=relay.health,
        )
        task = asyncio.create_task(dispatcher.run(), name="outbox-dispatcher")
        yield
        dispatcher.stop()
        await task
        for transport in transports.values():
            try:
                await transport.close()
            except Exception:
                log.exception("closing the %s transport failed", transport.channel)

    app.cleanup_ctx.append(dispatcher_context)
