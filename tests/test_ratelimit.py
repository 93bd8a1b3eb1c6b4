"""Send-rate limits on a virtual clock: never more than the limit in any window."""

from __future__ import annotations

import asyncio

import pytest

from bot.delivery.ratelimit import DeliveryLimits, Gcra, KeyedGcra, WindowCap
from bot.settings import Settings


class VirtualTime:
    """A clock that only moves when someone sleeps: the tests run instantly and exactly."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def most_in_any_window(times: list[float], window: float = 1.0) -> int:
    """The largest number of events inside any half-open window [t, t + window)."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - window:
            start += 1
        best = max(best, end - start + 1)
    return best


async def test_a_steady_rate_never_exceeds_the_limit_in_any_second():
    clock = VirtualTime()
    limiter = Gcra(30, clock=clock, sleep=clock.sleep)
    times = []
    for _ in range(300):
        await limiter.acquire()
        times.append(clock.now)
    # The 31st send comes a full second after the 1st (to float precision), never sooner.
    assert min(b - a for a, b in zip(times, times[30:], strict=False)) == pytest.approx(1.0)
    assert most_in_any_window(times, window=1.0 - 1e-6) == 30
    assert times[-1] - times[0] == pytest.approx(299 / 30)


async def test_burst_lets_that_many_through_at_once_then_paces():
    clock = VirtualTime()
    limiter = Gcra(10, burst=5, clock=clock, sleep=clock.sleep)
    start = clock.now
    for _ in range(5):
        assert limiter.try_take()
    assert clock.now == start
    assert not limiter.try_take()
    assert limiter.wait_time() == pytest.approx(0.1)


async def test_concurrent_waiters_are_served_in_turn_at_the_rate():
    clock = VirtualTime()
    limiter = Gcra(5, clock=clock, sleep=clock.sleep)
    times: list[float] = []

    async def send() -> None:
        await limiter.acquire()
        times.append(clock.now)

    await asyncio.gather(*(send() for _ in range(20)))
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert len(times) == 20 and min(gaps) >= 0.2 - 1e-9


async def test_hold_blocks_for_the_time_asked():
    clock = VirtualTime()
    limiter = Gcra(1, clock=clock, sleep=clock.sleep)
    limiter.hold(7)
    assert limiter.wait_time() == pytest.approx(7)
    clock.now += 7
    assert limiter.try_take()


def test_bad_rates_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="rate must be positive"):
        Gcra(0)
    with pytest.raises(ValueError, match="burst"):
        Gcra(1, burst=0)


async def test_telegram_limits_overall_and_per_chat_with_headroom():
    clock = VirtualTime()
    settings = Settings(_env_file=None)
    limits = DeliveryLimits.from_settings(settings, clock=clock.__call__, sleep=clock.sleep)
    telegram = limits.for_channel("telegram")
    sends: list[tuple[str, float]] = []
    for n in range(300):
        chat = f"chat{n % 40}"
        await telegram.acquire(chat)
        sends.append((chat, clock.now))
    everything = [t for _, t in sends]
    assert most_in_any_window(everything) <= 30
    assert all(b - a >= 1.0 - 1e-9 for a, b in zip(everything, everything[30:], strict=False))
    rate = (len(everything) - 1) / (everything[-1] - everything[0])
    assert 29 < rate < 30.5  # over ten seconds; the windows above are the hard limit
    for chat in {c for c, _ in sends}:
        mine = [t for c, t in sends if c == chat]
        assert all(b - a > 1.0 for a, b in zip(mine, mine[1:], strict=False))


async def test_sms_is_limited_per_sender_number():
    clock = VirtualTime()
    settings = Settings(TWILIO_FROM_NUMBER="+447700900000", CONCORDER_SMS_RATE=2, _env_file=None)
    sms = DeliveryLimits.from_settings(
        settings, clock=clock.__call__, sleep=clock.sleep, headroom=1.0
    ).for_channel("sms")
    assert sms.sender == "+447700900000"
    start = clock.now
    for n in range(5):
        await sms.acquire(f"+4477009001{n:02d}")
    assert clock.now - start == pytest.approx(2.0)


def test_zero_rates_and_off_mean_no_limits():
    settings = Settings(
        CONCORDER_TELEGRAM_RATE=0,
        CONCORDER_TELEGRAM_CHAT_RATE=0,
        CONCORDER_SMS_RATE=0,
        _env_file=None,
    )
    limits = DeliveryLimits.from_settings(settings)
    assert limits.for_channel("telegram").shared() == []
    assert limits.for_channel("telegram").per_recipient is None
    assert limits.for_channel("sms").per_sender is None
    assert DeliveryLimits.off().for_channel("telegram") is None


def test_idle_per_chat_limiters_are_forgotten():
    clock = VirtualTime()
    chats = KeyedGcra(1, clock=clock, prune_every=10_000)
    for n in range(50):
        chats[f"chat{n}"].take()
    assert len(chats) == 50
    clock.now += 0.5
    chats["late"].take()
    clock.now += 0.6
    chats.prune()
    assert len(chats) == 1


async def test_window_cap_counts_a_send_from_its_answer():
    clock = VirtualTime()
    cap = WindowCap(2, 1.0, clock=clock)
    first = cap.take()
    cap.take()
    clock.now += 0.3  # the first send is answered 0.3 s after it left
    cap.done(first)
    clock.now += 0.8
    # The second slot (handed over at 0) has expired; the first counts from 0.3.
    assert cap.wait_time() == 0
    cap.take()
    assert cap.wait_time() == pytest.approx(0.2)


async def test_window_cap_counts_actual_send_times():
    clock = VirtualTime()
    cap = WindowCap(3, 1.0, clock=clock)
    for _ in range(3):
        assert cap.wait_time() == 0
        cap.take()
    assert cap.wait_time() == pytest.approx(1.0)
    clock.now += 0.4
    assert cap.wait_time() == pytest.approx(0.6)
    with pytest.raises(ValueError, match="window cap"):
        WindowCap(0, 1.0)
