"""Send-rate limits shared by every dispatcher on one database.

Each limit is one row of `delivery_limits` holding a GCRA's theoretical arrival time on the
database's clock. A dispatcher takes permits in small blocks, one statement each:

    tat = min(max(tat, now), now + HORIZON) + n * interval   RETURNING tat, now

so n sends are bought with one round trip, and the block's slots are `tat - n * interval`,
one interval apart. Whoever takes next gets the slots after them, whichever instance it
is, so all instances together never send faster than the rate. Slots are read on the
database's clock and turned into this process's monotonic time through the offset measured
on the same round trip (the fastest recent round trip's offset, as it is the most exact).

A send that leaves late (a busy event loop) would crowd the sends of the next second: it
pushes the shared schedule back by its lateness (beyond LATE) with the next block (or at
once), so the slots reserved after that stay a full second of slots away from it.

A dispatcher that dies loses only the slots it had reserved: at most LEAD seconds plus one
block ahead, as it reserves no further ahead than that. HORIZON bounds how far a row can
be ahead of the clock, so a database clock stepped back does not stop sending for long.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.delivery.ratelimit import Clock, Sleep

log = logging.getLogger(__name__)

# Reserve the next block once the last slot reserved is this close: a round trip (even a
# slow one, or one queued behind a claim on SQLite) ends well before the slots run out.
LEAD = 0.2
# A block covers about this long at the limit's rate (at least one send).
BLOCK_SECONDS = 0.1
# How far ahead of the database clock a limit may be pushed, whatever the clock does.
HORIZON = 60.0
RETRY_AFTER_ERROR = 0.5
# Lateness the far side's window count absorbs: strict pacing at 98% of the rate leaves
# about 20 ms a second; half is kept for network jitter, the rest pushes nothing back.
LATE = 0.01
# Blocks over which the other instances' lead is taken at its largest (`SharedGcra._ahead`):
# their blocks interleave with ours, so one sample may miss one of theirs.
AHEAD_SAMPLES = 4
CALIBRATION_SAMPLES = 5
# A send that wakes this far after its slot gives the slot up and takes another (at most
# REPLACE_LATE times): going now would put it on top of the next slot, maybe another
# instance's, and two sends would arrive together.
TOO_LATE = 0.5  # of an interval
REPLACE_LATE = 2

_NOW = {
    "postgresql": "CAST(extract(epoch from clock_timestamp()) AS double precision)",
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}
_MAX = {"postgresql": "greatest", "sqlite": "max"}


def database_clock(dialect: str) -> str:
    """SQL for the database's clock in seconds since the epoch (a double)."""
    return _NOW[dialect]


_MIN = {"postgresql": "least", "sqlite": "min"}


def _take_statement(dialect: str) -> Any:
    now, biggest, smallest = _NOW[dialect], _MAX[dialect], _MIN[dialect]
    return text(
        f"INSERT INTO delivery_limits (key, tat) VALUES (:key, {now} + :cost) "
        f"ON CONFLICT (key) DO UPDATE SET tat = {smallest}({biggest}(delivery_limits.tat, "
        f"{now}), {now} + :horizon) + :cost "
        f"RETURNING tat, {now}"
    )


class PermitStore:
    """The `delivery_limits` rows of one database, taken through the dispatcher's engine."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock = time.monotonic):
        self.engine = engine
        self.clock = clock
        self._statement = _take_statement(engine.dialect.name)
        self._clock_statement = text(f"SELECT {_NOW[engine.dialect.name]}")
        self._samples: collections.deque[tuple[float, float]] = collections.deque(maxlen=16)

    async def take(self, key: str, count: int, interval: float, delay: float = 0.0) -> float:
        """Reserve `count` slots `interval` apart, after pushing the schedule back by `delay`;
        the first slot, on our monotonic clock."""
        async with self.engine.begin() as connection:
            if not self._samples:
                await self._calibrate(connection)
            sent = self.clock()
            tat, db_now = (
                await connection.execute(
                    self._statement,
                    {"key": key, "cost": count * interval + delay, "horizon": HORIZON},
                )
            ).one()
            answered = self.clock()
        self._sample(sent, answered, db_now)
        _, offset = min(self._samples)
        return tat - count * interval - offset

    async def _calibrate(self, connection: Any) -> None:
        """Read the database's clock a few times before the first slots are placed: a first
        round trip on a new connection is slow, and an offset taken from it alone could put
        our first slots on top of another instance's."""
        for _ in range(CALIBRATION_SAMPLES):
            sent = self.clock()
            db_now = (await connection.execute(self._clock_statement)).scalar_one()
            self._sample(sent, self.clock(), db_now)

    def _sample(self, sent: float, answered: float, db_now: float) -> None:
        # The database read its clock somewhere in the round trip: assume halfway.
        self._samples.append((answered - sent, db_now - (sent + answered) / 2))


class SharedGcra:
    """At most `rate` sends a second across every instance sharing `store`'s `key`.

    Waiters are served first come, first served: one task reserves blocks for them. A
    waiter that may not go before a given time (a busy chat's next message) waits at the
    front, skipped until its time is near, so it takes the first slot after it and holds
    nobody up meanwhile.
    """

    def __init__(self, store: PermitStore, key: str, rate: float, *, sleep: Sleep = asyncio.sleep):
        if rate <= 0:
            raise ValueError("rate must be positive (use no limiter for 'unlimited')")
        self.store, self.key, self.rate = store, key, rate
        self.interval = 1.0 / rate
        self.block = max(1, math.ceil(rate * BLOCK_SECONDS))
        self.clock, self.sleep = store.clock, sleep
        # Each waiter's future and the earliest time its slot may be (on `clock`).
        self._waiting: collections.deque[tuple[asyncio.Future[float], float]] = collections.deque()
        self._filler: asyncio.Task[None] | None = None
        self._last_slot = float("-inf")
        self._failing = False
        self._late = 0.0  # the most a send left after its slot since the last block
        # How far the shared schedule ran ahead of our own slots at the last block: the
        # other instances' reservations. A waiter with a time of its own joins a block that
        # much earlier, so its slot still falls at its time rather than that much after.
        self._ahead = 0.0
        self._aheads: collections.deque[float] = collections.deque(maxlen=AHEAD_SAMPLES)
        self._arrived = asyncio.Event()  # a waiter came while the filler waited for a time

    async def acquire(self, not_before: float | None = None) -> None:
        """Wait for a slot of our own and for its moment, never before `not_before`; a slot
        woken up for too late is exchanged for a new one (see TOO_LATE)."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        if not_before is None:
            self._waiting.append((future, float("-inf")))
        else:
            self._waiting.appendleft((future, not_before))
        self._arrived.set()
        self._start_filler()
        for attempt in range(REPLACE_LATE + 1):
            slot = await future
            start = slot if not_before is None else max(slot, not_before)
            delay = start - self.clock()
            if delay > 0:
                await self.sleep(delay)
            late = self.clock() - slot
            if late - LATE > 0:
                self._late = max(self._late, late - LATE)
                self._start_filler()
            if late <= TOO_LATE * self.interval or attempt == REPLACE_LATE:
                return
            # Too late to go without crowding the next slot: take a new one, first in line.
            future = asyncio.get_running_loop().create_future()
            self._waiting.appendleft((future, float("-inf")))
            self._arrived.set()
            self._start_filler()

    def _start_filler(self) -> None:
        if self._filler is None or self._filler.done():
            self._filler = asyncio.create_task(self._fill(), name=f"permits-{self.key}")

    def _next_block(self) -> list[tuple[asyncio.Future[float], float]]:
        """Up to a block of live waiters, in slot order: one with a time of its own takes
        the first slot foreseen at or after it, the others go first come, first served.
        Slots come no earlier than foreseen (the shared schedule only moves on), so
        nobody is handed a slot before their time."""
        live = [waiter for waiter in self._waiting if not waiter[0].done()]
        timed = sorted((w for w in live if w[1] != float("-inf")), key=lambda w: w[1])
        plain = collections.deque(w for w in live if w[1] == float("-inf"))
        start = self._own_start() + self._ahead
        block: list[tuple[asyncio.Future[float], float]] = []
        while len(block) < self.block:
            if timed and timed[0][1] <= start + len(block) * self.interval:
                block.append(timed.pop(0))
            elif plain:
                block.append(plain.popleft())
            else:
                break
        chosen = {future for future, _ in block}
        self._waiting = collections.deque(w for w in live if w[0] not in chosen)
        return block

    def _next_due(self) -> float:
        """Seconds until the first waiter's time (none can go now)."""
        soonest = min((nb for future, nb in self._waiting if not future.done()), default=None)
        if soonest is None:
            return 0.0
        return max(0.0, soonest - self._own_start() - self._ahead)

    def _own_start(self) -> float:
        """Where the next block would start if no other instance took any slots."""
        return max(self.clock(), self._last_slot + self.interval)

    async def _fill(self) -> None:
        while self._waiting or self._late:
            ahead = self._last_slot - self.clock() - LEAD
            if ahead > 0 and not self._late:
                await self.sleep(ahead)
                continue
            waiters = self._next_block()
            late, self._late = self._late, 0.0
            if not waiters and not late:
                if self._waiting:  # none due yet: wait for the first, or for a newcomer
                    self._arrived.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._arrived.wait(), self._next_due())
                continue
            own = self._own_start()
            try:
                first = await self.store.take(self.key, len(waiters), self.interval, late)
            except Exception as exc:
                # The database is out of reach: sends wait (nothing could be recorded
                # anyway), and are let through again as soon as it answers.
                if not self._failing:
                    log.warning(
                        "could not take %s send permits: %s; trying again shortly",
                        self.key.partition(":")[0],
                        type(exc).__name__,
                    )
                self._failing = True
                self._waiting.extendleft(reversed(waiters))
                self._late = max(self._late, late)
                await self.sleep(RETRY_AFTER_ERROR)
                continue
            self._failing = False
            self._aheads.append(max(0.0, first - own - late))
            # No other instance reserves further ahead than this: more is a stepped clock
            # or a crashed instance's slots, not a lead to join blocks earlier by.
            self._ahead = min(max(self._aheads), LEAD + BLOCK_SECONDS)
            self._hand_out(waiters, first)

    def _hand_out(self, waiters: list[tuple[asyncio.Future[float], float]], first: float) -> None:
        for number, (future, _) in enumerate(waiters):
            if not future.done():
                future.set_result(first + number * self.interval)
        if waiters:
            self._last_slot = first + (len(waiters) - 1) * self.interval
