"""Inbound webhooks in groups: many messages, one transaction, the same answer to each.

A webhook hands its message to the instance's batcher and waits; the batcher takes what
is waiting (up to `size`, lingering a moment for more when there is little), handles all of
it in one transaction (`batch_turns.handle_batch`), commits, and only then answers each
webhook. So the provider's 200 still means "stored, and the reply queued" (or "stored, to
be handled later": see below); a crash before the commit answers nobody, and the provider
sends again. If the batch's transaction fails (a race with another instance, a constraint,
one message that makes its turn raise), each of its messages runs alone through
`turns.receive`, in arrival order, so one bad message never fails the others and none is
handled twice (the batch's rows were rolled back). A message whose turn fails alone too is
stored to be tried again (`unhandled`), and its sender's later messages wait behind it;
its webhook is answered as the others are.

On PostgreSQL two groups run at once (one's turns while the other waits for the database),
never with one person in both: a person's messages keep their arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import web

from bot.metrics import INBOUND_BATCHED, INBOUND_BATCHES, MESSAGES_IN
from bot.relay import Relay
from bot.services import turns
from bot.services.batch_turns import Arrival, handle_batch
from bot.services.turns import Received
from bot.services.unhandled.keep import receive_or_keep

log = logging.getLogger(__name__)

BATCH_SIZE = 64
LINGER_SECONDS = 0.002  # how long a small batch waits for company
PARALLEL = 2  # groups handled at once on PostgreSQL


class Batcher:
    def __init__(
        self,
        relay: Relay,
        *,
        size: int = BATCH_SIZE,
        linger: float = LINGER_SECONDS,
        parallel: int | None = None,
    ):
        self.relay = relay
        self.size = size
        self.linger = linger
        # PostgreSQL: while one group waits for the database, the next one's turns run.
        # SQLite has one writer: a second group would only wait for the first.
        sqlite = relay.settings.database_url.startswith("sqlite")
        self.parallel = parallel or (1 if sqlite else PARALLEL)
        self.waiting: list[Arrival] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()
        self._busy: set[tuple[str, str]] = set()  # addresses in a group being handled

    async def receive(self, **message: Any) -> Received:
        """What `turns.receive` does, with this message's turn in the next batch."""
        m = turns.Incoming.of(**message)
        future = asyncio.get_running_loop().create_future()
        self.waiting.append(Arrival(**vars(m), future=future))
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="inbound batcher")
        return await future

    async def close(self) -> None:
        for task in [self._task, *self._running]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for arrival in self.waiting:
            if not arrival.future.done():
                arrival.future.cancel()
        self.waiting.clear()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.waiting and len(self._running) < self.parallel:
                if len(self.waiting) < self.size and self.linger:
                    await asyncio.sleep(self.linger)
                taken = self._take()
                if not taken:
                    break  # all from people in a group being handled: wait for it
                task = asyncio.create_task(self._handle_group(taken))
                self._running.add(task)

    def _take(self) -> list[Arrival]:
        """The next group, in arrival order, from people no other group being handled has:
        a person's messages are never in two groups at once (nor their retries, if that
        group fails), so they keep their order. A message left waiting holds back the
        later ones of its sender."""
        taken: list[Arrival] = []
        kept: list[Arrival] = []
        held: set[tuple[str, str]] = set()
        for arrival in self.waiting:
            key = arrival.key
            if len(taken) < self.size and key not in self._busy and key not in held:
                taken.append(arrival)
            else:
                kept.append(arrival)
                held.add(key)
        self.waiting = kept
        self._busy.update(a.key for a in taken)
        return taken

    async def _handle_group(self, arrivals: list[Arrival]) -> None:
        try:
            await self._handle(arrivals)
        finally:
            self._busy.difference_update(a.key for a in arrivals)
            self._running.discard(asyncio.current_task())
            self._wake.set()

    async def _handle(self, arrivals: list[Arrival]) -> None:
        relay = self.relay
        try:
            async with relay.write_turn(), relay.sessions.begin() as session:
                results = await handle_batch(session, relay, arrivals)
        except asyncio.CancelledError:
            for arrival in arrivals:
                arrival.future.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 -- each message is then tried alone
            INBOUND_BATCHES.labels("split").inc()
            log.info(
                "a batch of %d inbound messages failed (%s); each runs alone",
                len(arrivals),
                type(exc).__name__,
            )
            await self._one_by_one(arrivals)
            return
        INBOUND_BATCHES.labels("committed").inc()
        INBOUND_BATCHED.inc(len(arrivals))
        queued = 0
        for arrival, received in zip(arrivals, results, strict=True):
            outcome = "duplicate" if received.duplicate else "held" if received.kept else "handled"
            MESSAGES_IN.labels(arrival.channel, outcome).inc()
            queued += received.queued
            if not arrival.future.done():
                arrival.future.set_result(received)
        if queued:
            relay.outbox_signal.set()

    async def _one_by_one(self, arrivals: list[Arrival]) -> None:
        for a in arrivals:
            try:
                received = await receive_or_keep(self.relay, **a.message())
            except Exception as exc:  # noqa: BLE001 -- not even kept: its webhook answers 500
                if not a.future.done():
                    a.future.set_exception(exc)
            else:
                if not a.future.done():
                    a.future.set_result(received)


async def receive(relay: Relay, **message) -> Received:
    """An inbound message from a webhook: through the relay's batcher when the service
    runs one, else alone (`turns.receive`; kept for later if its turn fails)."""
    batcher = relay.batcher
    if batcher is None:
        return await receive_or_keep(relay, **message)
    return await batcher.receive(**message)


def install(app: web.Application, relay: Relay) -> None:
    """The batcher lives while the application runs (after the database is open)."""

    async def lifecycle(app: web.Application):
        batcher = relay.batcher = Batcher(relay)
        yield
        relay.batcher = None
        await batcher.close()

    app.cleanup_ctx.append(lifecycle)
