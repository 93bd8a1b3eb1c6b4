"""Send timeouts for the dispatcher's workers, kept by one watchdog task."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any


class Sender:
    """One send worker, as the watchdog sees it: the deadline of the send in progress."""

    __slots__ = ("task", "deadline", "expired")

    def __init__(self, task: asyncio.Task[Any]):
        self.task = task
        self.deadline: float | None = None  # time.monotonic(); None between sends
        self.expired = False  # the watchdog cancelled this send


class SendWatch:
    """Send timeouts for the workers, kept by one watchdog task.

    asyncio.timeout around each send costs a timer, a task lookup and two event loop
    lookups per message. Here a send only notes its deadline, and the watchdog looks every
    `period` seconds: a worker whose send has outlived its deadline is cancelled, and turns
    that cancellation into TimeoutError (a send may so run up to `period` too long).
    """

    def __init__(self, timeout: float):
        self.period = min(1.0, timeout / 4)
        self.senders: set[Sender] = set()

    def enlist(self) -> Sender:
        task = asyncio.current_task()
        assert task is not None
        sender = Sender(task)
        self.senders.add(sender)
        return sender

    def expire_overdue(self) -> None:
        now = time.monotonic()
        for sender in self.senders:
            if sender.deadline is not None and now >= sender.deadline and not sender.expired:
                sender.expired = True
                sender.task.cancel()

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        async def watch() -> None:
            while True:
                await asyncio.sleep(self.period)
                self.expire_overdue()

        watchdog = asyncio.create_task(watch(), name="outbox-send-watchdog")
        try:
            yield
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
