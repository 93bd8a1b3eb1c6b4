"""Claimed rows waiting in memory for a send worker, taken from each channel in turn."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterable

from bot.delivery.claims import Claimed


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
