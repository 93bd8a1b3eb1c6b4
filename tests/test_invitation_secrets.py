"""Invitation codes are never kept in plain text: the database holds a nonce and a hash, the
code is made again from the server's secret as the message leaves, and it still opens the
invitation from Telegram."""

from __future__ import annotations

import importlib.util
import re
import stat
from datetime import UTC, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from pydantic import ValidationError
from sqlalchemy import insert, select

from bot.bootstrap import create_app
from bot.channels.simulator import SimulatorTransport
from bot.channels.sms import SmsTransport
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.ratelimit import DeliveryLimits
from bot.services import invite_codes, recruitment
from bot.services.turns import receive
from bot.settings import Settings
from flows import segments
from store.models import AuditEvent, Contact, InboundMessage, OutboxMessage, Participant, utcnow
from store.recruitment import Invitation, hash_code
from tests.twilio_peer import twilio_settings

pytest_plugins = ["tests.twilio_peer"]  # fixtures: recording_prism

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "citizens-jury"
PHONE = "+447700900301"
PHONE_FR = "+447700900302"
BOT = "RiversideJuryBot"
LINK = re.compile(rf"https://t\.me/{BOT}\?start=([A-Za-z0-9_-]{{1,64}})")
TOKENS = re.compile(r"[A-Za-z0-9_-]{8,64}")
SECRET = "a-server-secret-of-at-least-32-characters"


def daytime():
    """The last noon in the example's zone: invitations written then go at once, whatever
    the hour the tests run at (at night they would wait for the end of quiet hours)."""
    here = utcnow().astimezone(ZoneInfo("Europe/London"))
    noon = here.replace(hour=12, minute=0, second=0, microsecond=0)
    return (noon if noon <= here else noon - timedelta(days=1)).astimezone(UTC)


@pytest.fixture
async def invited(db, settings, assembly, tmp_path):
    """Two people invited by SMS (en, fr), one by letter; the letter links by handle."""
    pool = tmp_path / "pool.csv"
    pool.write_text(
        "phone,telegram,language,household\n"
        f"{PHONE},,en,H1\n{PHONE_FR},,fr,H2\n,ana_riverside,en,H3\n"
    )
    parsed = recruitment.parse_pool(pool, assembly)
    await recruitment.import_pool(db.sessions, assembly, parsed.rows)
    letters = tmp_path / "letters.csv"
    await recruitment.send_invitations(
        db.sessions, settings, assembly, BOT, letters_path=letters, now=daytime()
    )
    return letters


async def stored_hashes(db) -> set[str]:
    async with db.sessions() as session:
        return set((await session.execute(select(Invitation.code_hash))).scalars())


async def codes_readable_in_database(db) -> set[str]:
    """Every word of every text the database keeps that is a live invitation code."""
    hashes = await stored_hashes(db)
    async with db.sessions() as session:
        texts = list((await session.execute(select(OutboxMessage.text))).scalars())
        texts += list((await session.execute(select(InboundMessage.text))).scalars())
        texts += [str(d) for d in (await session.execute(select(AuditEvent.data))).scalars()]
        texts += [str(s) for s in (await session.execute(select(Participant.state))).scalars()]
    return {word for text in texts for word in TOKENS.findall(text) if hash_code(word) in hashes}


async def deliver(db, relay) -> None:
    transports = {channel: SimulatorTransport(channel) for channel in ("sms", "telegram")}
    await Dispatcher(
        db.sessions,
        transports,
        Settings(_env_file=None),
        limits=DeliveryLimits.off(),
        invite_key=relay.invite_key,
    ).drain()


async def test_no_code_in_the_database_yet_the_sms_link_binds_a_telegram_chat(
    db, relay, invited, aiohttp_client
):
    assert len(await stored_hashes(db)) == 3
    assert await codes_readable_in_database(db) == set()
    await deliver(db, relay)
    assert await codes_readable_in_database(db) == set()

    # What the person reads (the simulator shows what left the service) has a real code.
    client = await aiohttp_client(create_app(relay=relay, migrate=False, dispatch=False))
    shown = await client.get("/simulator/api/messages", params={"channel": "sms", "address": PHONE})
    [message] = (await shown.json())["messages"]
    code = LINK.search(message["text"]).group(1)
    assert len(code) == 32 and hash_code(code) in await stored_hashes(db)

    # Opening the link: Telegram sends '/start <code>' from the person's chat.
    answer = await client.post(
        "/simulator/api/messages",
        json={"channel": "telegram", "address": "5550301", "text": f"/start {code}"},
    )
    assert answer.status == 202
    async with db.sessions() as session:
        contact = await session.scalar(select(Contact).where(Contact.address == "5550301"))
        invitation = await session.scalar(
            select(Invitation).where(Invitation.code_hash == hash_code(code))
        )
    assert invitation.bound_contact_id == contact.id
    await deliver(db, relay)
    chat = await client.get(
        "/simulator/api/messages", params={"channel": "telegram", "address": "5550301"}
    )
    assert "You are invited to take part" in (await chat.json())["messages"][0]["text"]
    # Neither the outbox nor the stored '/start' message gives the code away.
    assert await codes_readable_in_database(db) == set()


async def test_a_refused_link_leaves_no_usable_code_in_the_stored_message(db, relay, invited):
    assert stat.S_IMODE(invited.stat().st_mode) == 0o600  # the letters' links: organiser only
    letter_code = LINK.search(invited.read_text()).group(1)
    await receive(
        relay,
        channel="telegram",
        address="5550302",
        text=f"/start {letter_code}",
        provider_id="tg-1",
    )
    async with db.sessions() as session:
        outbox = list(
            (
                await session.execute(select(OutboxMessage).where(OutboxMessage.address == PHONE))
            ).scalars()
        )
    sms_code = invite_codes.reveal(outbox[0].text, outbox[0].kind, relay.invite_key)
    sms_code = LINK.search(sms_code).group(1)
    # This chat already speaks for Ana: the SMS person's code is refused, and stays unused.
    replies = await receive(
        relay, channel="telegram", address="5550302", text=f"/start {sms_code}", provider_id="tg-2"
    )
    assert replies.queued
    async with db.sessions() as session:
        invitation = await session.scalar(
            select(Invitation).where(Invitation.code_hash == hash_code(sms_code))
        )
    assert invitation.bound_contact_id is None
    assert await codes_readable_in_database(db) == set()


async def test_the_real_sms_carries_the_code_and_counts_its_segments(
    db, assembly, recording_prism, tmp_path
):
    settings = twilio_settings(
        db.url, TWILIO_API_BASE_URL=recording_prism.url, CONCORDER_SECRET_KEY=SECRET
    )
    pool = tmp_path / "pool.csv"
    pool.write_text(f"phone,telegram,language,household\n{PHONE_FR},,fr,H1\n")
    await recruitment.import_pool(
        db.sessions, assembly, recruitment.parse_pool(pool, assembly).rows
    )
    async with db.sessions() as session:
        plan = await recruitment.plan_invitations(session, settings, assembly, BOT)
    await recruitment.send_invitations(db.sessions, settings, assembly, BOT, now=daytime())
    async with db.sessions() as session:
        rows = list((await session.execute(select(OutboxMessage))).scalars())
    assert await codes_readable_in_database(db) == set()

    transport = SmsTransport(settings)
    await Dispatcher(db.sessions, {"sms": transport}, settings, limits=DeliveryLimits.off()).drain()
    await transport.close()
    bodies = [r.form["Body"][0] for r in recording_prism.requests]
    assert len(bodies) == len(rows)
    [code] = [found.group(1) for body in bodies if (found := LINK.search(body))]
    assert await stored_hashes(db) == {hash_code(code)}
    # The stored counts (and the dry run's bill) are those of the text Twilio received.
    assert [r.segments for r in rows] == [segments.measure(b).segments for b in bodies]
    assert plan.sms_segments == sum(r.segments for r in rows)


def test_the_generated_key_is_private_and_kept(tmp_path, monkeypatch):
    url = f"sqlite+aiosqlite:///{tmp_path}/data/concorder.db"
    key = invite_codes.server_key(Settings(CONCORDER_DATABASE_URL=url, _env_file=None))
    path = tmp_path / "data" / invite_codes.KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) >= 32 and key.decode() in path.read_text()
    # A restart reads the same key back: links already sent still open.
    again = invite_codes.server_key(Settings(CONCORDER_DATABASE_URL=url, _env_file=None))
    assert again == key
    # PostgreSQL has no file of its own: the key is kept in the working directory.
    monkeypatch.chdir(tmp_path)
    invite_codes.server_key(
        Settings(CONCORDER_DATABASE_URL="postgresql+asyncpg://h/db", _env_file=None)
    )
    assert stat.S_IMODE((tmp_path / invite_codes.KEY_FILE).stat().st_mode) == 0o600


def test_instances_sharing_the_secret_make_the_same_codes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one = invite_codes.server_key(
        Settings(
            CONCORDER_SECRET_KEY=SECRET,
            _env_file=None,
            CONCORDER_DATABASE_URL="postgresql+asyncpg://a/x",
        )
    )
    two = invite_codes.server_key(
        Settings(
            CONCORDER_SECRET_KEY=SECRET,
            _env_file=None,
            CONCORDER_DATABASE_URL="postgresql+asyncpg://b/x",
        )
    )
    nonce = invite_codes.new_nonce()
    assert invite_codes.code_for(nonce, one) == invite_codes.code_for(nonce, two)
    assert invite_codes.code_for(nonce, one) != invite_codes.code_for(nonce, b"x" * 64)
    assert not (tmp_path / invite_codes.KEY_FILE).exists()  # no file when the secret is set
    with pytest.raises(ValidationError, match="at least 32 characters") as refused:
        Settings(CONCORDER_SECRET_KEY="short-9f8e7d", _env_file=None)
    assert "9f8e7d" not in str(refused.value)  # a refused secret is not repeated


def test_only_invitations_have_their_markers_filled_in():
    marker = invite_codes.marker(invite_codes.new_nonce())
    text = f"https://t.me/{BOT}?start={marker} Reply STOP"
    assert invite_codes.reveal(text, "broadcast", key=b"k" * 32) == text
    revealed = invite_codes.reveal(text, "invitation", key=b"k" * 32)
    assert marker not in revealed and len(revealed) == len(text)


def _migration():
    path = (
        Path(__file__).resolve().parent.parent
        / "store"
        / "migrations"
        / "versions"
        / "0009_invitation_secrets.py"
    )
    spec = importlib.util.spec_from_file_location("migration_0009", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_upgrade_scrubs_codes_already_sent_and_keeps_those_still_to_send(db):
    old_code, waiting_code = "A" * 32, "B" * 32
    async with db.sessions.begin() as session:
        person = Participant(language="en", state={})
        session.add(person)
        await session.flush()
        contact = Contact(participant_id=person.id, channel="sms", address=PHONE)
        session.add(contact)
        await session.flush()
        for seq, (code, status) in enumerate(
            [(old_code, "delivered"), (waiting_code, "queued")], start=1
        ):
            await session.execute(
                insert(OutboxMessage).values(
                    participant_id=person.id,
                    contact_id=contact.id,
                    seq=seq,
                    channel="sms",
                    address=PHONE,
                    text=f"Join: https://t.me/{BOT}?start={code} Reply STOP",
                    kind="invitation",
                    status=status,
                    segments=1,
                )
            )
        session.add(
            InboundMessage(channel="telegram", provider_id="tg-9", text=f"/start {old_code}")
        )
    migration = _migration()

    def upgrade(connection):
        with Operations.context(MigrationContext.configure(connection)):
            migration.upgrade()

    async with db.engine.begin() as conn:
        await conn.run_sync(upgrade)
    async with db.sessions() as session:
        texts = dict(
            (await session.execute(select(OutboxMessage.status, OutboxMessage.text))).all()
        )
        inbound = await session.scalar(select(InboundMessage.text))
    assert old_code not in texts["delivered"] and "?start=" + "x" * 32 in texts["delivered"]
    assert waiting_code in texts["queued"]  # still to be sent: its link must open
    assert old_code not in inbound and inbound.startswith("/start")
