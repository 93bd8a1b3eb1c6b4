"""Send-rate limits shared by every dispatcher on one database.

The rule is a window: at most `limit` sends reach the far side in any `window` seconds
(Telegram: 30 in any second), across every instance. Each limit is one row of
`delivery_limits` holding the sends reserved lately, on the database's clock: for each, the
time it may start and how late it may still reach the far side (its end). A dispatcher
reserves a small block of sends in one transaction that locks the row; each new time comes
after the latest reserved, and at least `window` after the `limit`-th latest end. So any
window meets at most `limit` sends between their times and their ends.

A send starts only within its allowance after its time: `SharedWindow.acquire` checks that
just before the send, and nothing is awaited between that check and the hand-over. A send
that wakes later does not go: its time is given back (removed from the row with the next
block, so the room it held serves whoever reserves next) and it reserves another. The
allowance is GO_LATE plus the lag this process's wake-ups showed lately (LAG_SAMPLES); the
end is the time plus the allowance, plus that lag again (on a busy machine a send can be
held up after the check as long as a wake-up is), plus MARGIN for the network and the
estimate of the database's clock, or more when this process's recent sends took longer
from their check to the far side's answer (`landed`: a send reaches the far side within
that time, and on a busy machine it can exceed MARGIN). So a busy process still sends,
and its sends' ends say how late they may arrive before anyone places a send beside them.
Times are otherwise at least SPACING apart, which lets sends catch up after times given
back and never bunches more than a block of them.

Reserved times are turned into this process's monotonic time through the offset to the
database's clock measured on the same round trips (the fastest recent round trip's offset,
as it is the most exact). A dispatcher that dies loses only the sends it had reserved: at
most LEAD seconds plus one block ahead. HORIZON bounds how far ahead of the clock a time
may be, so a database clock stepped back does not stop sending for long.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.delivery.ratelimit import Clock, Sleep

log = logging.getLogger(__name__)

# How late after its reserved time a send may still start.
GO_LATE = 0.01
# What the network and the clock estimate may shift one send against another.
MARGIN = 0.01
# Wake-ups over which the lag of this process is taken at its largest, and the most lag
# counted (a longer one is a stalled process: its sends are given back anyway).
LAG_SAMPLES = 16
LAG_CAP = 0.1
# The least gap between two reserved times, as a share of the window's average interval.
SPACING = 0.8
# Reserve the next block once the last time reserved is this close: a round trip (even a
# slow one, or one queued behind a claim on SQLite) ends well before the times run out.
LEAD = 0.2
# A block covers about this long at the limit's rate (at least one send).
BLOCK_SECONDS = 0.1
# How far ahead of the database clock a reserved time may be, whatever the clock does.
HORIZON = 60.0
RETRY_AFTER_ERROR = 0.5
# Blocks over which the other instances' lead is taken at its largest (`SharedWindow._ahead`):
# their blocks interleave with ours, so one sample may miss one of theirs.
AHEAD_SAMPLES = 4
CALIBRATION_SAMPLES = 5

_NOW = {
    "postgresql": "CAST(extract(epoch from clock_timestamp()) AS double precision)",
    "sqlite": "((julianday('now') - 2440587.5) * 86400.0)",
}


def database_clock(dialect: str) -> str:
    """SQL for the database's clock in seconds since the epoch (a double)."""
    return _NOW[dialect]


@dataclass(frozen=True)
class Window:
    """At most `limit` sends in any `seconds`; reserved times `spacing` apart at least."""

    limit: int
    seconds: float
    spacing: float

    @classmethod
    def for_rate(cls, rate: float) -> Window:
        """`rate` sends a second, counted over the shortest window holding a whole send."""
        if rate <= 0:
            raise ValueError("rate must be positive (use no limiter for 'unlimited')")
        limit = max(1, math.floor(rate + 1e-9))
        seconds = limit / rate
        return cls(limit, seconds, SPACING * (seconds + GO_LATE + MARGIN) / limit)

    @property
    def rate(self) -> float:
        """The most a steady backlog gets, with no lag."""
        return self.limit / (self.seconds + GO_LATE + MARGIN)


Send = list[float]  # [time, end] on the database's clock


def place(reserved: list[Send], earliest: list[float], slack: float, window: Window) -> list[Send]:
    """New sends after `reserved` (by time), one per entry of `earliest` and in its order,
    each the earliest the window allows, not before its entry, ending `slack` after it.

    A window that meets the new send and started before it meets every send whose end is
    in it: no `limit` of those may end within `window.seconds` before the new time."""
    sends = [list(send) for send in reserved]
    ends = sorted(end for _, end in sends)
    for at in earliest:
        if sends:
            at = max(at, sends[-1][0] + window.spacing)
        if len(ends) >= window.limit:
            at = max(at, ends[-window.limit] + window.seconds)
        sends.append([at, at + slack])
        bisect.insort(ends, at + slack)
    return sends[len(reserved) :]


class PermitStore:
    """The `delivery_limits` rows of one database, taken through the dispatcher's engine."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock = time.monotonic):
        self.engine = engine
        self.clock = clock
        now = _NOW[engine.dialect.name]
        # Locks the row (creating it the first time) and reads it and the clock after the
        # lock: whoever held it has committed its times by then.
        self._lock = text(
            f"INSERT INTO delivery_limits (key, tat, sends) VALUES (:key, {now}, '[]') "
            f"ON CONFLICT (key) DO UPDATE SET tat = delivery_limits.tat RETURNING sends, {now}"
        )
        self._write = text("UPDATE delivery_limits SET sends = :sends, tat = :tat WHERE key = :key")
        self._clock_statement = text(f"SELECT {now}")
        self._samples: collections.deque[tuple[float, float]] = collections.deque(maxlen=16)
        # How long after the database read its clock the last few reservations reached us:
        # a new time is placed at least that far ahead, or its send would be late at once.
        self._stale: collections.deque[float] = collections.deque([0.0], maxlen=8)

    async def take(
        self,
        key: str,
        earliest: list[float],
        window: Window,
        released: list[float] = (),
        slack: float = GO_LATE + MARGIN,
    ) -> list[float]:
        """Give back the `released` times (database clock) and reserve one new time for
        each of `earliest` (our clock: none before it), in that order; the new times are
        on the database's clock (`local` converts them)."""
        async with self.engine.begin() as connection:
            if not self._samples:
                await self._calibrate(connection)
            sent = self.clock()
            sends, db_now = (await connection.execute(self._lock, {"key": key})).one()
            answered = self.clock()
            given_back = set(released)
            # Older times share no window with any new one; times too far ahead are a
            # clock stepped back.
            reserved = [
                [at, end]
                for at, end in json.loads(sends)
                if end > db_now - window.seconds and at <= db_now + HORIZON and at not in given_back
            ]
            # This round trip's own length stands in until a whole reservation is measured.
            lead = max(1.5 * max(self._stale), 3 * (answered - sent)) + 0.002
            soonest = db_now + min(LEAD, lead)
            _, offset = min(self._samples, default=(0.0, db_now - answered))
            new = place(reserved, [max(soonest, at + offset) for at in earliest], slack, window)
            reserved += new
            latest = reserved[-1][0] if reserved else db_now
            await connection.execute(
                self._write, {"key": key, "sends": json.dumps(reserved), "tat": latest}
            )
        self._sample(sent, answered, db_now)
        self._stale.append(self.clock() - (sent + answered) / 2)
        return [at for at, _ in new]

    def local(self, at: float) -> float:
        """A time on the database's clock, on our monotonic clock."""
        _, offset = min(self._samples)
        return at - offset

    async def _calibrate(self, connection: Any) -> None:
        """Read the database's clock a few times before the first times are placed: a first
        round trip on a new connection is slow, and an offset taken from it alone could put
        our first sends on top of another instance's."""
        for _ in range(CALIBRATION_SAMPLES):
            sent = self.clock()
            db_now = (await connection.execute(self._clock_statement)).scalar_one()
            self._sample(sent, self.clock(), db_now)

    def _sample(self, sent: float, answered: float, db_now: float) -> None:
        # The database read its clock somewhere in the round trip: assume halfway.
        self._samples.append((answered - sent, db_now - (sent + answered) / 2))


# A waiter's future (its reserved time, database clock, and how late it may start) and the
# earliest its time may be (our clock).
Waiter = tuple[asyncio.Future[tuple[float, float]], float]


class SharedWindow:
    """At most `rate` sends a second across every instance sharing `store`'s `key`.

    Waiters are served first come, first served: one task reserves blocks for them. A
    waiter that may not go before a given time (a busy chat's next message) waits at the
    front, skipped until its time is near, so it takes the first time after it and holds
    nobody up meanwhile.
    """

    def __init__(self, store: PermitStore, key: str, rate: float, *, sleep: Sleep = asyncio.sleep):
        self.window = Window.for_rate(rate)
        self.store, self.key, self.rate = store, key, self.window.rate
        # Times reserved back to back are this far apart: blocks are foreseen with it, so a
        # waiter with a time of its own never gets one before it.
        self.interval = self.window.spacing
        self.block = max(1, math.ceil(rate * BLOCK_SECONDS))
        self.clock, self.sleep = store.clock, sleep
        # Each waiter's future (a reserved time, database clock) and its earliest time.
        self._waiting: collections.deque[Waiter] = collections.deque()
        self._filler: asyncio.Task[None] | None = None
        self._last_slot = float("-inf")
        self._failing = False
        self._released: list[float] = []  # times given back, for the next block to remove
        # How far the shared schedule ran ahead of our own times at the last block: the
        # other instances' reservations. A waiter with a time of its own joins a block that
        # much earlier, so its send still falls at its time rather than that much after.
        self._ahead = 0.0
        self._aheads: collections.deque[float] = collections.deque(maxlen=AHEAD_SAMPLES)
        self._arrived = asyncio.Event()  # a waiter came while the filler waited for a time
        self.given_back = 0  # times given back so far (late, or held up by `hold`)
        # How late our last wake-ups were: a send may be held up as long after its check.
        self._lags: collections.deque[float] = collections.deque([0.0], maxlen=LAG_SAMPLES)
        # How long our last sends took from their check to the far side's answer: each
        # reached the far side within that. Before the first has landed it is unknown, and
        # taken as LAG_CAP: a process's first send is its slowest (a new connection, code
        # loaded on first use: 45-50 ms, against 2-5 ms after, seen on loopback).
        self._transits: collections.deque[float] = collections.deque(maxlen=LAG_SAMPLES)

    def landed(self, seconds: float) -> None:
        """A send acquired here was answered `seconds` after `acquire` returned."""
        self._transits.append(min(max(0.0, seconds), LAG_CAP))

    async def acquire(
        self, not_before: float | None = None, hold: Callable[[], float] | None = None
    ) -> None:
        """Return at a reserved time of our own, at most its allowance after it (GO_LATE
        and the lag foreseen when it was reserved), never before `not_before`, and with
        `hold()` (what else holds this send up, in seconds) at 0. The caller sends next,
        awaiting nothing before it."""
        earliest = float("-inf") if not_before is None else not_before
        first = not_before is not None
        while True:
            at, allowed = await self._reserve(earliest, first)
            try:
                while (delay := max(self.store.local(at), earliest) - self.clock()) > 0:
                    await self.sleep(delay)
            except asyncio.CancelledError:
                self._give_back(at)
                raise
            now = self.clock()
            wait = hold() if hold is not None else 0.0
            late = now - max(self.store.local(at), earliest)
            self._lags.append(min(max(0.0, late), LAG_CAP))
            if now - self.store.local(at) <= allowed and wait <= 0:
                return
            # Going now could crowd the window: give the time back, take another, first.
            self._give_back(at)
            earliest, first = (now + wait if wait > 0 else float("-inf")), True

    async def _reserve(self, earliest: float, first: bool) -> tuple[float, float]:
        future: asyncio.Future[tuple[float, float]] = asyncio.get_running_loop().create_future()
        if first:
            self._waiting.appendleft((future, earliest))
        else:
            self._waiting.append((future, earliest))
        self._arrived.set()
        self._start_filler()
        return await future

    def _give_back(self, at: float) -> None:
        self.given_back += 1
        self._released.append(at)
        self._start_filler()

    def _start_filler(self) -> None:
        if self._filler is None or self._filler.done():
            self._filler = asyncio.create_task(self._fill(), name=f"permits-{self.key}")

    def _next_block(self) -> list[Waiter]:
        """Up to a block of live waiters, in time order: one with a time of its own takes
        the first time foreseen at or after it, the others go first come, first served."""
        live = [waiter for waiter in self._waiting if not waiter[0].done()]
        timed = sorted((w for w in live if w[1] != float("-inf")), key=lambda w: w[1])
        plain = collections.deque(w for w in live if w[1] == float("-inf"))
        start = self._own_start() + self._ahead
        block: list[Waiter] = []
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
        """Where the next block would start if no other instance took any times."""
        return max(self.clock(), self._last_slot + self.interval)

    async def _fill(self) -> None:
        while self._waiting or self._released:
            ahead = self._last_slot - self.clock() - LEAD
            if ahead > 0 and not self._released:
                await self.sleep(ahead)
                continue
            waiters = self._next_block() if ahead <= 0 else []
            released, self._released = self._released, []
            if not waiters and not released:
                if self._waiting:  # none due yet: wait for the first, or for a newcomer
                    self._arrived.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._arrived.wait(), self._next_due())
                continue
            own = self._own_start()
            earliest = [nb for _, nb in waiters]
            # A process that wakes late lately may start that much later, and be held up
            # that much after the check: its sends end later, so none is placed beside them.
            lag = max(self._lags)
            try:
                transit = max(self._transits) if self._transits else LAG_CAP
                slack = GO_LATE + 2 * lag + max(MARGIN, transit)
                times = await self.store.take(self.key, earliest, self.window, released, slack)
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
                self._released = released + self._released
                await self.sleep(RETRY_AFTER_ERROR)
                continue
            self._failing = False
            if times:
                self._aheads.append(max(0.0, self.store.local(times[0]) - max(own, earliest[0])))
                # No other instance reserves further ahead than this: more is a stepped
                # clock or a crashed instance's times, not a lead to join blocks earlier by.
                self._ahead = min(max(self._aheads), LEAD + BLOCK_SECONDS)
            self._hand_out(waiters, times, GO_LATE + lag)

    def _hand_out(self, waiters: list[Waiter], times: list[float], allowed: float) -> None:
        for (future, _), at in zip(waiters, times, strict=True):
            if future.done():  # its send was cancelled meanwhile
                self._released.append(at)
            else:
                future.set_result((at, allowed))
        if times:
            self._last_slot = self.store.local(times[-1])
