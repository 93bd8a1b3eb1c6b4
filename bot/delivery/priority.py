"""A lock handed on first come, first served, except to waiters that ask to go first."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator


class PriorityLock:
    """Like asyncio.Lock, but a waiter that asks `first` is served before the others.

    A busy chat's next message has already waited out the chat's interval: served at the
    back of the queue, it would wait that queue out too, and the chat would get less than
    its rate.
    """

    def __init__(self) -> None:
        self._locked = False
        self._first: collections.deque[asyncio.Future[None]] = collections.deque()
        self._rest: collections.deque[asyncio.Future[None]] = collections.deque()

    @contextlib.asynccontextmanager
    async def held(self, first: bool = False) -> AsyncIterator[None]:
        await self._acquire(first)
        try:
            yield
        finally:
            self._release()

    def contended(self) -> bool:
        """Whether anyone waits for the lock."""
        return any(not future.done() for future in (*self._first, *self._rest))

    async def _acquire(self, first: bool) -> None:
        if not self._locked:
            self._locked = True
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (self._first if first else self._rest).append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self._release()  # handed to us just as we were cancelled: pass it on
            raise

    def _release(self) -> None:
        """Hand the lock to the next live waiter, or unlock when there is none."""
        for waiters in (self._first, self._rest):
            while waiters:
                future = waiters.popleft()
                if not future.done():  # a cancelled waiter's future is done
                    future.set_result(None)
                    return
        self._locked = False
