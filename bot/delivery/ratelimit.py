"""Send-rate limits: GCRA (a token bucket kept as one timestamp) with an injectable clock.

Telegram allows about 30 messages a second overall and one a second per chat; an SMS sender
number has its own messages-per-second limit. `DeliveryLimits` holds one limiter per rule;
a rate of 0 (or `DeliveryLimits.off()`) means no limit, for benchmarks and the simulator.

Given a `PermitStore`, the overall limits (Telegram's overall rate, each SMS sender's) are
shared by every dispatcher on the database (bot/delivery/shared_limits.py: a window of
reserved send times, checked just before each send); the per-chat limit stays
in the process, as the outbox claim hands one contact's messages out one at a time and the
dispatcher waits out the previous one's send time (see `ChannelLimits.follow`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from bot.delivery.priority import PriorityLock
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.delivery.shared_limits import PermitStore, SharedWindow

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

# Limits are enforced on our side of the network; requests can arrive a little closer
# together than they left. Per-recipient and per-sender pacing runs 2% under the published
# rate for that reason (Telegram's overall limit has an exact window cap instead).
HEADROOM = 0.98
EPSILON = 1e-9  # float sums of intervals drift by ~1e-13; never wait for that


class Gcra:
    """At most `rate` sends a second, `burst` of them back to back.

    `tat` is the theoretical arrival time of the next send: each send pushes it one
    emission interval further. A send at `now` conforms when now >= tat - tolerance.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ):
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

    def take(self, cost: float = 1.0) -> float:
        """Record a send happening now (whether or not it conformed)."""
        now = self.clock()
        self.tat = max(self.tat, now) + self.interval * cost
        return now

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
    """At most `limit` sends in any `window` seconds, as the far side counts them.

    A send counts from when it was handed over until it is `done`, and then from its
    completion: the far side saw it somewhere in between, so the next send that would make
    `limit + 1` waits until a full window after that completion, whatever the network
    jitter. GCRA paces; this caps.
    """

    def __init__(self, limit: int, window: float, *, clock: Clock = time.monotonic):
        if limit < 1 or window <= 0:
            raise ValueError("a window cap needs limit >= 1 and a positive window")
        self.limit, self.window, self.clock = limit, window, clock
        self.rate = limit / window
        self._slots: list[float] = []

    def wait_time(self) -> float:
        now = self.clock()
        self._slots = [t for t in self._slots if t + self.window > now]
        if len(self._slots) < self.limit:
            return 0.0
        wait = min(self._slots) + self.window - now
        return wait if wait > EPSILON else 0.0

    def take(self, cost: float = 1.0) -> float:
        """Count a send handed over now; returns the time to pass to `done`."""
        now = self.clock()
        self._slots += [now] * max(1, round(cost))
        return now

    def done(self, handed_over: float) -> None:
        """The send handed over at `handed_over` has been answered: count from now."""
        try:
            index = self._slots.index(handed_over)
        except ValueError:
            return  # already outside the window
        self._slots[index] = self.clock()


class KeyedGcra:
    """One `Gcra` per key (a chat, a sender number), forgetting keys that have gone idle."""

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        prune_every: int = 1000,
    ):
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


@dataclass(frozen=True)
class Permit:
    """What `ChannelLimits.acquire` let through: for the window cap, when it was counted;
    for the shared window, when the send was allowed to go (our monotonic clock)."""

    handed_over: float | None
    permitted: float | None


@dataclass
class ChannelLimits:
    """The limits one send on a channel must pass: overall, per recipient, per sender."""

    overall: Gcra | None = None
    overall_cap: WindowCap | None = None
    per_recipient: KeyedGcra | None = None
    per_sender: KeyedGcra | None = None
    sender: str = ""
    sleep: Sleep = asyncio.sleep
    # The overall limit shared with the other instances on the database, if any.
    permits: SharedWindow | None = None
    _lock: PriorityLock | None = field(default=None, repr=False, compare=False)

    def shared(self) -> list[Gcra | WindowCap | SharedWindow]:
        """Every limit shared by all recipients (what bounds the channel's rate)."""
        return ([self.permits] if self.permits is not None else []) + self._local()

    def _local(self) -> list[Gcra | WindowCap]:
        limiters: list[Gcra | WindowCap | None] = [
            self.per_sender[self.sender] if self.per_sender is not None else None,
            self.overall,
            self.overall_cap,
        ]
        return [limiter for limiter in limiters if limiter is not None]

    async def acquire(self, recipient: str, cost: float = 1.0) -> Permit:
        """Wait until this send conforms to every rule, then count it against each.

        Returns a token for `done`, to be called once the far side has answered.
        """
        chat = self.per_recipient[recipient] if self.per_recipient is not None else None
        # One message per recipient is in flight at a time (order is kept per contact). A
        # busy chat's interval counts from its previous hand-over: its next message queues
        # for the shared limiters meanwhile, skipped until the chat is free and then first,
        # rather than joining the back of the queue once the interval has ended.
        handed_over = await self._acquire_shared(cost, chat)
        if chat is not None:
            while (delay := chat.wait_time()) > 0:  # the shared limiters were quicker
                await self.sleep(delay)
            chat.take(cost)
        permitted = self.permits.clock() if self.permits is not None else None
        return Permit(handed_over if self.overall_cap is not None else None, permitted)

    async def _acquire_shared(self, cost: float, chat: Gcra | None) -> float | None:
        """Wait for the limits every recipient shares, then count this send against them."""
        busy = chat is not None and chat.wait_time() > 0
        if self.permits is not None:
            return await self._acquire_permit(cost, chat, busy)
        shared = self._local()
        if not shared:
            return None
        if self._lock is None:
            self._lock = PriorityLock()
        # A send's turn at the limiters, roughly: a busy chat comes back to the front this
        # much ahead, so that it is first in line as its chat frees.
        turn = max(1.0 / limiter.rate for limiter in shared)
        while True:
            # First come, first served across recipients, a busy chat first once it is free.
            async with self._lock.held(first=busy):
                early = chat.wait_time() - _longest_wait(shared) if busy else 0.0
                if early <= 0:
                    while (delay := _longest_wait(shared)) > 0:
                        await self.sleep(delay)
                    handed_over = None
                    for limiter in shared:
                        handed_over = limiter.take(cost)
                    return handed_over
                contended = self._lock.contended()
            # Too early: the others go meanwhile (one at a time, while they queue).
            await self.sleep(max(0.0, early - 2 * turn) if contended else early)

    async def _acquire_permit(self, cost: float, chat: Gcra | None, busy: bool) -> float | None:
        """A shared send time: the send goes at once after it (the shared window counts on
        it), so this process's own limits are checked there, not waited for after it."""
        assert self.permits is not None
        local = self._local()

        def hold() -> float:
            waits = [limiter.wait_time() for limiter in local]
            return max([chat.wait_time() if chat is not None else 0.0, *waits])

        free_at = self.permits.clock() + chat.wait_time() if busy else None
        await self.permits.acquire(not_before=free_at, hold=hold)
        handed_over = None
        for limiter in local:
            handed_over = limiter.take(cost)
        return handed_over

    def done(self, permit: Permit) -> None:
        """Tell the limits the send is answered (pass what `acquire` returned)."""
        if permit.handed_over is not None and self.overall_cap is not None:
            self.overall_cap.done(permit.handed_over)
        if permit.permitted is not None and self.permits is not None:
            self.permits.landed(self.permits.clock() - permit.permitted)

    def hold(self, recipient: str, seconds: float) -> None:
        if self.per_recipient is not None:
            self.per_recipient[recipient].hold(seconds)

    def follow(self, recipient: str, previous_sent: datetime, now: datetime) -> None:
        """Space this send from the recipient's previous one, whichever instance sent it.

        The claim gives out a contact's next message only once the previous one's outcome
        is committed, so at most one is in flight at a time on all instances together; but
        the next may go to another instance, whose own per-chat limiter never saw the
        previous send. Its recorded send time (when it was handed over) says how long to
        wait. Instances' clocks are taken to agree to well within the 2% headroom.
        """
        if self.per_recipient is None:
            return
        chat = self.per_recipient[recipient]
        since = (now - previous_sent).total_seconds()
        wait = min(chat.interval, chat.interval - since)
        if wait > 0:
            chat.hold(wait)


def _longest_wait(limiters: list[Gcra | WindowCap]) -> float:
    return max(limiter.wait_time() for limiter in limiters)


@dataclass
class DeliveryLimits:
    channels: dict[str, ChannelLimits] = field(default_factory=dict)

    def for_channel(self, channel: str) -> ChannelLimits | None:
        return self.channels.get(channel)

    @classmethod
    def off(cls) -> DeliveryLimits:
        return cls()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        headroom: float = HEADROOM,
        permits: PermitStore | None = None,
    ) -> DeliveryLimits:
        """Telegram: overall and per-chat; SMS: per sender number. Rates <= 0 mean no limit.

        With `permits`, the overall and per-sender limits are shared through the database.
        """

        def keyed(rate: float) -> KeyedGcra | None:
            return KeyedGcra(rate * headroom, clock=clock, sleep=sleep) if rate > 0 else None

        def cap(rate: float) -> WindowCap | None:
            # Telegram counts per second: at most int(rate) in any second on its side.
            return WindowCap(int(rate), 1.0, clock=clock) if rate >= 1 else None

        overall = settings.telegram_rate
        sender = settings.twilio_from_number or settings.twilio_messaging_service_sid or "sms"
        if permits is not None:
            return cls._shared(settings, permits, sender, keyed, cap, sleep)
        return cls(
            {
                "telegram": ChannelLimits(
                    # Paced at the full rate, with slack to catch up after a late wake-up; the
                    # window cap keeps every second at or under the limit.
                    overall=Gcra(overall, burst=3, clock=clock, sleep=sleep)
                    if overall > 0
                    else None,
                    overall_cap=cap(overall) if overall > 0 else None,
                    per_recipient=keyed(settings.telegram_chat_rate),
                    sleep=sleep,
                ),
                "sms": ChannelLimits(
                    per_sender=keyed(settings.sms_rate), sender=sender, sleep=sleep
                ),
            }
        )

    @classmethod
    def _shared(
        cls,
        settings: Settings,
        permits: PermitStore,
        sender: str,
        keyed: Callable[[float], KeyedGcra | None],
        cap: Callable[[float], WindowCap | None],
        sleep: Sleep,
    ) -> DeliveryLimits:
        from bot.delivery.shared_limits import SharedWindow

        def shared(key: str, rate: float) -> SharedWindow | None:
            return SharedWindow(permits, key, rate, sleep=sleep) if rate > 0 else None

        # The shared window has its own margin for the network (shared_limits.py). This
        # process's window cap also counts its sends until answered; it is checked at the
        # shared send time, so a send it holds up gives that time back.
        overall = settings.telegram_rate
        return cls(
            {
                "telegram": ChannelLimits(
                    permits=shared("telegram", overall),
                    overall_cap=cap(overall),
                    per_recipient=keyed(settings.telegram_chat_rate),
                    sleep=sleep,
                ),
                "sms": ChannelLimits(
                    permits=shared(f"sms:{sender}", settings.sms_rate), sender=sender, sleep=sleep
                ),
            }
        )
