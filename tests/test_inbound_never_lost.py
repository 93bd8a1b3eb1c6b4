"""A message whose turn fails is kept, answered later and in order, never lost.

Twilio never sends an inbound SMS again after its webhook failed, and Telegram gives up
after a while: the webhook answers as for any message, the message waits in the database,
and the service's retry answers it (and the person's later messages after it) once the
fault has passed. The relay here is built as the service builds it, with one more turn hook
that really fails: the first few times, or always.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select
from typer.testing import CliRunner

from bot.bootstrap import build, build_cli, create_app
from bot.metrics import REGISTRY
from bot.relay import Relay
from bot.services import batch
from bot.services.ballots import opening, records
from bot.services.organisers import add_organiser
from bot.services.recruitment.links import STORED_START
from bot.services.turns import receive
from bot.services.unhandled import tick as unhandled_tick
from bot.services.unhandled.keep import receive_or_keep
from bot.services.unhandled.retry import retry_due
from store.db import make_engine, sessionmaker
from store.models import InboundMessage, OutboxMessage, utcnow
from store.unhandled import UnhandledInbound
from tests.ballot_world import create_ballots, panel, voter
from tests.telegram_peer import bot_api_fixture  # noqa: F401  (fixture)
from tests.test_inbound_batch import one_at_a_time, replies, text_in
from tests.test_telegram_webhook import SECRET, message_update, webhook_settings
from tests.twilio_peer import twilio_settings

ALICE = "+447700900501"
ORGANISER = "5551"
CHAT = 5550501


def failing(relay: Relay, *, times: int | None = None, on: str | None = None) -> Relay:
    """`relay` with a turn hook that raises the first `times` times (None: always), for the
    messages saying `on` (None: every message)."""
    calls = {"failed": 0}

    async def flaky(session, settings, *, text: str, **_) -> int:
        if on is not None and text != on:
            return 0
        if times is None or calls["failed"] < times:
            calls["failed"] += 1
            raise RuntimeError("a passing fault in a hook")
        return 0

    relay.hooks.after_turn(flaky)
    return relay


async def stored(db, *provider_ids: str) -> list[int]:
    async with db.sessions() as session:
        return list(
            (
                await session.scalars(
                    select(InboundMessage.id)
                    .where(InboundMessage.provider_id.in_(provider_ids))
                    .order_by(InboundMessage.id)
                )
            ).all()
        )


async def unhandled(db) -> list[UnhandledInbound]:
    async with db.sessions() as session:
        return list(
            (await session.scalars(select(UnhandledInbound).order_by(UnhandledInbound.id))).all()
        )


def waiting_gauge(state: str) -> float | None:
    return REGISTRY.get_sample_value("concorder_inbound_unhandled_messages", {"state": state})


def counted(outcome: str) -> float:
    sample = {"outcome": outcome}
    return REGISTRY.get_sample_value("concorder_inbound_unhandled_total", sample) or 0.0


async def test_an_sms_whose_turn_fails_is_answered_later_and_before_the_next_one(
    db, aiohttp_client
):
    settings = twilio_settings(db.url)
    expected = await one_at_a_time(
        db, build(settings, sessions=db.sessions), "sms", "+447700900599", ["Hello", "HELP"]
    )
    # Fails in its batch, then alone: the turn is given up on for now.
    relay = failing(build(settings), times=2)
    client = await aiohttp_client(create_app(relay=relay, migrate=False, dispatch=False))
    sid_hello, sid_help = "SM" + "a1" * 16, "SM" + "b2" * 16

    assert await text_in(client, sid_hello, ALICE, "Hello") == 200
    assert await text_in(client, sid_help, ALICE, "HELP") == 200
    assert await text_in(client, sid_hello, ALICE, "Hello") == 200  # Twilio, had it failed

    assert await replies(db, "sms", ALICE) == []  # nothing yet, not even "got it"
    hello, help_ = await stored(db, sid_hello, sid_help)
    kept = await unhandled(db)
    assert [(m.id, m.failures) for m in kept] == [(hello, 1), (help_, 0)]
    # Not due yet; and HELP, which could go through, waits behind Hello.
    assert (await retry_due(relay)).handled == []
    assert await replies(db, "sms", ALICE) == []

    tried = await retry_due(relay, now=utcnow() + timedelta(minutes=2))
    assert tried.handled == [hello, help_]
    assert await replies(db, "sms", ALICE) == expected
    assert await unhandled(db) == []
    assert (await retry_due(relay, now=utcnow() + timedelta(hours=2))).handled == []
    assert await replies(db, "sms", ALICE) == expected  # each answered once


async def test_a_telegram_message_whose_turn_fails_is_answered_later_in_order_and_language(
    db, bot_api, aiohttp_client
):
    settings = webhook_settings(db, bot_api)
    plain = build(settings, sessions=db.sessions)
    for n, text in enumerate(["Hello", "HELP"]):  # a French-speaking app, answered at once
        await receive(
            plain,
            channel="telegram",
            address="5550599",
            text=text,
            provider_id=f"fr{n}",
            language_hint="fr",
        )
    expected = await replies(db, "telegram", "5550599")
    assert "Concorder Relay" in expected[0] and "Bonjour" in expected[0]
    relay = failing(build(settings), times=2)
    client = await aiohttp_client(create_app(relay=relay, migrate=False, dispatch=False))

    async def send(update_id: int, text: str) -> int:
        update = message_update(update_id, text=text, chat=CHAT)  # from a French app
        response = await client.post(
            "/webhooks/telegram", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
        )
        return response.status

    assert [await send(71, "Hello"), await send(72, "HELP"), await send(71, "Hello")] == [200] * 3
    assert await replies(db, "telegram", str(CHAT)) == []
    assert len(await stored(db, "tg:71", "tg:72")) == 2

    await retry_due(relay, now=utcnow() + timedelta(minutes=2))
    assert await replies(db, "telegram", str(CHAT)) == expected
    assert await unhandled(db) == []


async def test_a_simulator_message_whose_turn_fails_is_kept_and_answered_later(
    db, settings, aiohttp_client
):
    """The demo's visitor types in the simulator: their message is not refused either."""
    relay = failing(build(settings), times=1)
    client = await aiohttp_client(create_app(relay=relay, migrate=False, dispatch=False))
    address = "+447700900598"
    sent = await client.post(
        "/simulator/api/messages", json={"channel": "sms", "address": address, "text": "HELP"}
    )
    assert sent.status == 202 and (await sent.json())["kept"] is True
    assert [m.failures for m in await unhandled(db)] == [1]
    assert await replies(db, "sms", address) == []

    await retry_due(relay, now=utcnow() + timedelta(minutes=2))
    assert "Concorder Relay" in " ".join(await replies(db, "sms", address))  # the help text
    assert await unhandled(db) == []


async def test_a_kept_voice_note_is_still_a_voice_note_when_tried_again(
    db, bot_api, aiohttp_client
):
    relay = failing(build(webhook_settings(db, bot_api)), times=2, on="")
    client = await aiohttp_client(create_app(relay=relay, migrate=False, dispatch=False))
    voice = {"file_id": "v", "file_unique_id": "vu", "duration": 3}

    for update in (
        message_update(81, "Hello", chat=CHAT),
        message_update(82, None, chat=CHAT, voice=voice),
    ):
        response = await client.post(
            "/webhooks/telegram", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
        )
        assert response.status == 200
    (welcome,) = await replies(db, "telegram", str(CHAT))
    assert len(await unhandled(db)) == 1

    await retry_due(relay, now=utcnow() + timedelta(minutes=2))
    assert await replies(db, "telegram", str(CHAT)) == [
        welcome,
        "Je ne peux lire que les messages écrits : merci d'écrire votre réponse, même en "
        "quelques mots.",
        welcome,
    ]


async def test_after_five_failures_the_organisers_get_the_id_and_the_person_goes_on(
    db, aiohttp_client
):
    settings = twilio_settings(db.url)
    async with db.sessions.begin() as session:
        await add_organiser(session, telegram_id=ORGANISER, name="Ann")
    relay = failing(build(settings), on="Hello")
    client = await aiohttp_client(create_app(relay=relay, migrate=False, dispatch=False))
    given_up = counted("gave_up")

    assert await text_in(client, "SM" + "c3" * 16, ALICE, "Hello") == 200
    [hello] = await stored(db, "SM" + "c3" * 16)
    now = utcnow()
    for _ in range(4):  # the retries, further and further apart
        now += timedelta(hours=1)
        await retry_due(relay, now=now)
    [kept] = await unhandled(db)
    assert (kept.failures, kept.gave_up_at) == (5, now)
    assert counted("gave_up") == given_up + 1
    assert (await retry_due(relay, now=now + timedelta(days=1))).failed == []  # no more
    await unhandled_tick(relay)  # what the timer also does: the gauge of what waits
    assert waiting_gauge("given_up") == 1 and waiting_gauge("waiting") == 0

    async with db.sessions() as session:
        told = (
            await session.scalars(
                select(OutboxMessage.text).where(OutboxMessage.address == ORGANISER)
            )
        ).all()
    assert len(told) == 1
    assert f"Inbound message {hello} could not be handled" in told[0]
    assert ALICE not in told[0] and "Hello" not in told[0]
    # Given up on, it holds nothing back: the person's next message is answered at once.
    assert await text_in(client, "SM" + "d4" * 16, ALICE, "HELP") == 200
    assert await replies(db, "sms", ALICE)


async def test_an_invitation_links_code_is_not_kept_once_given_up(db, settings):
    """A '/start <code>' whose turn fails waits with its code (to bind the chat when tried
    again); given up on, only the command stays."""
    relay = failing(build(settings, sessions=db.sessions))
    code = "Zk3" * 10
    kept = await receive_or_keep(
        relay, channel="telegram", address="5550777", text=f"/start {code}", provider_id="tg:90"
    )
    assert kept.kept
    [record] = await stored(db, "tg:90")
    now = utcnow()
    for _ in range(5):
        now += timedelta(hours=1)
        await retry_due(relay, now=now)
    assert (await unhandled(db))[0].gave_up_at is not None
    async with db.sessions() as session:
        assert (
            await session.scalar(select(InboundMessage.text).where(InboundMessage.id == record))
            == STORED_START
        )


def test_inbound_show_and_retry_put_a_given_up_message_through_once_fixed(db, monkeypatch):
    monkeypatch.setenv("CONCORDER_DATABASE_URL", db.url)
    settings = twilio_settings(db.url)

    async def give_up() -> int:
        engine = make_engine(db.url)
        try:
            relay = failing(build(settings, sessions=sessionmaker(engine)))
            await batch.receive(relay, channel="sms", address=ALICE, text="Hi", provider_id="SMx")
            now = utcnow()
            for _ in range(4):
                now += timedelta(hours=1)
                await retry_due(relay, now=now)
            async with relay.sessions() as session:
                return await session.scalar(select(func.min(UnhandledInbound.id)))
        finally:
            await engine.dispose()

    kept = asyncio.run(give_up())
    cli, runner = build_cli(), CliRunner()
    shown = runner.invoke(cli, ["inbound", "show"])
    assert shown.exit_code == 0, shown.output
    assert str(kept) in shown.output and "given up" in shown.output
    assert ALICE not in shown.output and "Hi" not in shown.output.split()

    dry = runner.invoke(cli, ["inbound", "retry", str(kept), "--dry-run"])
    assert dry.exit_code == 0 and f"Would try again: {kept}." in dry.output
    assert "given up" in runner.invoke(cli, ["inbound", "show"]).output

    # The command's relay has no failing hook: the fault is fixed.
    done = runner.invoke(cli, ["inbound", "retry", str(kept)])
    assert done.exit_code == 0, done.output
    assert f"Handled now: {kept}." in done.output
    assert "none is waiting" in runner.invoke(cli, ["inbound", "show"]).output
    assert "Nothing to try again." in runner.invoke(cli, ["inbound", "retry"]).output


async def test_two_instances_retrying_at_once_handle_each_message_once_in_order(db):
    settings = twilio_settings(db.url)
    people = [f"+4477009006{n:02d}" for n in range(4)]
    expected = await one_at_a_time(
        db, build(settings, sessions=db.sessions), "sms", "+447700900699", ["Hello", "HELP"]
    )
    broken = failing(build(settings, sessions=db.sessions))
    for n, sender in enumerate(people):
        for m, text in enumerate(["Hello", "HELP"]):
            await batch.receive(
                broken, channel="sms", address=sender, text=text, provider_id=f"SMi{n}{m}"
            )
    for sender in people:
        assert await replies(db, "sms", sender) == []

    # Two instances of the service, the fault fixed, both finding the messages due.
    later = utcnow() + timedelta(minutes=2)
    one, two = (build(settings, sessions=db.sessions) for _ in range(2))
    tried = await asyncio.gather(retry_due(one, now=later), retry_due(two, now=later))

    handled = tried[0].handled + tried[1].handled
    assert sorted(handled) == sorted(set(handled)) and len(handled) == 2 * len(people)
    for sender in people:
        assert await replies(db, "sms", sender) == expected
    assert await unhandled(db) == []


async def test_an_erased_persons_waiting_message_is_never_handled(db):
    from bot.services.privacy.running import erase_request

    settings = twilio_settings(db.url)
    relay = failing(build(settings, sessions=db.sessions), on="2")
    await batch.receive(relay, channel="sms", address=ALICE, text="Hello", provider_id="SMe1")
    await batch.receive(relay, channel="sms", address=ALICE, text="2", provider_id="SMe2")
    [kept] = await unhandled(db)
    async with db.sessions() as session:
        participant_id = await session.scalar(
            select(OutboxMessage.participant_id).where(OutboxMessage.address == ALICE)
        )

    async def sent_to_them() -> int:
        async with db.sessions() as session:
            return await session.scalar(
                select(func.count()).where(OutboxMessage.participant_id == participant_id)
            )

    answered = await sent_to_them()

    await erase_request(relay, participant_id)

    assert await unhandled(db) == []
    async with db.sessions() as session:
        text = await session.scalar(select(InboundMessage.text).where(InboundMessage.id == kept.id))
    assert text == ""
    assert (await retry_due(relay, now=utcnow() + timedelta(hours=2))).handled == []
    assert await sent_to_them() == answered


async def test_a_vote_still_waiting_at_the_ballots_close_is_blanked_and_never_handled(db, settings):
    # A voter's "2" whose turn keeps failing while the ballot is open: at the close it can
    # no longer count, and kept it would be a choice stored beside its voter.
    relay = failing(build(settings, sessions=db.sessions), on="2")
    member = voter(1, "sms")
    await panel(db.sessions, [member])
    await create_ballots(db.sessions)
    await opening.open_ballot(relay, "r1")
    kept = await receive_or_keep(
        relay, channel="sms", address=member.address, text="2", provider_id="SM" + "c3" * 16
    )
    assert kept.kept
    [waiting] = await unhandled(db)

    await records.close_ballot(relay, "r1")
    async with db.sessions() as session:
        message = await session.get(InboundMessage, waiting.id)
        row = await session.get(UnhandledInbound, waiting.id)
    assert (message.text, row.gave_up_at is not None) == ("", True)
    later = utcnow() + timedelta(hours=2)
    assert (await retry_due(relay, now=later)).handled == []
