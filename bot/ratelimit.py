"""Send-rate limits: GCRA (a token bucket kept as one timestamp) with an injectable clock.

Telegram allows about 30 messages a second overall and one a second per chat; an SMS sender
number has its own messages-per-second limit. `DeliveryLimits` holds one limiter per rule;
a rate of 0 (or `DeliveryLimits.off()`) means no limit, for benchmarks and the simulator.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.settings import Settings

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# Limits are enforced on our side of the network; requests can arrive a little closer
# together than they left. Pacing 2% under the published rate keeps the far side's count
# for any one-second window at or under the limit.
HEADROOM = 0.98
EPSILON = 1e-9  # float sums of intervals drift by ~1e-13; never wait for that


class Gcra:
    """At most `rate` sends a second, `burst` of them back to back.

    `tat` is the theoretical arrival time of the next send: each send pushes it one
    emission interval further. A send at `now` conforms when now >= tat - tolerance.
    """

    def __init__(self, rate: float, burst: int = 1, *, clock: Clock = time.monotonic,
                 sleep: Sleep = asyncio.sleep):
        if rate <= 0:
            raise ValueError("rate must be positive (use no limiter for 'unlimited')")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.rate = rate
        self.interval = 1.0 / rate
        self.tolerance = self.interval * (burst - 1)
        self.clock = clock
        self.sleep = sleep
        self.tat = float("-inf")
        self._lock: asyncio.Lock | None = None

    def wait_time(self) -> float:
        """Seconds until a send would conform (0 when it may go now)."""
        wait = self.tat - self.tolerance - self.clock()
        return wait if wait > EPSILON else 0.0

    def take(self, cost: float = 1.0) -> None:
        """Record a send happening now (whether or not it conformed)."""
        now = self.clock()
        self.tat = max(self.tat, now) + self.interval * cost

    def try_take(self, cost: float = 1.0) -> bool:
        if self.wait_time() > 0:
            return False
        self.take(cost)
        return True

    def hold(self, seconds: float) -> None:
        """Let nothing through for `seconds` (the far side asked us to back off)."""
        self.tat = max(self.tat, self.clock() + seconds + self.tolerance)

    async def acquire(self, cost: float = 1.0) -> None:
        """Wait for a conforming moment and take it. Waiters go first come, first served."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            while (delay := self.wait_time()) > 0:
                await self.sleep(delay)
            self.take(cost)

    def idle(self) -> bool:
        """True when the limiter remembers nothing that would delay a send."""
        return self.tat - self.tolerance <= self.clock()


class WindowCap:
    """At most `limit` sends in any `window` seconds, counted on the actual send times.

    GCRA paces; this caps. A sender woken late may catch up in a short burst, but never
    beyond what the window allows.
    """

    def __init__(self, limit: int, window: float, *, clock: Clock = time.monotonic):
        if limit < 1 or window <= 0:
            raise ValueError("a window cap needs limit >= 1 and a positive window")
        self.limit, self.window, self.clock = limit, window, clock
        self.rate = limit / window
        self._times: deque[float] = deque(maxlen=limit)

    def wait_time(self) -> float:
        if len(self._times) < self.limit:
            return 0.0
        wait = self._times[0] + self.window - self.clock()
        return wait if wait > EPSILON else 0.0

    def take(self, cost: float = 1.0) -> None:
        now = self.clock()
        for _ in range(max(1, round(cost))):
            self._times.append(now)


class KeyedGcra:
    """One `Gcra` per key (a chat, a sender number), forgetting keys that have gone idle."""

    def __init__(self, rate: float, burst: int = 1, *, clock: Clock = time.monotonic,
                 sleep: Sleep = asyncio.sleep, prune_every: int = 1000):
        self.rate, self.burst, self.clock, self.sleep = rate, burst, clock, sleep
        self._limiters: dict[str, Gcra] = {}
        self._prune_every = prune_every
        self._created = 0

    def __getitem__(self, key: str) -> Gcra:
        limiter = self._limiters.get(key)
        if limiter is None:
            self._created += 1
            if self._created % self._prune_every == 0:
                self.prune()
            limiter = Gcra(self.rate, self.burst, clock=self.clock, sleep=self.sleep)
            self._limiters[key] = limiter
        return limiter

    def prune(self) -> None:
        for key in [k for k, limiter in self._limiters.items() if limiter.idle()]:
            del self._limiters[key]

    def __len__(self) -> int:
        return len(self._limiters)


@dataclass
class ChannelLimits:
    """The limits one send on a channel must pass: overall, per recipient, per sender."""

    overall: Gcra | None = None
    overall_cap: WindowCap | None = None
    per_recipient: KeyedGcra | None = None
    per_sender: KeyedGcra | None = None
    sender: str = ""
    sleep: Sleep = asyncio.sleep
    _lock: asyncio.Lock | None = field(default=None, repr=False, compare=False)

    def shared(self) -> list[Gcra | WindowCap]:
        limiters: list[Gcra | WindowCap | None] = [
            self.per_sender[self.sender] if self.per_sender is not None else None,
            self.overall, self.overall_cap,
        ]
        return [limiter for limiter in limiters if limiter is not None]

    async def acquire(self, recipient: str, cost: float = 1.0) -> None:
        """Wait until this send conforms to every rule, then count it against each."""
        chat = self.per_recipient[recipient] if self.per_recipient is not None else None
        # One message per recipient is in flight at a time (order is kept per contact), so
        # waiting for the recipient first never holds the shared limiters while idle.
        if chat is not None:
            while (delay := chat.wait_time()) > 0:
                await self.sleep(delay)
        shared = self.shared()
        if shared:
            if self._lock is None:
                self._lock = asyncio.Lock()
            async with self._lock:  # first come, first served across recipients
                while (delay := max(limiter.wait_time() for limiter in shared)) > 0:
                    await self.sleep(delay)
                for limiter in shared:
                    limiter.take(cost)
        if chat is not None:
            chat.take(cost)

    def hold(self, recipient: str, seconds: float) -> None:
        if self.per_recipient is not None:
            self.per_recipient[recipient].hold(seconds)


@dataclass
class DeliveryLimits:
    channels: dict[str, ChannelLimits] = field(default_factory=dict)

    def for_channel(self, channel: str) -> ChannelLimits | None:
        return self.channels.get(channel)

    @classmethod
    def off(cls) -> DeliveryLimits:
        return cls()

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock = time.monotonic,
                      sleep: Sleep = asyncio.sleep, headroom: float = HEADROOM
                      ) -> DeliveryLimits:
        """Telegram: overall and per-chat; SMS: per sender number. Rates <= 0 mean no limit."""

        def keyed(rate: float) -> KeyedGcra | None:
            return KeyedGcra(rate * headroom, clock=clock, sleep=sleep) if rate > 0 else None

        def cap(rate: float) -> WindowCap | None:
            # Telegram counts per second: at most int(rate) in any (slightly long) second.
            return WindowCap(int(rate), 1.0 / headroom, clock=clock) if rate >= 1 else None

        overall = settings.telegram_rate
        sender = (settings.twilio_from_number or settings.twilio_messaging_service_sid
                  or "sms")
        return cls({
            "telegram": ChannelLimits(
                # Paced at the full rate with a little slack for late wake-ups; the window
                # cap keeps any second at or under the limit.
                overall=Gcra(overall, burst=3, clock=clock, sleep=sleep) if overall > 0
                else None,
                overall_cap=cap(overall) if overall > 0 else None,
                per_recipient=keyed(settings.telegram_chat_rate), sleep=sleep),
            "sms": ChannelLimits(per_sender=keyed(settings.sms_rate), sender=sender,
                                 sleep=sleep),
        })
