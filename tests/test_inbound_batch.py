"""Inbound webhooks at a busy moment: many messages share one transaction, and each person
still gets exactly the answers, in the order, that one message at a time would give them."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from bot.bootstrap import build, create_app
from bot.metrics import REGISTRY
from bot.services.batch import Batcher
from bot.services.turns import receive
from store import audit
from store.db import make_engine, sessionmaker
from store.models import Contact, InboundMessage, OutboxMessage, Participant
from store.personal_data import OptOutMark, opt_out_digest
from store.unhandled import UnhandledInbound
from tests.telegram_peer import bot_api_fixture  # noqa: F401  (fixture)
from tests.test_telegram_webhook import SECRET, message_update, webhook_settings
from tests.twilio_peer import sign, twilio_settings

CONVERSATION = ["Hello", "HELP", "2", "HELP"]  # each person's messages, in this order
PEOPLE = 24


def batched() -> tuple[float, float]:
    """(committed batches, messages in them) counted so far in this process."""
    batches = REGISTRY.get_sample_value("concorder_inbound_batches_total", {"outcome": "committed"})
    messages = REGISTRY.get_sample_value("concorder_inbound_batched_messages_total")
    return batches or 0.0, messages or 0.0


async def replies(db, channel: str, address: str) -> list[str]:
    """What the person was sent, in the order it goes out."""
    async with db.sessions() as session:
        rows = await session.execute(
            select(OutboxMessage.seq, OutboxMessage.text)
            .join(Contact, Contact.id == OutboxMessage.contact_id)
            .where(Contact.channel == channel, Contact.address == address)
            .order_by(OutboxMessage.seq)
        )
        rows = rows.all()
    assert [seq for seq, _ in rows] == list(range(1, len(rows) + 1))  # one queue, no gap
    return [text for _, text in rows]


async def one_at_a_time(db, relay, channel: str, address: str, texts: list[str]) -> list[str]:
    """The answers the one-message path gives to `texts`, for comparison."""
    for n, text in enumerate(texts):
        await receive(relay, channel=channel, address=address, text=text, provider_id=f"ref{n}")
    return await replies(db, channel, address)


async def counts(db, channel: str, address: str) -> tuple[int, int]:
    """(messages stored, contacts) for one address."""
    async with db.sessions() as session:
        contacts = (
            await session.scalars(
                select(Contact.id).where(Contact.channel == channel, Contact.address == address)
            )
        ).all()
        stored = await session.scalar(
            select(func.count()).where(InboundMessage.contact_id.in_(contacts))
        )
    return stored, len(contacts)


def sms_form(sid: str, sender: str, body: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": "+15005550006",
        "Body": body,
    }


async def text_in(client, sid: str, sender: str, body: str) -> int:
    form = sms_form(sid, sender, body)
    url = str(client.make_url("/webhooks/twilio/sms"))
    response = await client.post("/webhooks/twilio/sms", data=form, headers=sign(url, form))
    return response.status


async def test_a_burst_of_signed_sms_from_many_people_gets_every_answer_in_order(
    db, relay, aiohttp_client
):
    client = await aiohttp_client(create_app(twilio_settings(db.url), dispatch=False))
    expected = await one_at_a_time(db, relay, "sms", "+447700900999", CONVERSATION)
    before = batched()

    async def person(n: int) -> list[int]:
        sender = f"+4477009001{n:02d}"
        return [
            await text_in(client, f"SM{n:02d}{m:030d}", sender, text)
            for m, text in enumerate(CONVERSATION)
        ]

    statuses = await asyncio.gather(*(person(n) for n in range(PEOPLE)))
    assert statuses == [[200] * len(CONVERSATION)] * PEOPLE
    for n in range(PEOPLE):
        sender = f"+4477009001{n:02d}"
        assert await replies(db, "sms", sender) == expected
        assert await counts(db, "sms", sender) == (len(CONVERSATION), 1)
    batches, messages = (now - then for now, then in zip(batched(), before, strict=True))
    assert messages == PEOPLE * len(CONVERSATION)  # every one went through a batch
    assert batches < messages / 2  # and they shared transactions
    async with db.sessions() as session:
        assert (await audit.verify(session)).ok


async def test_a_burst_of_telegram_updates_gets_every_answer_in_order(
    db, relay, bot_api, aiohttp_client
):
    app = create_app(webhook_settings(db, bot_api), migrate=False, dispatch=False)
    client = await aiohttp_client(app)
    expected = await one_at_a_time(db, relay, "telegram", "5550999", CONVERSATION)

    async def person(n: int) -> list[int]:
        chat = 5550100 + n
        statuses = []
        for m, text in enumerate(CONVERSATION):
            update = message_update(1000 * n + m, text=text, chat=chat)
            update["message"]["from"]["language_code"] = "en"
            response = await client.post(
                "/webhooks/telegram",
                json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
            )
            statuses.append(response.status)
        return statuses

    statuses = await asyncio.gather(*(person(n) for n in range(PEOPLE)))
    assert statuses == [[200] * len(CONVERSATION)] * PEOPLE
    for n in range(PEOPLE):
        assert await replies(db, "telegram", str(5550100 + n)) == expected


@pytest.fixture
async def batcher(relay):
    batcher = Batcher(relay, linger=0.01)  # long enough that everything below shares one
    yield batcher
    await batcher.close()


def sms(batcher: Batcher, address: str, text: str, sid: str):
    return batcher.receive(channel="sms", address=address, text=text, provider_id=sid)


async def test_two_messages_of_one_person_in_one_batch_run_one_after_the_other(db, relay, batcher):
    expected = await one_at_a_time(db, relay, "sms", "+447700900998", CONVERSATION)
    before = batched()
    results = await asyncio.gather(
        *(sms(batcher, "+447700900201", text, f"SMb{m}") for m, text in enumerate(CONVERSATION))
    )
    assert batched()[0] - before[0] == 1  # one transaction
    assert [r.duplicate for r in results] == [False] * len(CONVERSATION)
    assert len({r.participant_id for r in results}) == 1
    assert await replies(db, "sms", "+447700900201") == expected


async def test_a_message_delivered_twice_is_handled_once_in_a_batch_and_across_batches(
    db, relay, batcher
):
    address = "+447700900202"
    first = await asyncio.gather(
        sms(batcher, address, "Hello", "SMdup1"),
        sms(batcher, address, "Hello", "SMdup1"),
        sms(batcher, "+447700900203", "Hello", "SMother"),
    )
    assert [r.duplicate for r in first] == [False, True, False]
    again = await sms(batcher, address, "Hello", "SMdup1")
    assert again.duplicate
    assert len(await replies(db, "sms", address)) == 1
    assert await counts(db, "sms", address) == (1, 1)


async def test_a_message_whose_turn_fails_does_not_stop_the_others(db, relay, batcher):
    async def poison(session, *, text, **_):
        if text == "POISON":
            raise RuntimeError("a bug met by one message")

    async def screen(session, messages, known):
        return {n for n, (_, _, text) in enumerate(messages) if text == "POISON"}

    relay.hooks.before_inbound(poison, screen)
    senders = [f"+4477009003{n:02d}" for n in range(6)]
    results = await asyncio.gather(
        *(sms(batcher, sender, "Hello", f"SMp{n}") for n, sender in enumerate(senders)),
        sms(batcher, "+447700900399", "POISON", "SMpoison"),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == ["Received"] * 7
    assert [r.kept for r in results] == [False] * 6 + [True]
    for sender in senders:
        assert len(await replies(db, "sms", sender)) == 1
    assert await replies(db, "sms", "+447700900399") == []
    async with db.sessions() as session:
        stored = await session.scalar(
            select(InboundMessage.id).where(InboundMessage.provider_id == "SMpoison")
        )
        kept = await session.get(UnhandledInbound, stored)
    assert (kept.failures, kept.failure) == (1, "RuntimeError")  # kept, to be tried again


async def test_stop_in_a_batch_is_honoured(db, relay, batcher):
    address = "+447700900401"
    await sms(batcher, address, "Hello", "SMs0")
    results = await asyncio.gather(
        sms(batcher, address, "HELP", "SMs1"),
        sms(batcher, address, "STOP", "SMs2"),
        sms(batcher, address, "HELP", "SMs3"),
        sms(batcher, "+447700900402", "Hello", "SMs4"),
    )
    assert [r.duplicate for r in results] == [False] * 4
    before_stop = await one_at_a_time(db, relay, "sms", "+447700900997", ["Hello", "HELP"])
    sent = await replies(db, "sms", address)
    assert sent[: len(before_stop)] == before_stop
    assert len(sent) == len(before_stop) + 1  # the one confirmation, nothing after it
    await sms(batcher, address, "Hello?", "SMs5")
    assert len(await replies(db, "sms", address)) == len(sent)
    async with db.sessions() as session:
        participant = await session.scalar(
            select(Participant)
            .join(Contact, Contact.participant_id == Participant.id)
            .where(Contact.address == address)
        )
    assert participant.opted_out
    assert len(await replies(db, "sms", "+447700900402")) == 1


@pytest.fixture
async def second_relay(db, relay):
    """Another instance of the service on the same database."""
    engine = make_engine(db.url)
    yield build(relay.settings, sessions=sessionmaker(engine))
    await engine.dispose()


async def test_two_instances_take_interleaved_messages_of_the_same_people_once_each(
    db, relay, second_relay
):
    first, second = Batcher(relay), Batcher(second_relay)
    people = [f"+4477009005{n:02d}" for n in range(8)]
    rounds = 6
    try:
        for m in range(rounds):
            text = "Hello" if m == 0 else "HELP"
            results = await asyncio.gather(
                *(
                    sms(instance, sender, text, f"SMi{n}-{m}-{i}")
                    for n, sender in enumerate(people)
                    for i, instance in enumerate((first, second))
                ),
                # the same delivery at both instances at once: handled by one of them
                sms(first, people[0], text, f"SMi-twice-{m}"),
                sms(second, people[0], text, f"SMi-twice-{m}"),
            )
            assert sum(r.duplicate for r in results) == 1
    finally:
        await first.close()
        await second.close()
    for n, sender in enumerate(people):
        handled = 2 * rounds + (rounds if n == 0 else 0)
        assert await counts(db, "sms", sender) == (handled, 1)
        async with db.sessions() as session:
            participant = await session.scalar(
                select(Participant)
                .join(Contact, Contact.participant_id == Participant.id)
                .where(Contact.address == sender)
            )
        # every message moved the conversation on once, one after the other
        assert participant.state["data"]["_prompts"] == handled
        sent = await replies(db, "sms", sender)  # one queue per person, in order
        assert len(sent) == 1 + 2 * (handled - 1)
    async with db.sessions() as session:
        assert (await audit.verify(session)).ok


async def test_an_erased_address_that_had_opted_out_stays_opted_out_in_a_batch(db, relay, batcher):
    address = "+447700900601"
    async with db.sessions.begin() as session:  # as erasing an opted-out person leaves it
        session.add(OptOutMark(digest=opt_out_digest(relay.invite_key, "sms", address)))
    results = await asyncio.gather(
        sms(batcher, address, "Hello", "SMo1"),
        sms(batcher, address, "HELP", "SMo2"),
        sms(batcher, "+447700900602", "Hello", "SMo3"),
    )
    assert [r.duplicate for r in results] == [False] * 3
    assert await replies(db, "sms", address) == []  # told nothing
    async with db.sessions() as session:
        participant = await session.scalar(
            select(Participant)
            .join(Contact, Contact.participant_id == Participant.id)
            .where(Contact.address == address)
        )
    assert participant.opted_out
    assert len(await replies(db, "sms", "+447700900602")) == 1
