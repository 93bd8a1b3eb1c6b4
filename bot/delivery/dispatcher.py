"""The outbox dispatcher: claims queued messages and hands them to the channel transports.

Guarantees:
- Several dispatchers on one database never send a row twice, and messages to one contact
  leave in `seq` order (the claim path: bot/delivery/claims.py). Different contacts are
  sent concurrently, so a slow, failing or blocked recipient holds up no one else.
- A message that fails for a passing reason is retried with capped exponential backoff
  until it has been due for `settings.retry_for` (bot/delivery/retry.py); the messages
  behind it to the same contact wait, so they still arrive in order.
- Expired messages, opt-outs and unreachable contacts are settled before any send
  (bot/delivery/sending.py, bot/delivery/recipients.py).
- While `run()` loops, long-lived send workers take claimed rows from a queue in memory,
  and one transaction records every outcome that finished meanwhile and then claims what
  goes next (one UPDATE ... RETURNING). `drain()` commits a batch's outcomes together
  after its sends.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from aiohttp import web
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.channels.transport import Transport, build_transports
from bot.delivery import queue as outbox_queue
from bot.delivery.claims import ABANDONED, Claimed, Claims
from bot.delivery.health import ChannelBook
from bot.delivery.outcomes import Outcome, OutcomeWriter
from bot.delivery.ratelimit import DeliveryLimits
from bot.delivery.ready import ReadyRows
from bot.delivery.recipients import Recipients
from bot.delivery.send_watch import Sender, SendWatch
from bot.delivery.sending import Sending
from bot.delivery.shared_limits import PermitStore
from bot.delivery.transactions import Transactions
from bot.metrics import MESSAGES_OUT, OLDEST_WAITING, QUEUE_DEPTH
from bot.relay import Relay
from bot.settings import Settings
from store.models import OutboxStatus, utcnow

log = logging.getLogger(__name__)

# Rows held claimed per send slot with no rate limit, counting the one being sent: a worker
# that frees up takes the next claimed row at once, even while a claim transaction is
# under way, and each claim transaction covers a good batch of rows.
READ_AHEAD = 16
# How long a finished send's outcome may wait in memory for others to share its commit.
RECORD_DELAY = 0.02


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
        self.writer = OutcomeWriter(
            self.transactions, self.owner, keep_for=lease.total_seconds() / 2
        )
        # Channels with a per-chat limit: a chat's next message is claimed with the outcome
        # of its previous one, and its limiter follows that send, whoever made it.
        self._chained = [
            channel
            for channel in transports
            if self.limits.for_channel(channel) is not None
            and self.limits.for_channel(channel).per_recipient is not None
        ]
        follow = bool(self._chained)
        self.claims = Claims(
            owner=self.owner,
            lease=lease,
            clock=clock,
            postgres=self.transactions.postgres,
            follow=follow,
        )
        self.sending = Sending(
            transports=transports,
            settings=settings,
            limits=self.limits,
            health=self.health,
            writer=self.writer,
            recipients=Recipients(
                transactions=self.transactions,
                writer=self.writer,
                owner=self.owner,
                settings=settings,
                clock=clock,
                moved=self._moved,
            ),
            clock=clock,
            send_timeout=send_timeout,
            rng=rng,
            invite_key=invite_key,
        )
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
        self._stopping = False
        self._wake: asyncio.Event | None = None

    def _moved(self) -> None:
        """Messages were moved to another channel: send them without waiting for a poll."""
        self.signal.set()
        if self._wake is not None:
            self._wake.set()

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
            await self.sending.process(row, sender)
        except Exception as exc:
            log.exception("sending outbox row %d failed", row.id)
            try:
                self.sending.fault(row, exc)
            except Exception:
                # The row stays "sending" under our lease and is claimed again when it runs
                # out; the claim counts that, and fails the row after a few (claims.py).
                log.exception("could not reschedule outbox row %d", row.id)
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
            claimed, following = await self.transactions.run(
                self._record_and_claim, outcomes, wanted
            )
        except Exception:
            log.exception("claiming outbox rows failed; retrying shortly")
            self.claims.abandoned.clear()  # rolled back with the claim
            if outcomes:  # a failed claim must not lose what was sent
                await self.writer.write_batch(outcomes)
            return False
        self._count_abandoned()
        self.writer.settle(outcomes)
        for row in itertools.chain(following, *claimed.values()):
            self._held[row.channel] += 1
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
    ) -> tuple[dict[str, list[Claimed]], list[Claimed]]:
        """Record `outcomes`, claim batches as `wanted`, and claim the next message of each
        chat whose previous one was just recorded as sent (`_chained` channels): it would
        otherwise wait for the next batch of any instance, and lose part of its interval."""
        self.writer.record(connection, outcomes)
        claimed = {
            channel: self.claims.claim_in(connection, free, [channel])
            for channel, free in wanted.items()
        }
        following: list[Claimed] = []
        for channel in self._chained:
            contacts = [
                outcome.contact_id
                for outcome in outcomes
                if outcome.sent_at is not None
                and outcome.channel == channel
                and outcome.contact_id is not None
            ]
            following += self.claims.claim_next(connection, contacts, [channel])
        return claimed, following

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

    async def claim(self, limit: int, channels: list[str] | None = None) -> list[Claimed]:
        """Mark up to `limit` due rows "sending" under our lease, in one short transaction."""
        channels = list(self.transports) if channels is None else channels
        if limit <= 0 or not channels:
            return []
        try:
            async with self.transactions.connect() as connection:
                claimed = await connection.run_sync(self.claims.claim_in, limit, channels)
        except Exception:
            self.claims.abandoned.clear()  # rolled back with the claim
            raise
        self._count_abandoned()
        return claimed

    def _count_abandoned(self) -> None:
        """Rows a claim failed (their lease kept running out): on /healthz and in metrics."""
        for channel in self.claims.abandoned:
            self.health.channel(channel).given_up(ABANDONED)
            MESSAGES_OUT.labels(channel, OutboxStatus.FAILED).inc()
        self.claims.abandoned.clear()

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
