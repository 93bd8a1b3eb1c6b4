"""The built-in simulator: its transport, its JSON API and the page, on a real database."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from bot.bootstrap import create_app
from bot.channels.simulator import SimulatorTransport
from bot.channels.transport import Outgoing, Sent, Transport, build_transports
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.ratelimit import DeliveryLimits
from bot.settings import Settings
from store.models import Contact, OutboxMessage, utcnow

PHONE = "+447700900123"


async def deliver_queued(sessions) -> int:
    """Run the outbox dispatcher over the simulated channels until nothing is due, as
    `concorder serve` does in the background. Returns how many rows it handled."""
    transports = {channel: SimulatorTransport(channel) for channel in ("sms", "telegram")}
    dispatcher = Dispatcher(
        sessions, transports, Settings(_env_file=None), limits=DeliveryLimits.off()
    )
    return await dispatcher.drain()


@pytest.fixture
async def client(aiohttp_client, settings):
    return await aiohttp_client(create_app(settings, migrate=False, dispatch=False))


async def say(client, **body):
    response = await client.post("/simulator/api/messages", json=body)
    assert response.status == 202, await response.text()
    return await response.json()


async def replies(client, channel, address, after=0):
    response = await client.get(
        "/simulator/api/messages",
        params={"channel": channel, "address": address, "after": str(after)},
    )
    assert response.status == 200, await response.text()
    return await response.json()


async def test_simulator_transport_delivers_at_once():
    transport: Transport = SimulatorTransport("sms")
    assert transport.channel == "sms"
    sent = await transport.send(Outgoing(id=42, channel="sms", address=PHONE, text="hi"))
    assert sent == Sent(provider_id="sim-42", delivered=True)
    await transport.close()


def test_unconfigured_channels_are_simulated():
    settings = Settings(_env_file=None)
    transports = build_transports(settings)
    assert set(transports) == {"sms", "telegram"}
    assert all(isinstance(t, SimulatorTransport) for t in transports.values())
    assert transports["telegram"].channel == "telegram"


async def test_sms_conversation_through_the_api(client, db):
    sent = await say(client, channel="sms", address="07700 900123", text="hello")
    assert sent["address"] == PHONE  # a national number is normalised (default region GB)
    assert sent["participant_id"].startswith("P")

    before = await replies(client, "sms", PHONE)
    assert before["messages"] == [] and before["pending"] == 1  # queued, not yet sent

    assert await deliver_queued(db.sessions) == 1
    menu = (await replies(client, "sms", PHONE))["messages"]
    assert len(menu) == 1
    assert menu[0]["text"].startswith("Hello, this is Concorder Relay.")
    assert menu[0]["text"].endswith("1 About\n2 Language\nReply 1 or 2.")
    assert menu[0]["choices"] == []  # SMS carries its choices in the text
    assert menu[0]["status"] == "delivered" and menu[0]["time"]
    assert menu[0]["segments"] == 2 and menu[0]["encoding"] == "GSM-7"

    await say(client, channel="sms", address=PHONE, text="2")
    await deliver_queued(db.sessions)
    everything = (await replies(client, "sms", PHONE))["messages"]
    assert [m["seq"] for m in everything] == [1, 2]  # oldest first
    newer = (await replies(client, "sms", PHONE, after=menu[0]["seq"]))["messages"]
    assert len(newer) == 1 and newer[0]["text"].startswith("Which language would you like?")
    assert "3 Français" in newer[0]["text"]


async def test_telegram_buttons_can_be_pressed(client, db):
    await say(client, channel="telegram", address="100001", text="/start", language="fr-FR")
    await deliver_queued(db.sessions)
    menu = (await replies(client, "telegram", "100001"))["messages"][0]
    assert menu["text"].startswith("Bonjour")  # the language hint of a new contact
    assert [c["label"] for c in menu["choices"]] == ["À propos", "Langue"]
    assert menu["segments"] is None

    language = next(c for c in menu["choices"] if c["label"] == "Langue")
    await say(client, channel="telegram", address="100001", button=language["data"])
    await deliver_queued(db.sessions)
    question = (await replies(client, "telegram", "100001", after=menu["seq"]))["messages"][0]
    assert question["text"] == "Dans quelle langue souhaitez-vous échanger ?"
    assert [c["label"] for c in question["choices"]] == ["English", "Español", "Français"]


async def test_each_simulated_address_sees_only_its_own_messages(client, db):
    await say(client, channel="sms", address=PHONE, text="hi")
    await say(client, channel="sms", address="+447700900456", text="hi")
    await say(client, channel="telegram", address="447700900123", text="hi")
    await deliver_queued(db.sessions)
    for channel, address in [
        ("sms", PHONE),
        ("sms", "+447700900456"),
        ("telegram", "447700900123"),
    ]:
        assert len((await replies(client, channel, address))["messages"]) == 1
    assert (await replies(client, "sms", "+447700900789"))["messages"] == []


async def test_stop_gets_one_confirmation_then_silence(client, db):
    for text in ("hello", "STOP", "hello?", "2"):
        await say(client, channel="sms", address=PHONE, text=text)
        await deliver_queued(db.sessions)
    texts = [m["text"] for m in (await replies(client, "sms", PHONE))["messages"]]
    assert len(texts) == 2
    assert texts[1].startswith("You have been unsubscribed")


async def test_replies_still_queued_at_a_stop_are_never_shown(client, db):
    await say(client, channel="sms", address=PHONE, text="hello")
    await say(client, channel="sms", address=PHONE, text="STOP")  # before the menu went out
    await deliver_queued(db.sessions)
    listing = await replies(client, "sms", PHONE)
    assert [m["text"][:27] for m in listing["messages"]] == ["You have been unsubscribed "]
    assert listing["pending"] == 0


BAD_REQUESTS = (
    ({"address": PHONE, "text": "hi"}, 400, "'channel' is required"),
    ({"channel": "whatsapp", "address": PHONE, "text": "hi"}, 400, "unknown channel"),
    ({"channel": "sms", "text": "hi"}, 400, "'address' is required"),
    ({"channel": "sms", "address": "12", "text": "hi"}, 400, "bad address"),
    ({"channel": "sms", "address": "+44 7700 900123 999", "text": "x"}, 400, "bad address"),
    (
        {"channel": "telegram", "address": "@someone", "text": "hi"},
        400,
        "a Telegram chat id is a number",
    ),
    ({"channel": "sms", "address": PHONE}, 400, "'text' is required"),
    ({"channel": "sms", "address": PHONE, "text": "   "}, 400, "'text' is required"),
    ({"channel": "sms", "address": PHONE, "text": 12}, 400, "'text' must be a string"),
    ({"channel": "sms", "address": PHONE, "text": "x" * 2001}, 413, "at most 2,000"),
    ({"channel": "sms", "address": PHONE, "button": "1:about"}, 400, "telegram only"),
    ({"channel": "telegram", "address": "1", "button": "x" * 65}, 400, "callback data"),
    ({"channel": "sms", "address": PHONE, "text": "hi", "language": 3}, 400, "'language' must be"),
)


async def test_bad_requests_are_refused_clearly(client, db):
    for body, status, says in BAD_REQUESTS:
        response = await client.post("/simulator/api/messages", json=body)
        assert response.status == status, body
        assert says in (await response.json())["error"], body
    async with db.sessions() as session:
        assert (await session.execute(select(OutboxMessage))).first() is None


async def test_exactly_2000_characters_are_accepted(client, db):
    await say(client, channel="sms", address=PHONE, text="é" * 2000)


async def test_a_body_that_is_not_a_json_object_is_refused(client):
    for raw in [b"", b"not json", b"[1, 2]", b'"text"', b"\xff\xfe"]:
        response = await client.post(
            "/simulator/api/messages", data=raw, headers={"Content-Type": "application/json"}
        )
        assert response.status == 400, raw
        assert "JSON" in (await response.json())["error"], raw


async def test_listing_checks_its_query(client):
    response = await client.get("/simulator/api/messages", params={"channel": "sms"})
    assert response.status == 400
    assert "'address' is required" in (await response.json())["error"]
    for after in ("-1", "x", "9" * 5000, "１"):
        response = await client.get(
            "/simulator/api/messages", params={"channel": "sms", "address": PHONE, "after": after}
        )
        assert response.status == 400
        assert "'after' must be" in (await response.json())["error"]


async def test_beside_a_real_channel_simulated_people_get_addresses_of_their_own(
    aiohttp_client, db
):
    settings = Settings(
        CONCORDER_DATABASE_URL=db.url,
        TELEGRAM_BOT_TOKEN="123:abc",
        CONCORDER_SIMULATOR="1",
        _env_file=None,
    )
    client = await aiohttp_client(create_app(settings, migrate=False, dispatch=False))
    config = await (await client.get("/simulator/api/config")).json()
    assert config["channels"] == ["sms", "telegram"] and config["kept_apart"] is True
    sent = await say(client, channel="telegram", address="1", text="hi")
    assert sent["address"] == "1"  # the page keeps showing what was typed
    await say(client, channel="sms", address=PHONE, text="hi")
    async with db.sessions() as session:
        stored = set((await session.execute(select(Contact.channel, Contact.address))).all())
    assert stored == {("telegram", "sim:1"), ("sms", f"sim:{PHONE}")}
    await deliver_queued(db.sessions)
    assert len((await replies(client, "telegram", "1"))["messages"]) == 1


async def test_page_and_its_assets_are_served(client):
    page = await client.get("/simulator")
    assert page.status == 200 and page.content_type == "text/html"
    html = await page.text()
    assert '<meta name="viewport"' in html and 'aria-live="polite"' in html
    for asset in ("/simulator/static/simulator.js", "/simulator/static/simulator.css"):
        assert asset in html
        assert (await client.get(asset)).status == 200
    config = await (await client.get("/simulator/api/config")).json()
    assert config["channels"] == ["sms", "telegram"]
    assert [lang["code"] for lang in config["languages"]][:1] == ["en"]
    assert {"code": "fr", "name": "Français"} in config["languages"]


@pytest.fixture
async def running_service(aiohttp_server, db):
    """The whole service on a free loopback port, its dispatcher delivering on the simulated
    channels (without the real channels' rate limits, to keep the tests quick)."""
    settings = Settings(
        CONCORDER_DATABASE_URL=db.url,
        CONCORDER_SMS_RATE=0,
        CONCORDER_TELEGRAM_RATE=0,
        CONCORDER_TELEGRAM_CHAT_RATE=0,
        _env_file=None,
    )
    server = await aiohttp_server(create_app(settings, migrate=False, dispatch=True))
    return f"http://127.0.0.1:{server.port}"


def run_cli(*args: str, input: str) -> Result:
    from bot.bootstrap import build_cli

    return CliRunner().invoke(build_cli(), ["simulate", *args], input=input)


async def test_terminal_chat_on_sms(running_service):
    result = await asyncio.to_thread(
        run_cli, "--url", running_service, "--address", "07700 900123", input="hello\n2\n3\n"
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "relay> Hello, this is Concorder Relay." in out
    assert "Reply 1 or 2." in out and "(2 segments, GSM-7)" in out
    assert "Which language would you like?" in out
    assert "Désormais, je vous écrirai en français." in out
    assert out.index("Hello, this is") < out.index("Which language") < out.index("Désormais")


async def test_terminal_chat_presses_telegram_buttons_by_number(running_service):
    result = await asyncio.to_thread(
        run_cli,
        "--url",
        running_service,
        "--channel",
        "telegram",
        "--address",
        "100001",
        "--language",
        "es",
        input="hola\n2\n2\nSTOP\nhola\n",
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "[1] Acerca de  [2] Idioma" in out
    assert "[1] English  [2] Español  [3] Français" in out
    assert "A partir de ahora le escribiré en español." in out
    after_stop = out.split("Responda START para volver a suscribirse.")[1]
    assert "relay>" not in after_stop and "(no reply)" in after_stop  # opted out: silence


async def test_terminal_chat_history_and_refusals(running_service):
    await asyncio.to_thread(run_cli, "--url", running_service, input="hello\n")
    again = await asyncio.to_thread(run_cli, "--url", running_service, input="x" * 2001 + "\n")
    assert again.exit_code == 0
    assert "relay> Hello, this is Concorder Relay." in again.output  # recent history first
    assert "Not sent: the text is 2,001 characters long" in again.output
    bad = await asyncio.to_thread(run_cli, "--url", running_service, "--address", "12", input="")
    assert bad.exit_code == 1 and "bad address" in bad.output


def test_terminal_chat_says_when_the_service_is_not_running():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free, and nothing listens once closed
    result = run_cli("--url", f"http://127.0.0.1:{port}", input="hello\n")
    assert result.exit_code == 1
    assert "No Concorder Relay service answers" in result.output
    assert "concorder serve" in result.output


async def test_a_message_scheduled_for_later_is_not_on_its_way(client, db):
    await say(client, channel="sms", address=PHONE, text="hello")
    assert (await replies(client, "sms", PHONE))["pending"] == 1
    async with db.sessions.begin() as session:
        row = (await session.execute(select(OutboxMessage))).scalar_one()
        row.next_attempt_at = row.not_before = utcnow() + timedelta(hours=9)  # quiet hours
    listing = await replies(client, "sms", PHONE)
    assert listing == {"channel": "sms", "address": PHONE, "messages": [], "pending": 0}


async def test_a_public_service_has_no_simulator_unless_asked(db, aiohttp_client):
    from bot.bootstrap import create_app
    from bot.settings import Settings

    public = Settings(
        CONCORDER_DATABASE_URL=db.url, CONCORDER_PUBLIC_URL="https://relay.example", _env_file=None
    )
    client = await aiohttp_client(create_app(public, dispatch=False))
    assert (await client.get("/simulator")).status == 404
    assert (
        await client.post(
            "/simulator/api/messages",
            json={"channel": "sms", "address": "+447700900123", "text": "YES"},
        )
    ).status == 404

    asked = Settings(
        CONCORDER_DATABASE_URL=db.url,
        CONCORDER_PUBLIC_URL="https://relay.example",
        CONCORDER_SIMULATOR="1",
        _env_file=None,
    )
    client = await aiohttp_client(create_app(asked, dispatch=False))
    assert (await client.get("/simulator")).status == 200
