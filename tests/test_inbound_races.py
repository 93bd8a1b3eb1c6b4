"""Messages that arrive at the same moment are all kept: two first messages from one new
number, on one instance or on two instances sharing a database, and a Telegram invitation
link opened while the same chat writes something else."""

from __future__ import annotations

import asyncio
import csv

import pytest
from sqlalchemy import delete, event, func, select, text
from sqlalchemy.exc import DBAPIError

from bot.bootstrap import build, create_app
from bot.services import recruitment
from bot.services.conflicts import retry_conflicts
from bot.services.turns import receive
from store import audit
from store.db import make_engine, sessionmaker
from store.models import (
    AuditEvent,
    AuditHead,
    Contact,
    InboundMessage,
    OutboxMessage,
    Participant,
)
from store.recruitment import Invitation
from tests.twilio_peer import sign, twilio_settings

ROUNDS = 12  # enough to hit the window between "no contact yet" and the insert


@pytest.fixture
async def second_instance(db, relay):
    """Another engine on the same database: a second instance of the service, built as the
    first one is."""
    engine = make_engine(db.url)
    yield build(
        relay.settings,
        assembly=relay.assembly,
        calendar=relay.calendar,
        sessions=sessionmaker(engine),
    )
    await engine.dispose()


async def kept(db, channel: str, address: str) -> tuple[int, int, int]:
    """(inbound messages, contacts, participants) stored for one address."""
    async with db.sessions() as session:
        contacts = (
            (
                await session.execute(
                    select(Contact).where(Contact.channel == channel, Contact.address == address)
                )
            )
            .scalars()
            .all()
        )
        ids = [c.id for c in contacts]
        inbound = await session.scalar(
            select(func.count())
            .select_from(InboundMessage)
            .where(InboundMessage.contact_id.in_(ids))
        )
        people = await session.scalar(
            select(func.count())
            .select_from(Participant)
            .where(Participant.id.in_([c.participant_id for c in contacts]))
        )
    return inbound, len(contacts), people


async def test_two_first_messages_from_one_new_number_on_two_instances_are_both_kept(
    db, relay, second_instance
):
    for round_ in range(ROUNDS):
        address = f"+4479111234{round_:02d}"
        results = await asyncio.gather(
            receive(
                relay, channel="sms", address=address, text="hello", provider_id=f"SMa{round_}"
            ),
            receive(
                second_instance,
                channel="sms",
                address=address,
                text="hi",
                provider_id=f"SMb{round_}",
            ),
            return_exceptions=True,
        )
        assert [type(r).__name__ for r in results] == ["Received", "Received"], results
        assert await kept(db, "sms", address) == (2, 1, 1)
    async with db.sessions() as session:
        assert (await audit.verify(session)).ok


async def test_messages_at_once_from_someone_known_are_all_answered_in_order(
    db, relay, second_instance
):
    address = "+447911123499"
    await receive(relay, channel="sms", address=address, text="hello", provider_id="SM-first")
    for round_ in range(ROUNDS):
        results = await asyncio.gather(
            *(
                receive(
                    instance,
                    channel="sms",
                    address=address,
                    text=text,
                    provider_id=f"SM{round_}-{n}",
                )
                for n, (instance, text) in enumerate(
                    [(relay, "1"), (second_instance, "2"), (relay, "help")]
                )
            ),
            return_exceptions=True,
        )
        assert [type(r).__name__ for r in results] == ["Received"] * 3, results
    async with db.sessions() as session:
        seqs = (
            (
                await session.execute(
                    select(OutboxMessage.seq)
                    .where(OutboxMessage.address == address)
                    .order_by(OutboxMessage.seq)
                )
            )
            .scalars()
            .all()
        )
    assert seqs == list(range(1, len(seqs) + 1))  # one queue, no gap, no clash
    assert await kept(db, "sms", address) == (1 + 3 * ROUNDS, 1, 1)


async def test_simultaneous_signed_webhooks_from_a_new_number_all_answer_200(db, aiohttp_client):
    first = await aiohttp_client(create_app(twilio_settings(db.url), dispatch=False))
    second = await aiohttp_client(create_app(twilio_settings(db.url), dispatch=False))

    async def text_in(client, sid: str, sender: str, body: str) -> int:
        form = {
            "MessageSid": sid,
            "AccountSid": "AC" + "0" * 32,
            "From": sender,
            "To": "+15005550006",
            "Body": body,
        }
        url = str(client.make_url("/webhooks/twilio/sms"))
        return (
            await client.post("/webhooks/twilio/sms", data=form, headers=sign(url, form))
        ).status

    for round_ in range(ROUNDS):
        sender = f"+4479111235{round_:02d}"
        statuses = await asyncio.gather(
            text_in(first, f"SM{round_}a", sender, "Hello"),
            text_in(second, f"SM{round_}b", sender, "Are you there?"),
            text_in(first, f"SM{round_}c", sender, "1"),
        )
        assert statuses == [200, 200, 200]
        assert await kept(db, "sms", sender) == (3, 1, 1)


@pytest.fixture
async def letter_links(db, settings, assembly, tmp_path):
    """Invitations by letter (Telegram links), one per handle."""
    pool = tmp_path / "pool.csv"
    pool.write_text(
        "phone,telegram,language,household\n"
        + "".join(f",reader_{n},en,H{n}\n" for n in range(ROUNDS))
    )
    parsed = recruitment.parse_pool(pool, assembly)
    await recruitment.import_pool(db.sessions, assembly, parsed.rows)
    letters = tmp_path / "letters.csv"
    await recruitment.send_invitations(
        db.sessions, settings, assembly, "RiversideJuryBot", letters_path=letters
    )
    with letters.open() as fp:
        return [row["link"].split("start=")[1] for row in csv.DictReader(fp)]


async def test_a_link_opened_while_the_chat_writes_again_binds_and_keeps_both(
    db, relay, second_instance, letter_links
):
    for round_, code in enumerate(letter_links):
        chat = str(880000 + round_)
        results = await asyncio.gather(
            receive(
                relay,
                channel="telegram",
                address=chat,
                text=f"/start {code}",
                provider_id=f"tg:{round_}01",
            ),
            receive(
                second_instance,
                channel="telegram",
                address=chat,
                text="hello?",
                provider_id=f"tg:{round_}02",
            ),
            return_exceptions=True,
        )
        assert [type(r).__name__ for r in results] == ["Received", "Received"], results
        inbound, contacts, _ = await kept(db, "telegram", chat)
        assert (inbound, contacts) == (2, 1)
        async with db.sessions() as session:
            contact = await session.scalar(select(Contact).where(Contact.address == chat))
            invitation = await session.scalar(
                select(Invitation).where(Invitation.bound_contact_id == contact.id)
            )
        # The chat now speaks for the invited person, whichever message came first.
        assert invitation is not None
        assert contact.participant_id == invitation.participant_id


async def test_bad_links_opened_twice_at_once_from_a_new_chat_are_both_answered(
    db, relay, second_instance
):
    for round_ in range(ROUNDS):
        chat = str(990000 + round_)
        results = await asyncio.gather(
            receive(
                relay,
                channel="telegram",
                address=chat,
                text="/start not-a-code",
                provider_id=f"tg:{round_}1",
            ),
            receive(
                second_instance,
                channel="telegram",
                address=chat,
                text="hello",
                provider_id=f"tg:{round_}2",
            ),
            return_exceptions=True,
        )
        assert [type(r).__name__ for r in results] == ["Received", "Received"], results
        assert await kept(db, "telegram", chat) == (2, 1, 1)


async def test_a_transaction_that_lost_a_race_runs_again_and_a_real_error_is_not_hidden(db):
    attempts = []

    async def first_loses_then_wins():
        attempts.append(len(attempts))
        async with db.sessions.begin() as session:
            session.add(Participant(id="PRACE0000001", language="en", state={}))
            if len(attempts) == 1:  # the other instance's row, already there
                session.add(Participant(id="PRACE0000001", language="en", state={}))
            await session.flush()
        return "done"

    assert await retry_conflicts(first_loses_then_wins) == "done"
    assert len(attempts) == 2

    async def always_wrong():
        attempts.append(len(attempts))
        async with db.sessions.begin() as session:
            await session.execute(select(func.no_such_function()))

    with pytest.raises(DBAPIError):
        await retry_conflicts(always_wrong)
    assert len(attempts) == 3  # not a race: tried once, raised


async def test_the_first_messages_a_new_deployment_receives_at_once_are_all_kept(
    db, relay, second_instance
):
    for round_ in range(ROUNDS):
        async with db.sessions.begin() as session:  # a new deployment: no audit chain yet
            await session.execute(delete(AuditEvent))
            await session.execute(delete(AuditHead))
        results = await asyncio.gather(
            receive(
                relay,
                channel="sms",
                address=f"+4479111236{round_:02d}",
                text="hello",
                provider_id=f"SMfresh{round_}a",
            ),
            receive(
                second_instance,
                channel="telegram",
                address=f"77{round_}",
                text="hello",
                provider_id=f"tg:fresh{round_}",
            ),
            return_exceptions=True,
        )
        assert [type(r).__name__ for r in results] == ["Received", "Received"], results
        async with db.sessions() as session:
            assert (await audit.verify(session)).ok


async def test_a_message_that_waited_out_sqlites_busy_timeout_is_kept(sqlite_db):
    """An SQLite writer that waits longer than its busy timeout for another instance's
    transaction gets "database is locked": the message is tried again, not lost."""

    impatient = make_engine(sqlite_db.url)

    @event.listens_for(impatient.sync_engine, "connect")
    def short_wait(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=50")
        cursor.close()

    settings = twilio_settings(sqlite_db.url)
    try:
        async with sqlite_db.engine.connect() as other_instance:
            await other_instance.begin()
            await other_instance.execute(text("UPDATE participants SET language = language"))

            async def release_soon():
                await asyncio.sleep(0.08)  # longer than the busy timeout
                await other_instance.commit()

            received, _ = await asyncio.gather(
                receive(
                    build(settings, sessions=sessionmaker(impatient)),
                    channel="sms",
                    address="+447911123499",
                    text="Hello",
                    provider_id="SMbusy",
                ),
                release_soon(),
            )
    finally:
        await impatient.dispose()
    assert not received.duplicate
    async with sqlite_db.sessions() as session:
        stored = await session.scalar(
            select(func.count())
            .select_from(InboundMessage)
            .where(InboundMessage.provider_id == "SMbusy")
        )
    assert stored == 1
