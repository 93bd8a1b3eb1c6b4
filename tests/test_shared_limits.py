"""Rate limits shared by several dispatchers on one database (bot/shared_limits.py).

Each dispatcher has an engine of its own (separate connection pools, as two processes
would have); what they hand over is timed on one clock and counted together.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

from sqlalchemy import text

from bot.channels.transport import Outgoing, Sent
from bot.delivery import shared_limits
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.shared_limits import LEAD, PermitStore, SharedWindow
from store.db import make_engine, sessionmaker
from tests.test_dispatcher import RecordingTransport, person, queue, rows, telegram_transport
from tests.test_ratelimit import most_in_any_window

pytest_plugins = ["tests.telegram_peer"]


class Timed(RecordingTransport):
    """Records who handed each message over, and when, on one shared list."""

    def __init__(self, name: str, log: list[tuple[str, float, Outgoing]], **options):
        super().__init__(**options)
        self.name, self.log = name, log

    async def send(self, message: Outgoing) -> Sent:
        self.log.append((self.name, time.monotonic(), message))
        return await super().send(message)


async def run_two(db, settings, transports: dict[str, object], until, timeout: float = 60):
    """Run one dispatcher per transport, each on an engine of its own, until `until()`."""
    engines = [make_engine(db.url) for _ in transports]
    workers = [
        Dispatcher(
            sessionmaker(engine),
            {"telegram": transport},
            settings,
            concurrency=8,
            poll_interval=0.02,
        )
        for engine, transport in zip(engines, transports.values(), strict=True)
    ]
    tasks = [asyncio.create_task(worker.run()) for worker in workers]
    try:
        async with asyncio.timeout(timeout):
            while not until():
                await asyncio.sleep(0.05)
    finally:
        for worker in workers:
            worker.stop()
        await asyncio.gather(*tasks)
        for engine in engines:
            await engine.dispose()


async def test_two_dispatchers_together_keep_the_overall_and_per_chat_limits(db, settings):
    settings = settings.model_copy(update={"telegram_rate": 30.0, "telegram_chat_rate": 1.0})
    cold = [await person(db, telegram=str(20_000 + n)) for n in range(100)]
    hot = [await person(db, telegram=str(21_000 + n)) for n in range(3)]
    now = datetime.now(UTC)
    for who in cold:
        await queue(db, settings, who, "telegram", "once", now=now)
    for who in hot:
        await queue(db, settings, who, "telegram", "h1", "h2", "h3", "h4", now=now)
    log: list[tuple[str, float, Outgoing]] = []
    transports = {name: Timed(name, log) for name in ("a", "b")}
    await run_two(db, settings, transports, lambda: len(log) >= 112)

    assert len(log) == 112 and {name for name, _, _ in log} == {"a", "b"}
    times = sorted(t for _, t, _ in log)
    assert most_in_any_window(times) <= 30
    # Both kept sending: neither was starved of the shared sends.
    assert min(sum(name == n for n, _, _ in log) for name in "ab") >= 20
    for who in hot:
        mine = [t for _, t, m in log if m.address == str(21_000 + hot.index(who))]
        gaps = [b - a for a, b in zip(mine, mine[1:], strict=False)]
        assert len(mine) == 4 and min(gaps) >= 1.0
    assert {r.status for r in await rows(db)} == {"sent"}


async def test_a_chat_s_next_message_waits_for_the_previous_send_on_another_instance(db, settings):
    settings = settings.model_copy(update={"telegram_chat_rate": 1.0})
    ida = await person(db, telegram="22001")
    await queue(db, settings, ida, "telegram", "first", "second", now=datetime.now(UTC))
    log: list[tuple[str, float, Outgoing]] = []
    engines = [make_engine(db.url), make_engine(db.url)]
    try:
        first, second = (
            Dispatcher(sessionmaker(engine), {"telegram": Timed(name, log)}, settings)
            for name, engine in zip("ab", engines, strict=True)
        )
        # The claim hands out "first" alone; "second" only once its outcome is in.
        assert await first.run_once() == 1
        answered = time.monotonic()
        assert await second.run_once() == 1  # another instance, with no memory of the chat
    finally:
        for engine in engines:
            await engine.dispose()
    assert [(name, m.text) for name, _, m in log] == [("a", "first"), ("b", "second")]
    assert log[1][1] - log[0][1] >= 1.0
    assert log[1][1] - answered > 0.9


async def test_telegram_429_retry_after_holds_on_every_instance(db, settings, bot_api):
    settings = settings.model_copy(update={"telegram_rate": 30.0, "telegram_chat_rate": 1.0})
    jo = await person(db, telegram="23001")
    await queue(db, settings, jo, "telegram", "first", "second", now=datetime.now(UTC))
    bot_api.fail("sendMessage", 429, "Too Many Requests: retry after 2", retry_after=2)
    log: list[tuple[str, float, Outgoing]] = []
    transports = {}
    for name in "ab":
        transport = telegram_transport(bot_api)
        send = transport.send

        async def timed(message: Outgoing, name=name, send=send) -> Sent:
            log.append((name, time.monotonic(), message))
            return await send(message)

        transport.send = timed
        transports[name] = transport
    try:
        await run_two(db, settings, transports, lambda: len(log) >= 3, timeout=30)
    finally:
        for transport in transports.values():
            await transport.close()
    assert [m.text for _, _, m in log] == ["first", "first", "second"]
    assert log[1][1] - log[0][1] >= 2.0 - 0.05  # retry_after, whichever instance retried
    assert log[2][1] - log[1][1] >= 1.0  # and the chat's own limit after it


async def test_a_crashed_instance_holds_up_the_others_only_briefly(db):
    engines = [make_engine(db.url), make_engine(db.url)]
    try:
        crashing = SharedWindow(PermitStore(engines[0]), "telegram", 30)
        # Sixty sends waiting would be two seconds' worth; only the next few are reserved.
        waiting = [asyncio.create_task(crashing.acquire()) for _ in range(60)]
        await asyncio.sleep(0.1)
        for task in [*waiting, crashing._filler]:
            task.cancel()  # the process dies with its reserved slots
        await asyncio.gather(*waiting, crashing._filler, return_exceptions=True)
        other = SharedWindow(PermitStore(engines[1]), "telegram", 30)
        started = time.monotonic()
        await other.acquire()
        # Its reservations reach LEAD ahead: far less than the two seconds it was waiting
        # for (the margin is for a loaded machine, not for a held-up permit).
        assert time.monotonic() - started < LEAD + 0.1 + 0.6
    finally:
        for engine in engines:
            await engine.dispose()


async def test_a_limit_ahead_of_a_clock_stepped_back_holds_up_sends_only_up_to_the_horizon(
    db, monkeypatch
):
    monkeypatch.setattr(shared_limits, "HORIZON", 0.5)
    store = PermitStore(db.engine)
    await SharedWindow(store, "sms:sender", 1).acquire()
    async with db.engine.begin() as connection:
        (tat,) = (await connection.execute(text("SELECT tat FROM delivery_limits"))).one()
        await connection.execute(
            text("UPDATE delivery_limits SET sends = :sends"),
            {"sends": f"[[{tat + 3600}, {tat + 3600.02}]]"},
        )
    started = time.monotonic()
    await SharedWindow(store, "sms:sender", 1).acquire()
    assert time.monotonic() - started < 0.5 + 0.6  # the horizon, not the hour ahead


async def test_permits_wait_while_the_database_is_out_of_reach(db, monkeypatch):
    store = PermitStore(db.engine)
    take, calls = store.take, []

    async def flaky(*args):
        calls.append(args)
        if len(calls) == 1:
            raise OSError("connection refused")
        return await take(*args)

    monkeypatch.setattr(store, "take", flaky)
    monkeypatch.setattr(shared_limits, "RETRY_AFTER_ERROR", 0.05)
    limiter = SharedWindow(store, "telegram", 30)
    async with asyncio.timeout(5):
        await limiter.acquire()
    # The first failed; the send went on the next (or later, if it woke too late).
    assert len(calls) >= 2


async def test_a_send_waiting_for_its_chat_takes_the_first_slot_after_and_holds_up_nobody(db):
    limiter = SharedWindow(PermitStore(db.engine), "telegram", 20)
    done: dict[str, float] = {}

    async def send(name: str, not_before: float | None = None) -> None:
        await limiter.acquire(not_before=not_before)
        done[name] = time.monotonic()

    started = time.monotonic()
    busy_chat_free = started + 0.4
    tasks = [asyncio.create_task(send("busy chat", busy_chat_free))]
    tasks += [asyncio.create_task(send(f"other {n}")) for n in range(16)]  # 0.8 s at 20/s
    async with asyncio.timeout(10):
        await asyncio.gather(*tasks)
    # Never before its time, and then among the next slots: not behind all the others.
    assert busy_chat_free <= done["busy chat"] < busy_chat_free + 0.2
    # The others were not held up while it waited: the first went at once.
    assert min(done[f"other {n}"] for n in range(16)) - started < 0.15
    assert max(done.values()) - started < 16 / 20 + 0.3


async def test_a_send_that_wakes_late_gives_its_time_back_rather_than_crowd_the_window(db):
    """Instance A's event loop is busy for a while: each of its wake-ups comes 25 ms late,
    enough to land a send of A's among B's punctual ones at the edge of a full second.
    A's late sends do not go; they give their times back and take others."""
    engines = [make_engine(db.url), make_engine(db.url)]
    started: list[tuple[str, float]] = []
    busy = range(20, 60)  # A is late while this many sends have started

    async def late_sleep(delay: float) -> None:
        await asyncio.sleep(delay + (0.025 if len(started) in busy else 0.0))

    async def send(name: str, limiter: SharedWindow) -> None:
        await limiter.acquire()
        started.append((name, time.monotonic()))

    try:
        a = SharedWindow(PermitStore(engines[0]), "telegram", 30, sleep=late_sleep)
        b = SharedWindow(PermitStore(engines[1]), "telegram", 30)
        tasks = [send("a", a) for _ in range(60)] + [send("b", b) for _ in range(60)]
        async with asyncio.timeout(60):
            await asyncio.gather(*tasks)
    finally:
        for engine in engines:
            await engine.dispose()
    assert len(started) == 120
    assert most_in_any_window([t for _, t in started]) <= 30
    assert a.given_back > 0  # A was late, and did not go then


async def test_sends_that_take_long_to_land_are_spaced_by_how_long_they_take(db):
    """A send reaches the far side up to its whole hand-over after the check. Until this
    process has seen one land, its sends count as slow (a first send, on a new connection,
    took 45-50 ms where later ones took 3: two instances then put 31 in one second); once
    they land quickly, the usual margin; once they land 60 ms after the check, each is
    counted as arriving that late, so the next sends are placed that much further away."""
    limiter = SharedWindow(PermitStore(db.engine), "telegram", 30)

    async def latest_arrivals() -> list[float]:
        async with db.engine.connect() as connection:
            row = await connection.scalar(
                text("SELECT sends FROM delivery_limits WHERE key = 'telegram'")
            )
        return [end - at for at, end in json.loads(row)]

    for _ in range(3):
        await limiter.acquire()
    assert min(await latest_arrivals()) >= shared_limits.LAG_CAP  # nothing has landed yet
    for _ in range(shared_limits.LAG_SAMPLES):
        limiter.landed(0.003)
    for _ in range(6):
        await limiter.acquire()
    # Quick sends: the usual margin (plus twice this process's wake-up lag, small here).
    assert (await latest_arrivals())[-1] < shared_limits.LAG_CAP
    for _ in range(3):
        limiter.landed(0.06)
    for _ in range(6):
        await limiter.acquire()
    assert (await latest_arrivals())[-1] >= 0.06 + shared_limits.GO_LATE
