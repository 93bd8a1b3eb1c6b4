"""The outbox dispatcher: each message once, in order per person, limits and failures handled.

Telegram behaviour is driven through the real TelegramTransport (python-telegram-bot) against
a loopback Bot API server; `RecordingTransport` implements our own Transport port for the
ordering and concurrency cases.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from sqlalchemy import select

from bot.channels.simulator import SimulatorTransport
from bot.channels.telegram_send import TelegramTransport
from bot.channels.transport import Outgoing, PermanentFailure, RetryLater, Sent
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.ratelimit import DeliveryLimits
from bot.delivery.retry import backoff
from bot.metrics import MESSAGES_OUT, QUEUE_DEPTH, REGISTRY
from bot.services import outgoing
from bot.services import turns as service
from flows.model import Choice, Outbound
from store.db import make_engine, sessionmaker
from store.models import AuditEvent, Contact, OutboxMessage, Participant
from tests.telegram_peer import BotApiCall, BotApiServer

pytest_plugins = ["tests.telegram_peer"]


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class RecordingTransport:
    """Our Transport port, recording hand-overs; `script` may raise to play a failure."""

    def __init__(
        self,
        channel: str = "telegram",
        script: Callable[[Outgoing, int], None] | None = None,
        delay: Callable[[Outgoing], float] | None = None,
    ):
        self.channel = channel
        self.script = script
        self.delay = delay
        self.attempts: list[Outgoing] = []
        self.sent: list[Outgoing] = []
        self.times: dict[str, list[float]] = {}  # hand-over times (loop clock) by address

    async def send(self, message: Outgoing) -> Sent:
        self.attempts.append(message)
        self.times.setdefault(message.address, []).append(asyncio.get_running_loop().time())
        if self.delay is not None:
            await asyncio.sleep(self.delay(message))
        if self.script is not None:
            self.script(message, sum(1 for m in self.attempts if m.id == message.id))
        self.sent.append(message)
        return Sent(provider_id=f"rec-{message.id}")

    async def close(self) -> None:
        return None

    def texts(self, address: str | None = None) -> list[str]:
        return [m.text for m in self.sent if address is None or m.address == address]


async def person(
    db,
    *,
    telegram: str | None = None,
    sms: str | None = None,
    sms_consent: bool = True,
    language: str = "en",
) -> dict[str, int | str]:
    """A participant with the given contacts; returns their ids by channel (and 'id')."""
    async with db.sessions.begin() as session:
        participant = Participant(language=language, state={"language": language})
        session.add(participant)
        await session.flush()
        ids: dict[str, int | str] = {"id": participant.id}
        for channel, address in (("telegram", telegram), ("sms", sms)):
            if address is not None:
                contact = Contact(
                    participant_id=participant.id,
                    channel=channel,
                    address=address,
                    sms_consent=sms_consent,
                )
                session.add(contact)
                await session.flush()
                ids[channel] = contact.id
        return ids


async def queue(
    db, settings, who, channel: str, *messages: str | Outbound, now: datetime
) -> list[int]:
    async with db.sessions.begin() as session:
        participant = await session.get(Participant, who["id"])
        contact = await session.get(Contact, who[channel])
        before = contact.next_seq
        outbound = [m if isinstance(m, Outbound) else Outbound(text=m) for m in messages]
        await outgoing.enqueue(
            session, settings, participant, contact, outbound, prompt_id="p1", now=now
        )
        rows = await session.execute(
            select(OutboxMessage.id)
            .where(OutboxMessage.contact_id == contact.id, OutboxMessage.seq >= before)
            .order_by(OutboxMessage.seq)
        )
        return list(rows.scalars())


async def rows(db, **where) -> list[OutboxMessage]:
    async with db.sessions() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        for column, value in where.items():
            query = query.where(getattr(OutboxMessage, column) == value)
        return list((await session.execute(query)).scalars())


def dispatcher(db, settings, transports, clock=None, **options) -> Dispatcher:
    options.setdefault("limits", DeliveryLimits.off())
    options.setdefault("rng", lambda: 0.5)
    return Dispatcher(db.sessions, transports, settings, clock or FakeClock(), **options)


def latency_sum(channel: str) -> float:
    """The dispatch latency histogram's sum, as a scrape of /metrics reads it."""
    return (
        REGISTRY.get_sample_value("concorder_dispatch_latency_seconds_sum", {"channel": channel})
        or 0.0
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def telegram_transport(server: BotApiServer) -> TelegramTransport:
    from bot.settings import Settings

    return TelegramTransport(
        Settings(TELEGRAM_BOT_TOKEN="123:secret", TELEGRAM_API_BASE_URL=server.url, _env_file=None)
    )


# --- sending and recording ---------------------------------------------------------------


async def test_each_queued_message_is_delivered_once_with_its_outcome(db, settings, clock):
    ada = await person(db, sms="+447700900101")
    ids = await queue(db, settings, ada, "sms", "One", "Two", now=clock.now)
    delivered = MESSAGES_OUT.labels("sms", "delivered")._value.get()
    latencies = latency_sum("sms")
    clock.advance(3)

    sent = await dispatcher(db, settings, {"sms": SimulatorTransport("sms")}, clock).drain()

    assert sent == 2
    outbox = await rows(db)
    assert [(r.id, r.status, r.provider_id) for r in outbox] == [
        (ids[0], "delivered", f"sim-{ids[0]}"),
        (ids[1], "delivered", f"sim-{ids[1]}"),
    ]
    assert all(r.sent_at == clock.now and r.delivered_at == clock.now for r in outbox)
    assert all(r.lease_owner is None and r.attempts == 1 for r in outbox)
    assert MESSAGES_OUT.labels("sms", "delivered")._value.get() == delivered + 2
    assert latency_sum("sms") == pytest.approx(latencies + 6)


async def test_sent_through_telegram_records_the_message_id(db, settings, clock, bot_api):
    bea = await person(db, telegram="5001")
    await queue(
        db,
        settings,
        bea,
        "telegram",
        Outbound("Ready?", choices=(Choice("yes", "Yes"), Choice("no", "No"))),
        now=clock.now,
    )
    transport = telegram_transport(bot_api)
    try:
        await dispatcher(db, settings, {"telegram": transport}, clock).drain()
    finally:
        await transport.close()

    (call,) = bot_api.called("sendMessage")
    assert (call["chat_id"], call["text"]) == ("5001", "Ready?")
    assert "p1:yes" in call["reply_markup"]
    (row,) = await rows(db)
    assert (row.status, row.provider_id) == ("sent", "100")


async def test_messages_not_yet_due_wait(db, settings, clock):
    cy = await person(db, sms="+447700900102")
    async with db.sessions.begin() as session:
        participant = await session.get(Participant, cy["id"])
        contact = await session.get(Contact, cy["sms"])
        await outgoing.enqueue(
            session,
            settings,
            participant,
            contact,
            [Outbound("Later")],
            prompt_id=None,
            now=clock.now,
            not_before=clock.now + timedelta(minutes=5),
        )
    transport = RecordingTransport("sms")
    worker = dispatcher(db, settings, {"sms": transport}, clock)
    assert await worker.drain() == 0
    clock.advance(300)
    assert await worker.drain() == 1
    assert transport.texts() == ["Later"]


async def test_a_message_held_for_the_morning_does_not_hold_up_an_answer_sent_now(
    db, settings, clock
):
    fay = await person(db, sms="+447700900103")
    async with db.sessions.begin() as session:
        participant = await session.get(Participant, fay["id"])
        contact = await session.get(Contact, fay["sms"])
        await outgoing.enqueue(
            session,
            settings,
            participant,
            contact,
            [Outbound("Reminder, in the morning")],
            prompt_id=None,
            now=clock.now,
            not_before=clock.now + timedelta(hours=3),
        )
    await queue(
        db, settings, fay, "sms", "Answer to what you wrote", "its second part", now=clock.now
    )
    transport = RecordingTransport("sms")
    worker = dispatcher(db, settings, {"sms": transport}, clock)
    assert await worker.drain() == 2
    assert transport.texts() == ["Answer to what you wrote", "its second part"]
    clock.advance(3 * 3600)
    assert await worker.drain() == 1
    assert transport.texts()[-1] == "Reminder, in the morning"


# --- order and isolation -----------------------------------------------------------------


async def test_order_per_contact_is_kept_across_retries(db, settings, clock):
    dee = await person(db, telegram="6001")
    eve = await person(db, telegram="6002")
    await queue(db, settings, dee, "telegram", "d1", "d2", "d3", now=clock.now)
    await queue(db, settings, eve, "telegram", "e1", "e2", now=clock.now)

    def d2_fails_twice(message: Outgoing, attempt: int) -> None:
        if message.text == "d2" and attempt <= 2:
            raise RetryLater("network trouble")

    transport = RecordingTransport(script=d2_fails_twice)
    worker = dispatcher(db, settings, {"telegram": transport}, clock)
    await worker.drain()
    # d2 waits for its retry; d3 must not overtake it; the other person is unaffected.
    assert transport.texts("6001") == ["d1"]
    assert transport.texts("6002") == ["e1", "e2"]
    (d2,) = await rows(db, text="d2")
    assert (d2.status, d2.attempts, d2.error) == ("queued", 1, "network trouble")
    assert d2.next_attempt_at == clock.now + timedelta(seconds=backoff(1, rng=lambda: 0.5))

    for _ in range(3):
        clock.advance(60)
        await worker.drain()
    assert transport.texts("6001") == ["d1", "d2", "d3"]
    assert [m.text for m in transport.attempts if m.address == "6001"] == [
        "d1",
        "d2",
        "d2",
        "d2",
        "d3",
    ]


async def test_long_sms_parts_go_out_in_order(db, settings, clock):
    settings = settings.model_copy(update={"sms_max_segments": 1})
    fay = await person(db, sms="+447700900103")
    long_text = " ".join(f"word{n}" for n in range(120))  # several 153-character parts
    await queue(db, settings, fay, "sms", long_text, "after", now=clock.now)
    transport = RecordingTransport("sms", delay=lambda m: random.uniform(0, 0.01))
    await dispatcher(db, settings, {"sms": transport}, clock).drain()
    parts = [(m.part, m.parts) for m in transport.sent]
    assert len(parts) > 3
    assert parts[:-1] == [(n, len(parts) - 1) for n in range(1, len(parts))]
    assert transport.texts()[-1] == "after"
    assert " ".join(transport.texts()[:-1]).split() == long_text.split()


class SelectiveBotApi(BotApiServer):
    """A Bot API server that hangs or errors for some chats and answers the rest at once."""

    def __init__(self) -> None:
        super().__init__()
        self.hang: set[str] = set()
        self.broken: set[str] = set()
        self.release = asyncio.Event()

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = dict(await request.post())
        chat = str(params.get("chat_id"))
        if chat in self.hang:
            await self.release.wait()
        if chat in self.broken:
            return web.json_response(
                {"ok": False, "error_code": 502, "description": "Bad Gateway"}, status=502
            )
        self.calls.append(BotApiCall(method, params))
        return web.json_response({"ok": True, "result": await self._result(method, params)})


async def test_a_stuck_or_failing_recipient_does_not_hold_up_others(db, settings, clock):
    server = SelectiveBotApi()
    server.hang, server.broken = {"7001"}, {"7002"}
    await server.start()
    transport = telegram_transport(server)
    stuck = await person(db, telegram="7001")
    failing = await person(db, telegram="7002")
    others = [await person(db, telegram=str(7100 + n)) for n in range(20)]
    await queue(db, settings, stuck, "telegram", "s1", "s2", now=clock.now)
    await queue(db, settings, failing, "telegram", "f1", "f2", now=clock.now)
    for who in others:
        await queue(db, settings, who, "telegram", "hello", "again", now=clock.now)
    # Generous times: the 40 sends must finish before the stuck one times out, even on a
    # loaded machine.
    worker = dispatcher(
        db, settings, {"telegram": transport}, clock, send_timeout=5.0, poll_interval=0.05
    )
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(4.5):  # before the stuck send times out
            while len(server.called("sendMessage")) < 40:
                await asyncio.sleep(0.02)
        chats = Counter(call["chat_id"] for call in server.called("sendMessage"))
        assert chats == {str(7100 + n): 2 for n in range(20)}
        (f1,) = await rows(db, text="f1")
        assert f1.status == "queued" and "telegram" in f1.error
        (s1,) = await rows(db, text="s1")
        assert s1.status == "sending"
    finally:
        worker.stop()
        await task
        server.release.set()
        await transport.close()
        await server.stop()
    (s1,) = await rows(db, text="s1")
    assert (s1.status, s1.error) == ("queued", "send timed out")
    assert [r.status for r in await rows(db, text="s2")] == ["queued"]


async def test_a_send_that_hangs_is_given_up_after_the_send_timeout_and_retried_later(
    db, settings, clock
):
    hung = await person(db, telegram="7201")
    fine = await person(db, telegram="7202")
    await queue(db, settings, hung, "telegram", "h1", now=clock.now)
    await queue(db, settings, fine, "telegram", "f1", "f2", "f3", now=clock.now)
    transport = RecordingTransport(delay=lambda m: 3600 if m.address == "7201" else 0)
    # One worker: the hung send holds it until the timeout, then it takes the rest.
    worker = dispatcher(
        db, settings, {"telegram": transport}, clock, send_timeout=0.4, concurrency=1
    )
    started = asyncio.get_running_loop().time()
    async with asyncio.timeout(10):
        await worker.drain()
    assert asyncio.get_running_loop().time() - started < 5
    (h1,) = await rows(db, text="h1")
    assert (h1.status, h1.error, h1.attempts) == ("queued", "send timed out", 1)
    assert h1.next_attempt_at > clock.now  # a later attempt, after a backoff
    assert transport.texts("7202") == ["f1", "f2", "f3"]
    assert not asyncio.current_task().cancelling()  # the watchdog's cancel stayed inside


# --- what the channel says -----------------------------------------------------------------


async def test_telegram_429_retry_after_is_waited_exactly(db, settings, clock, bot_api):
    gus = await person(db, telegram="8001")
    await queue(db, settings, gus, "telegram", "first", "second", now=clock.now)
    bot_api.fail("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7)
    transport = telegram_transport(bot_api)
    worker = dispatcher(db, settings, {"telegram": transport}, clock)
    try:
        await worker.drain()
        (first, second) = await rows(db)
        assert (first.status, first.attempts) == ("queued", 1)
        assert first.next_attempt_at == clock.now + timedelta(seconds=7)
        assert second.status == "queued"
        clock.advance(6.999)
        assert await worker.drain() == 0
        clock.advance(0.001)
        assert await worker.drain() == 2
    finally:
        await transport.close()
    assert [c["text"] for c in bot_api.called("sendMessage")] == ["first", "first", "second"]
    assert [r.status for r in await rows(db)] == ["sent", "sent"]


async def test_blocked_bot_marks_contact_unreachable_and_moves_to_consented_sms(
    db, settings, clock, bot_api
):
    hal = await person(db, telegram="9001", sms="+447700900104", sms_consent=True)
    question = Outbound("Will you attend?", choices=(Choice("yes", "Yes"), Choice("no", "No")))
    await queue(db, settings, hal, "telegram", question, "See you soon", now=clock.now)
    bot_api.fail("sendMessage", 403, "Forbidden: bot was blocked by the user")
    sms = RecordingTransport("sms")
    transport = telegram_transport(bot_api)
    try:
        await dispatcher(db, settings, {"telegram": transport, "sms": sms}, clock).drain()
    finally:
        await transport.close()

    assert len(bot_api.called("sendMessage")) == 1  # the second never tried Telegram
    assert sms.texts() == ["Will you attend?\n\n1 Yes\n2 No\nReply 1 or 2.", "See you soon"]
    telegram_rows = await rows(db, channel="telegram")
    assert [(r.status, r.error) for r in telegram_rows] == [
        ("undeliverable", "telegram: Forbidden: bot was blocked by the user; moved to sms"),
        ("cancelled", "contact unreachable; moved to sms"),
    ]
    assert [r.status for r in await rows(db, channel="sms")] == ["sent", "sent"]
    async with db.sessions() as session:
        contact = await session.get(Contact, hal["telegram"])
        events = (await session.execute(select(AuditEvent))).scalars().all()
    assert contact.unreachable_at == clock.now
    assert [(e.kind, e.data["channel"], e.participant_id) for e in events] == [
        ("contact.unreachable", "telegram", hal["id"])
    ]
    assert "9001" not in str(events[0].data)


async def test_blocked_bot_without_sms_consent_is_given_up_with_a_reason(
    db, settings, clock, bot_api
):
    ida = await person(db, telegram="9002", sms="+447700900105", sms_consent=False)
    await queue(db, settings, ida, "telegram", "Hello", now=clock.now)
    bot_api.fail("sendMessage", 403, "Forbidden: bot was blocked by the user")
    sms = RecordingTransport("sms")
    transport = telegram_transport(bot_api)
    try:
        await dispatcher(db, settings, {"telegram": transport, "sms": sms}, clock).drain()
    finally:
        await transport.close()
    assert sms.sent == []
    (row,) = await rows(db)
    assert row.status == "undeliverable"
    assert row.error.endswith("no other channel")


async def test_carrier_opt_out_stops_further_sms(db, settings, clock):
    jo = await person(db, sms="+447700900106")
    await queue(db, settings, jo, "sms", "one", "two", now=clock.now)

    def opted_out(message: Outgoing, attempt: int) -> None:
        raise PermanentFailure("twilio 21610: unsubscribed recipient", opted_out=True)

    sms = RecordingTransport("sms", script=opted_out)
    await dispatcher(db, settings, {"sms": sms}, clock).drain()
    assert [m.text for m in sms.attempts] == ["one"]
    assert [(r.status, r.error) for r in await rows(db)] == [
        ("undeliverable", "twilio 21610: unsubscribed recipient"),
        ("cancelled", "recipient opted out"),
    ]
    async with db.sessions() as session:
        assert (await session.get(Contact, jo["sms"])).opted_out_at == clock.now
        kinds = (await session.execute(select(AuditEvent.kind))).scalars().all()
    assert kinds == ["contact.opted_out"]


async def test_permanent_failure_and_retries_for_too_long_fail_the_row(db, settings, clock):
    settings = settings.model_copy(update={"retry_for": timedelta(hours=3)})
    kim = await person(db, sms="+447700900107")
    lou = await person(db, sms="+447700900108")
    await queue(db, settings, kim, "sms", "refused", now=clock.now)
    await queue(db, settings, lou, "sms", "flaky", now=clock.now)

    def script(message: Outgoing, attempt: int) -> None:
        if message.text == "refused":
            raise PermanentFailure("invalid number")
        raise RetryLater("carrier busy")

    worker = dispatcher(db, settings, {"sms": RecordingTransport("sms", script=script)}, clock)
    for _ in range(5):
        await worker.drain()
        clock.advance(3600)
    refused, flaky = await rows(db)
    assert (refused.status, refused.error) == ("failed", "invalid number")
    # Tried at 0, 1, 2 and 3 hours: given up once it had been due for retry_for.
    assert (flaky.status, flaky.attempts) == ("failed", 4)
    assert flaky.error == "gave up after 4 attempts over 3 h 0 min: carrier busy"


async def test_opted_out_person_gets_only_the_confirmation(db, settings, relay, clock):
    address = "+447700900109"
    await service.receive(
        relay, channel="sms", address=address, text="hi", provider_id="in-1", now=clock.now
    )
    sms = RecordingTransport("sms")
    worker = dispatcher(db, settings, {"sms": sms}, clock)
    await worker.drain()
    welcome = sms.texts()
    assert len(welcome) == 1

    async with db.sessions() as session:
        contact = (await session.execute(select(Contact))).scalar_one()
    who = {"id": contact.participant_id, "sms": contact.id}
    await queue(db, settings, who, "sms", "Queued before STOP", now=clock.now)
    await service.receive(
        relay, channel="sms", address=address, text="STOP", provider_id="in-2", now=clock.now
    )
    await queue(db, settings, who, "sms", "Queued after STOP", now=clock.now)
    await worker.drain()

    (confirmation,) = sms.texts()[1:]
    assert confirmation.startswith("You have been unsubscribed")
    outcome = {r.text: (r.status, r.error) for r in await rows(db)}
    assert outcome["Queued before STOP"] == ("cancelled", "recipient opted out")
    assert outcome["Queued after STOP"] == ("cancelled", "recipient opted out")


# --- several dispatchers, crashes ----------------------------------------------------------


async def test_two_dispatchers_racing_send_each_message_once_in_order(db, settings):
    people = [await person(db, telegram=str(10_000 + n)) for n in range(50)]
    # One engine each: separate connection pools, as two processes would have.
    engines = [make_engine(db.url), make_engine(db.url)]
    sent: list[tuple[str, Outgoing]] = []

    def transport(name: str) -> RecordingTransport:
        recording = RecordingTransport(delay=lambda m: random.uniform(0.002, 0.02))
        original = recording.send

        async def send(message: Outgoing) -> Sent:
            result = await original(message)
            sent.append((name, message))
            return result

        recording.send = send
        return recording

    workers = [
        # Few sends in flight each, so that neither can take all the work alone.
        Dispatcher(
            sessionmaker(engine),
            {"telegram": transport(name)},
            settings,
            limits=DeliveryLimits.off(),
            concurrency=4,
            poll_interval=0.02,
        )
        for name, engine in zip(("a", "b"), engines, strict=True)
    ]
    # All the work is waiting when both start together, so that both take part in the race
    # from the first claim (queued while they polled, on SQLite one of them could claim each
    # person's messages as they came and leave the other nothing).
    now = datetime.now(UTC)
    for who in people:
        await queue(db, settings, who, "telegram", "m1", "m2", "m3", "m4", now=now)
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        async with asyncio.timeout(60):
            while len(sent) < 200:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # anything sent twice would show up now
    finally:
        for worker in workers:
            worker.stop()
        await asyncio.gather(*tasks)
        for engine in engines:
            await engine.dispose()

    assert len(sent) == 200
    assert Counter(message.id for _, message in sent).most_common(1)[0][1] == 1
    assert {name for name, _ in sent} == {"a", "b"}
    for who in people:
        chat = str(10_000 + people.index(who))
        assert [m.text for _, m in sent if m.address == chat] == ["m1", "m2", "m3", "m4"]
    assert {r.status for r in await rows(db)} == {"sent"}


async def test_a_send_lost_in_a_crash_is_sent_again_once_when_its_lease_expires(
    db, settings, clock
):
    max_ = await person(db, telegram="11001")
    await queue(db, settings, max_, "telegram", "hello", "world", now=clock.now)

    crashing = RecordingTransport(delay=lambda m: 3600)
    first = dispatcher(
        db, settings, {"telegram": crashing}, clock, lease=timedelta(seconds=120), send_timeout=60
    )
    crashed = asyncio.create_task(first.run_once())
    while not crashing.attempts:
        await asyncio.sleep(0.01)
    crashed.cancel()  # the process dies mid-send: the row stays "sending" under its lease
    with pytest.raises(asyncio.CancelledError):
        await crashed
    (row, _) = await rows(db)
    assert (row.status, row.lease_owner) == ("sending", first.owner)

    second_transport = RecordingTransport()
    second = dispatcher(db, settings, {"telegram": second_transport}, clock)
    clock.advance(119)
    assert await second.drain() == 0  # the lease still holds; "world" waits behind it
    clock.advance(2)
    assert await second.drain() == 2
    assert await second.drain() == 0
    assert second_transport.texts() == ["hello", "world"]
    first_row, _ = await rows(db)
    assert (first_row.status, first_row.attempts) == ("sent", 2)


# --- limits, metrics, the app ------------------------------------------------------------


async def test_per_chat_rate_spaces_messages_to_one_chat(db, settings):
    settings = settings.model_copy(update={"telegram_chat_rate": 20.0, "telegram_rate": 1000.0})
    ned = await person(db, telegram="12001")
    oli = await person(db, telegram="12002")
    now = datetime.now(UTC)
    await queue(db, settings, ned, "telegram", *[f"n{i}" for i in range(5)], now=now)
    await queue(db, settings, oli, "telegram", *[f"o{i}" for i in range(5)], now=now)
    transport = RecordingTransport()
    worker = Dispatcher(db.sessions, {"telegram": transport}, settings)
    await worker.drain()
    stamps = transport.times
    for times in stamps.values():
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert len(times) == 5 and min(gaps) >= 1 / 20 - 0.002
    # Both chats progressed side by side, not one after the other (which would put a
    # quarter of a second, five spacings, between their last messages).
    assert abs(stamps["12001"][-1] - stamps["12002"][-1]) < 0.12


async def test_queue_depth_is_counted_per_channel(db, settings, clock):
    pat = await person(db, telegram="13001", sms="+447700900110")
    await queue(db, settings, pat, "telegram", "a", "b", now=clock.now)
    await queue(db, settings, pat, "sms", "c", now=clock.now)
    worker = dispatcher(
        db, settings, {"telegram": RecordingTransport(), "sms": RecordingTransport("sms")}, clock
    )
    assert await worker.refresh_queue_depth() == {"telegram": 2, "sms": 1}
    assert QUEUE_DEPTH.labels("telegram")._value.get() == 2
    await worker.drain()
    await worker.refresh_queue_depth()
    assert QUEUE_DEPTH.labels("telegram")._value.get() == 0
    assert QUEUE_DEPTH.labels("sms")._value.get() == 0


async def test_the_app_dispatches_in_the_background_and_stops_cleanly(sqlite_db):
    from bot.bootstrap import build, create_app
    from bot.settings import Settings

    settings = Settings(CONCORDER_DATABASE_URL=sqlite_db.url, _env_file=None)
    relay = build(settings)
    runner = web.AppRunner(create_app(relay=relay, migrate=False, dispatch=True))
    await runner.setup()
    try:
        await service.receive(
            relay, channel="sms", address="+447700900111", text="hi", provider_id="app-1"
        )
        async with asyncio.timeout(20):  # generous: other features start beside it
            while not [r for r in await rows(sqlite_db) if r.status == "delivered"]:
                await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()
    (row,) = await rows(sqlite_db)
    assert row.provider_id == f"sim-{row.id}"


# --- the running loop: read-ahead, outcomes recorded with the next claim ------------------


async def run_until(worker: Dispatcher, done: Callable[[], bool], seconds: float = 30) -> None:
    task = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(seconds):
            while not done():
                await asyncio.sleep(0.02)
    finally:
        worker.stop()
        await task


async def test_rows_claimed_ahead_never_exceed_the_concurrent_sends(db, settings):
    people = [await person(db, telegram=str(14_000 + n)) for n in range(12)]
    now = datetime.now(UTC)
    for who in people:
        await queue(db, settings, who, "telegram", "a", "b", now=now)
    sending = peak = 0

    class Counting(RecordingTransport):
        async def send(self, message: Outgoing) -> Sent:
            nonlocal sending, peak
            sending += 1
            peak = max(peak, sending)
            try:
                await asyncio.sleep(0.01)
                return await super().send(message)
            finally:
                sending -= 1

    transport = Counting()
    worker = Dispatcher(
        db.sessions,
        {"telegram": transport},
        settings,
        limits=DeliveryLimits.off(),
        concurrency=3,
        poll_interval=0.02,
    )
    await run_until(worker, lambda: len(transport.sent) == 24)
    assert peak == 3
    for who in people:
        assert transport.texts(str(14_000 + people.index(who))) == ["a", "b"]
    assert {r.status for r in await rows(db)} == {"sent"}


async def test_a_failed_claim_still_records_what_was_sent(db, settings, monkeypatch):
    people = [await person(db, telegram=str(15_000 + n)) for n in range(3)]
    now = datetime.now(UTC)
    for who in people:
        await queue(db, settings, who, "telegram", "one", "two", now=now)
    transport = RecordingTransport()
    worker = Dispatcher(
        db.sessions,
        {"telegram": transport},
        settings,
        limits=DeliveryLimits.off(),
        concurrency=4,
        poll_interval=0.02,
    )
    claim = worker.claims.claim_in
    calls = 0

    def flaky(connection, limit, channels):
        nonlocal calls
        calls += 1
        if calls == 2:  # the claim that shares its transaction with the first outcomes
            raise ConnectionError("database went away")
        return claim(connection, limit, channels)

    monkeypatch.setattr(worker.claims, "claim_in", flaky)
    await run_until(worker, lambda: len(transport.sent) == 6)
    await asyncio.sleep(0.1)
    assert calls > 2
    assert sorted(m.text for m in transport.attempts) == ["one"] * 3 + ["two"] * 3
    assert {(r.status, r.attempts) for r in await rows(db)} == {("sent", 1)}


def test_dispatch_latency_is_scraped_as_a_cumulative_histogram_per_channel():
    from prometheus_client import CollectorRegistry, generate_latest

    from bot.metrics import ChannelHistogram

    registry = CollectorRegistry()
    latency = ChannelHistogram(
        "demo_latency_seconds", "demo", buckets=(0.05, 1, 10), registry=registry
    )
    for seconds in (0.05, 0.07, 0.9, 1000):  # 0.05 is "le 0.05": it counts in that bucket
        latency.observe("sms", seconds)
    latency.observe("telegram", 2)

    text = generate_latest(registry).decode()
    for line in (
        'demo_latency_seconds_bucket{channel="sms",le="0.05"} 1.0',
        'demo_latency_seconds_bucket{channel="sms",le="1.0"} 3.0',
        'demo_latency_seconds_bucket{channel="sms",le="10.0"} 3.0',
        'demo_latency_seconds_bucket{channel="sms",le="+Inf"} 4.0',
        'demo_latency_seconds_count{channel="sms"} 4.0',
        'demo_latency_seconds_sum{channel="sms"} 1001.02',
        'demo_latency_seconds_bucket{channel="telegram",le="1.0"} 0.0',
        'demo_latency_seconds_bucket{channel="telegram",le="10.0"} 1.0',
    ):
        assert line in text.splitlines()


async def test_a_long_queue_on_one_channel_does_not_hold_up_another_channel(db, settings):
    busy = [await person(db, telegram=str(16_000 + n)) for n in range(60)]
    now = datetime.now(UTC)
    for who in busy:
        await queue(db, settings, who, "telegram", "t1", "t2", now=now)
    sms_person = await person(db, sms="+447700900190")
    await queue(db, settings, sms_person, "sms", "your session moved", now=now)
    handed_over: list[str] = []

    class Slow(RecordingTransport):
        async def send(self, message: Outgoing) -> Sent:
            await asyncio.sleep(0.01)
            handed_over.append(message.channel)
            return await super().send(message)

    telegram, sms = Slow(), Slow("sms")
    worker = Dispatcher(
        db.sessions,
        {"telegram": telegram, "sms": sms},
        settings,
        limits=DeliveryLimits.off(),
        concurrency=2,
        poll_interval=0.02,
    )
    await run_until(worker, lambda: len(handed_over) == 121)
    assert handed_over.index("sms") < 10  # not after the 120 Telegram messages
    assert {r.status for r in await rows(db)} == {"sent"}
