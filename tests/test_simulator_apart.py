"""The simulator beside a real channel: off unless asked, and when asked its people live
apart from real contacts and organisers, so it is no back door into a real deployment."""

from __future__ import annotations

import asyncio
import logging
import sys
import time

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

import bot.channels.telegram_client
from bot.bootstrap import build, create_app
from bot.channels.transport import Outgoing, RetryLater, Sent, build_transports
from bot.cli import common as cli
from bot.services.organisers import add_organiser
from bot.settings import Settings
from store.models import AuditEvent, Contact, OutboxMessage
from store.organisers import BroadcastPreview
from tests.telegram_peer import (  # noqa: F401  (fixture)
    EmulatorRequest,
    free_port,
    telegram_emulator_fixture,
)
from tests.test_broadcast import add_member
from tests.twilio_peer import ACCOUNT_SID, twilio_settings

ORGANISER_PHONE = "+447911000111"
ORGANISER_CHAT = 6680100
MEMBER_CHAT = 6680001


def simulator_on(**env: str) -> bool:
    return Settings(_env_file=None, **env).simulator_enabled


def test_the_simulator_is_on_by_default_only_with_no_real_channel():
    assert simulator_on()
    assert not simulator_on(TELEGRAM_BOT_TOKEN="123:abc")  # long polling, no public URL
    assert not simulator_on(TWILIO_ACCOUNT_SID=ACCOUNT_SID)
    assert not simulator_on(CONCORDER_PUBLIC_URL="https://relay.example")
    assert simulator_on(TELEGRAM_BOT_TOKEN="123:abc", CONCORDER_SIMULATOR="1")
    assert not simulator_on(CONCORDER_SIMULATOR="0")


async def test_a_polling_bot_has_no_simulator_to_post_through(aiohttp_client, db):
    settings = Settings(CONCORDER_DATABASE_URL=db.url, TELEGRAM_BOT_TOKEN="123:abc", _env_file=None)
    client = await aiohttp_client(create_app(settings, migrate=False, dispatch=False))
    assert (await client.get("/simulator")).status == 404
    response = await client.post(
        "/simulator/api/messages",
        json={"channel": "sms", "address": ORGANISER_PHONE, "text": "BROADCAST hi"},
    )
    assert response.status == 404


async def test_real_transports_hand_simulated_addresses_to_the_simulator(db):
    # Nothing listens on these ports: a send that reached the real client would fail.
    settings = twilio_settings(
        db.url,
        TWILIO_API_BASE_URL=f"http://127.0.0.1:{free_port()}",
        TELEGRAM_BOT_TOKEN="123:abc",
        TELEGRAM_API_BASE_URL=f"http://127.0.0.1:{free_port()}",
    )
    transports = build_transports(settings)
    try:
        for channel, address in (("sms", "sim:+447700900123"), ("telegram", "sim:100001")):
            sent = await transports[channel].send(
                Outgoing(id=7, channel=channel, address=address, text="hi")
            )
            assert sent == Sent(provider_id="sim-7", delivered=True)
    finally:
        for transport in transports.values():
            await transport.close()


async def test_a_channel_with_no_account_beside_a_real_one_never_claims_a_delivery(db):
    """Telegram is real, SMS has no account: a real person's SMS waits to be retried (and
    can be sent once the account is set), it is not marked delivered by the simulator."""
    settings = Settings(CONCORDER_DATABASE_URL=db.url, TELEGRAM_BOT_TOKEN="123:abc", _env_file=None)
    transports = build_transports(settings)
    try:
        with pytest.raises(RetryLater, match="sms is not configured"):
            await transports["sms"].send(
                Outgoing(id=8, channel="sms", address="+447700900123", text="hi")
            )
        sent = await transports["sms"].send(
            Outgoing(id=9, channel="sms", address="sim:+447700900123", text="hi")
        )
        assert sent.delivered
    finally:
        for transport in transports.values():
            await transport.close()


def test_serve_warns_when_the_simulator_runs_beside_a_real_channel(monkeypatch):
    from aiohttp import web

    from bot.bootstrap import build_cli

    # Built first: the commands' modules bind `err` as they are imported, and must keep
    # the real one after this test.
    app = build_cli()
    monkeypatch.setattr(web, "run_app", lambda *args, **kwargs: None)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    monkeypatch.setenv("CONCORDER_SIMULATOR", "1")
    monkeypatch.setattr(cli, "err", cli.Console(stderr=False, width=200))
    # `serve` sets up logging on the runner's stderr, closed once it returns: put the
    # root logger back afterwards, or later commands' warnings fail to write.
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))
    monkeypatch.setattr(root, "level", root.level)
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 0, result.output
    assert "WARNING: the simulator is ON beside a real channel" in result.output
    assert "/simulator" in result.output

    monkeypatch.delenv("TELEGRAM_BOT_TOKEN")
    monkeypatch.delenv("CONCORDER_SIMULATOR")
    quiet = CliRunner().invoke(app, ["serve"])
    assert "WARNING" not in quiet.output and "/simulator" in quiet.output


async def _simulated(client, channel: str, address: str, text: str) -> list[str]:
    """Post as a simulated person and wait for the replies the dispatcher delivers."""
    response = await client.post(
        "/simulator/api/messages", json={"channel": channel, "address": address, "text": text}
    )
    assert response.status == 202, await response.text()
    queued = (await response.json())["queued"]
    deadline = time.monotonic() + 10
    while True:
        listing = await (
            await client.get(
                "/simulator/api/messages", params={"channel": channel, "address": address}
            )
        ).json()
        if len(listing["messages"]) >= queued and not listing["pending"]:
            return [m["text"] for m in listing["messages"]]
        assert time.monotonic() < deadline, listing
        await asyncio.sleep(0.05)


async def test_simulated_people_never_speak_as_or_reach_real_ones(
    db, aiohttp_client, telegram_emulator, monkeypatch
):
    """Telegram is real (the emulator) and the simulator was asked for: playing the
    organiser's phone or chat gives no organiser rights, playing a member's chat id neither
    touches their participant nor sends anything to their real chat."""
    monkeypatch.setattr(
        bot.channels.telegram_client,
        "request_factory",
        lambda read_timeout=10.0: EmulatorRequest(read_timeout=read_timeout),
    )
    async with db.sessions.begin() as session:
        member = await add_member(session, address=str(MEMBER_CHAT))
        await add_member(session, channel="sms")
        await add_organiser(session, telegram_id=str(ORGANISER_CHAT), phone=ORGANISER_PHONE)
    token = telegram_emulator.new_token()
    settings = Settings(
        CONCORDER_DATABASE_URL=db.url,
        TELEGRAM_BOT_TOKEN=token,
        TELEGRAM_API_BASE_URL=telegram_emulator.url,
        CONCORDER_SIMULATOR="1",
        CONCORDER_TELEGRAM_RATE=0,
        CONCORDER_TELEGRAM_CHAT_RATE=0,
        CONCORDER_SMS_RATE=0,
        _env_file=None,
    )
    client = await aiohttp_client(create_app(settings, migrate=False))
    config = await (await client.get("/simulator/api/config")).json()
    assert config["channels"] == ["sms", "telegram"] and config["kept_apart"] is True

    as_phone = await _simulated(client, "sms", ORGANISER_PHONE, "BROADCAST Free pizza")
    as_chat = await _simulated(client, "telegram", str(ORGANISER_CHAT), "/broadcast Free pizza")
    for replies in (as_phone, as_chat):
        assert replies and not any("Preview" in text for text in replies)
    as_member = await _simulated(client, "telegram", str(MEMBER_CHAT), "hello")
    assert as_member  # the simulated person got their answer on the page

    async with db.sessions() as session:
        previews = await session.scalar(select(func.count()).select_from(BroadcastPreview))
        refused = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.kind == "organiser.command_refused")
        )
        member_contacts = (
            (
                await session.execute(
                    select(Contact.address).where(Contact.participant_id == member.id)
                )
            )
            .scalars()
            .all()
        )
        real_rows = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                OutboxMessage.address.in_([str(MEMBER_CHAT), str(ORGANISER_CHAT), ORGANISER_PHONE])
            )
        )
    assert previews == 0 and refused == 2
    assert member_contacts == [str(MEMBER_CHAT)]  # nobody was merged into the member
    assert real_rows == 0
    for chat in (MEMBER_CHAT, ORGANISER_CHAT):  # the real chats received nothing
        assert not await telegram_emulator._post("/getUpdates", {"token": token, "chatId": chat})


async def test_a_simulated_chat_cannot_take_an_invitation_link(db):
    """Even with a real invitation code, a simulated chat is not bound to the invited
    person: it stays a simulated person of its own."""
    from bot.addresses import simulated_address
    from bot.services import turns as service
    from store.recruitment import Invitation, hash_code

    code = "AbCdEf0123456789AbCdEf0123456789"
    async with db.sessions.begin() as session:
        invited = await add_member(session, channel="sms")
        session.add(
            Invitation(
                participant_id=invited.id, channel="sms", language="en", code_hash=hash_code(code)
            )
        )
    settings = Settings(
        CONCORDER_DATABASE_URL=db.url,
        TELEGRAM_BOT_TOKEN="123:abc",
        CONCORDER_SIMULATOR="1",
        _env_file=None,
    )
    received = await service.receive(
        build(settings, sessions=db.sessions),
        channel="telegram",
        address=simulated_address("100001"),
        text=f"/start {code}",
        provider_id="sim-link",
    )
    assert received.participant_id != invited.id
    async with db.sessions() as session:
        invitation = (await session.execute(select(Invitation))).scalar_one()
        contacts = (
            (
                await session.execute(
                    select(Contact.channel).where(Contact.participant_id == invited.id)
                )
            )
            .scalars()
            .all()
        )
    assert invitation.bound_contact_id is None and contacts == ["sms"]
