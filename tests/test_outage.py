"""A Twilio outage loses nothing: the real twilio client against a port where nothing
answers, then against Prism once it is back, with the dispatcher's clock driven forward.

Sends are retried for a day (CONCORDER_RETRY_FOR) with capped backoff, in order per person;
a reminder whose session begins during the outage expires instead of arriving late.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from sqlalchemy import select

from bot.bootstrap import build, create_app
from bot.channels.sms import SmsTransport
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.ratelimit import DeliveryLimits
from bot.delivery.retry import BACKOFF_CAP
from bot.metrics import REGISTRY
from bot.services import outgoing
from bot.services.outgoing import enqueuer
from flows.model import Outbound
from scheduler.runner import CalendarRunner
from store.models import Contact, OutboxMessage, Participant
from tests.calendar_world import add_person, at, load
from tests.twilio_peer import RecordingHop, free_port, twilio_settings

pytest_plugins = ["tests.twilio_peer"]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Twilio:
    """Prism (Twilio's own spec) behind a recording hop, on a port that is dead until
    `back()`: the real twilio client sees its connection refused meanwhile."""

    def __init__(self, prism: str) -> None:
        self.port = free_port()
        self.hop = RecordingHop(prism)
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def back(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.hop.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def received(self) -> dict[str, list[str]]:
        """Bodies in the order Twilio got them, by recipient."""
        by_number: dict[str, list[str]] = defaultdict(list)
        for request in self.hop.requests:
            by_number[request.form["To"][0]].append(request.form["Body"][0])
        return dict(by_number)


@pytest.fixture
async def twilio(prism):
    peer = Twilio(prism)
    yield peer
    await peer.close()


async def queue(db, settings, participant_id: str, *texts: str, now: datetime) -> None:
    async with db.sessions.begin() as session:
        participant = await session.get(Participant, participant_id)
        contact = (
            await session.execute(select(Contact).where(Contact.participant_id == participant_id))
        ).scalar_one()
        await outgoing.enqueue(
            session,
            settings,
            participant,
            contact,
            [Outbound(text=t) for t in texts],
            prompt_id=None,
            now=now,
        )


async def statuses(db) -> dict[str, list[str]]:
    async with db.sessions() as session:
        rows = (await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars()
        found: dict[str, list[str]] = defaultdict(list)
        for row in rows:
            found[row.status].append(row.text)
        return dict(found)


async def run_for(worker: Dispatcher, clock: Clock, seconds: float, step: float) -> None:
    """Let `seconds` of outage pass, the dispatcher sending whatever is due at each step."""
    end = clock.now + timedelta(seconds=seconds)
    while clock.now < end:
        clock.now = min(end, clock.now + timedelta(seconds=step))
        await worker.drain()


PEOPLE = {
    "+447700900301": ["a1", "a2", "a3"],
    "+447700900302": ["b1", "b2"],
    "+447700900303": ["c1"],
}


async def people(db, settings, now: datetime) -> dict[str, str]:
    ids = {}
    for number, texts in PEOPLE.items():
        ids[number] = await add_person(db, channel="sms", address=number)
        await queue(db, settings, ids[number], *texts, now=now)
    return ids


@pytest.mark.parametrize("outage", [timedelta(minutes=3), timedelta(hours=10)])
async def test_an_outage_loses_nothing_and_everything_goes_out_in_order_once_twilio_is_back(
    db, twilio, outage
):
    settings = twilio_settings(db.url, TWILIO_API_BASE_URL=twilio.url)
    clock = Clock(at("2027-03-09T16:00"))
    await people(db, settings, clock.now)
    worker = Dispatcher(
        db.sessions,
        {"sms": SmsTransport(settings, timeout=5)},
        settings,
        clock,
        limits=DeliveryLimits.off(),
    )
    try:
        await worker.drain()
        await run_for(worker, clock, outage.total_seconds(), step=20)
        found = await statuses(db)
        assert set(found) == {"queued"}  # nothing given up, nothing sent out of turn
        async with db.sessions() as session:
            heads = (
                (
                    await session.execute(
                        select(OutboxMessage).where(OutboxMessage.text.in_(["a1", "b1", "c1"]))
                    )
                )
                .scalars()
                .all()
            )
        assert all(h.error == "cannot reach Twilio (ClientConnectorError)" for h in heads)
        assert all(h.attempts > 3 for h in heads)
        assert worker.health.channel("sms").degraded

        await twilio.back()
        await run_for(worker, clock, BACKOFF_CAP, step=20)
    finally:
        await worker.transports["sms"].close()
    assert twilio.received() == PEOPLE
    assert set(await statuses(db)) == {"sent"}
    assert not worker.health.channel("sms").degraded


async def test_a_reminder_whose_session_began_during_the_outage_expires_and_holds_up_nobody(
    db, twilio
):
    settings = twilio_settings(db.url, TWILIO_API_BASE_URL=twilio.url)
    calendar = load()
    ada = await add_person(db, channel="sms", address="+447700900311")
    # Tuesday 16:30 London: the 2 h reminder of the 18:30 session is queued, Twilio is down.
    clock = Clock(at("2027-03-09T16:30"))
    await CalendarRunner(db.sessions, enqueuer(settings), calendar=calendar).tick(clock.now)
    async with db.sessions() as session:
        timed = (await session.execute(select(OutboxMessage))).scalars().all()
    assert {row.kind for row in timed} == {"reminder"}
    assert {row.expires_at for row in timed} == {at("2027-03-09T18:30")}
    worker = Dispatcher(
        db.sessions,
        {"sms": SmsTransport(settings, timeout=5)},
        settings,
        clock,
        limits=DeliveryLimits.off(),
    )
    try:
        await worker.drain()
        clock.now += timedelta(minutes=30)
        await queue(db, settings, ada, "Your question was answered", now=clock.now)
        await run_for(worker, clock, 3 * 3600, step=60)
        async with db.sessions() as session:
            timed = [await session.get(OutboxMessage, row.id) for row in timed]
        assert {(row.status, row.error) for row in timed} == {
            ("expired", "its moment passed before it could be sent")
        }
        assert timed[0].attempts > 1
        await twilio.back()
        await run_for(worker, clock, BACKOFF_CAP, step=20)
    finally:
        await worker.transports["sms"].close()
    assert twilio.received() == {"+447700900311": ["Your question was answered"]}
    found = await statuses(db)
    assert (len(found["expired"]), found["sent"]) == (len(timed), ["Your question was answered"])


async def test_a_message_still_failing_after_retry_for_is_failed(db, twilio):
    settings = twilio_settings(db.url, TWILIO_API_BASE_URL=twilio.url, CONCORDER_RETRY_FOR="2h")
    clock = Clock(at("2027-03-09T16:00"))
    await people(db, settings, clock.now)
    worker = Dispatcher(
        db.sessions,
        {"sms": SmsTransport(settings, timeout=5)},
        settings,
        clock,
        limits=DeliveryLimits.off(),
    )
    try:
        await run_for(worker, clock, 2 * 3600 - 60, step=60)
        assert set(await statuses(db)) == {"queued"}
        await run_for(worker, clock, 120, step=30)
    finally:
        await worker.transports["sms"].close()
    async with db.sessions() as session:
        failed = {
            row.text: row
            for row in (
                await session.execute(select(OutboxMessage).where(OutboxMessage.status == "failed"))
            ).scalars()
        }
    # Every message due for more than 2 hours is given up once it has been tried: those
    # first in line after many attempts, those behind them after one.
    assert sorted(failed) == ["a1", "a2", "a3", "b1", "b2", "c1"]
    assert all(" over 2 h " in row.error for row in failed.values())
    assert min(failed[text].attempts for text in ("a1", "b1", "c1")) > 20
    assert {failed[text].attempts for text in ("a2", "a3", "b2")} == {1}


async def test_healthz_says_degraded_while_a_channel_keeps_failing_and_metrics_show_it(
    db, twilio, aiohttp_client
):
    settings = twilio_settings(db.url, TWILIO_API_BASE_URL=twilio.url)
    relay = build(settings)
    client = await aiohttp_client(create_app(relay=relay, migrate=False, dispatch=False))
    healthy = await (await client.get("/healthz")).json()
    assert healthy["status"] == "ok"

    started = datetime.now(UTC) - timedelta(minutes=7)
    clock = Clock(started)
    await people(db, settings, clock.now)
    worker = Dispatcher(
        db.sessions,
        {"sms": SmsTransport(settings, timeout=5)},
        settings,
        clock,
        limits=DeliveryLimits.off(),
        health=relay.health,
    )
    try:
        await run_for(worker, clock, 7 * 60, step=30)
        await worker.refresh_queue_depth()
        answer = await client.get("/healthz")
        assert answer.status == 200  # still up: inbound webhooks must keep coming
        body = await answer.json()
        sms = body["channels"]["sms"]
        assert body["status"] == "degraded" and sms["status"] == "degraded"
        assert sms["consecutive_failures"] >= 3
        assert sms["failing_since"] == (started + timedelta(seconds=30)).isoformat()
        assert sms["last_error"] == "cannot reach Twilio (ClientConnectorError)"
        assert (sms["pending"], sms["retrying"]) == (6, 3)
        assert 7 * 60 <= sms["oldest_waiting_seconds"] < 9 * 60
        metrics = await (await client.get("/metrics")).text()
        assert 'concorder_channel_degraded{channel="sms"} 1.0' in metrics
        assert (
            REGISTRY.get_sample_value("concorder_outbox_oldest_waiting_seconds", {"channel": "sms"})
            >= 7 * 60
        )

        await twilio.back()
        await run_for(worker, clock, BACKOFF_CAP, step=20)
    finally:
        await worker.transports["sms"].close()
    body = await (await client.get("/healthz")).json()
    assert body["status"] == "ok"
    assert body["channels"]["sms"]["consecutive_failures"] == 0
    assert body["channels"]["sms"]["pending"] == 0


async def test_a_broadcast_preview_left_unsent_until_it_lapses_is_never_delivered(
    db, settings, relay, calendar
):
    from tests.test_dispatcher import RecordingTransport
    from tests.test_organisers import NOW, ORGANISER_CHAT, panel, say

    await panel(db)
    await say(relay, ORGANISER_CHAT, "/broadcast Meeting moved to room B")
    telegram = RecordingTransport()
    # Telegram was down for the preview's whole life: by the time it is back, "Reply SEND"
    # would only earn "That preview has expired".
    clock = Clock(NOW + timedelta(minutes=31))
    await Dispatcher(
        db.sessions, {"telegram": telegram}, settings, clock, limits=DeliveryLimits.off()
    ).drain()
    assert telegram.texts(ORGANISER_CHAT) == []
    async with db.sessions() as session:
        (preview,) = (
            (
                await session.execute(
                    select(OutboxMessage).where(OutboxMessage.address == ORGANISER_CHAT)
                )
            )
            .scalars()
            .all()
        )
    assert preview.status == "expired"
    assert preview.expires_at == NOW + timedelta(minutes=30)


@pytest.fixture
def calendar():
    """The organisers' calendar without quiet hours (the `relay` runs it)."""
    from scheduler import config as scheduler_config
    from tests.test_organisers import CALENDAR

    return scheduler_config.parse_calendar(CALENDAR.format(quiet=""))
