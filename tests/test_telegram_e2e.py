"""The Telegram channel end to end: a person in the emulator talks to the running service.

The app runs in polling mode (a token and no public URL), as a developer would run it;
its outbox dispatcher sends the replies through TelegramTransport.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web
from sqlalchemy import select

import bot.channels.telegram_client
from bot.bootstrap import build, create_app
from bot.settings import Settings
from flows.assembly import Assembly
from store.models import InboundMessage, OutboxMessage
from tests.telegram_peer import (  # noqa: F401  (fixtures)
    EmulatorRequest,
    bot_api_fixture,
    telegram_emulator_fixture,
)

CHAT = 5550101


@pytest.fixture
def emulator_requests(monkeypatch) -> list[EmulatorRequest]:
    """Every Bot client the app builds talks through the emulator shim; kept for checks."""
    made: list[EmulatorRequest] = []

    def factory(read_timeout: float = 10.0) -> EmulatorRequest:
        made.append(EmulatorRequest(read_timeout=read_timeout))
        return made[-1]

    monkeypatch.setattr(bot.channels.telegram_client, "request_factory", factory)
    return made


class Service:
    """The app started as in production, outbox dispatcher included (no HTTP site is
    needed: polling reaches out to the Bot API)."""

    def __init__(
        self, settings: Settings, dispatch: bool = True, *, assembly: Assembly | None = None
    ):
        relay = build(settings, assembly=assembly)
        self.runner = web.AppRunner(create_app(relay=relay, migrate=False, dispatch=dispatch))

    async def __aenter__(self) -> Service:
        await self.runner.setup()
        return self

    async def __aexit__(self, *exc) -> None:
        await asyncio.wait_for(self.runner.cleanup(), timeout=10)


def polling_settings(db, base_url: str, token: str) -> Settings:
    return Settings(
        CONCORDER_DATABASE_URL=db.url,
        TELEGRAM_BOT_TOKEN=token,
        TELEGRAM_API_BASE_URL=base_url,
        _env_file=None,
    )


async def test_a_person_starts_the_bot_presses_a_button_and_gets_the_answer(
    db, telegram_emulator, emulator_requests
):
    token = telegram_emulator.new_token()
    settings = polling_settings(db, telegram_emulator.url, token)

    async with Service(settings):
        await telegram_emulator.user_writes(token, CHAT, "/start")
        (welcome,) = await telegram_emulator.user_reads(token, CHAT)

        assert welcome["text"].startswith("Hello, this is Concorder Relay.")
        rows = welcome["reply_markup"]["inline_keyboard"]
        assert [[button["text"] for button in row] for row in rows] == [["About"], ["Language"]]

        about = rows[0][0]["callback_data"]
        await telegram_emulator.user_presses(token, CHAT, welcome, about)
        help_text, menu = await telegram_emulator.user_reads(token, CHAT, count=2)

    assert "Reply STOP at any time" in help_text["text"]
    assert menu["text"] == welcome["text"]
    assert "answerCallbackQuery" in {call for r in emulator_requests for call in r.calls}
    async with db.sessions() as session:
        sent = (
            await session.execute(
                select(OutboxMessage.status, OutboxMessage.provider_id).order_by(OutboxMessage.id)
            )
        ).all()
    assert sent == [("sent", str(m["message_id"])) for m in (welcome, help_text, menu)]


async def test_polling_stops_on_shutdown_and_not_at_all_without_dispatch(db, bot_api):
    settings = polling_settings(db, bot_api.url, "123:abc")

    async with Service(settings, dispatch=False):
        await asyncio.sleep(0.3)
    assert bot_api.called("getUpdates") == []

    async with Service(settings):
        bot_api.updates.append(
            {
                "update_id": 900,
                "message": {
                    "message_id": 1,
                    "date": int(time.time()),
                    "text": "hello",
                    "chat": {"id": CHAT, "type": "private"},
                    "from": {"id": CHAT, "is_bot": False, "first_name": "Ada"},
                },
            }
        )
        bot_api.updates.append({"update_id": 901, "message": {"broken": True}})
        deadline = time.monotonic() + 10
        while not any(c.get("offset") == "902" for c in bot_api.called("getUpdates")):
            assert time.monotonic() < deadline, "polling did not move past the updates"
            await asyncio.sleep(0.05)
    calls_at_exit = len(bot_api.called("getUpdates"))
    await asyncio.sleep(0.3)

    assert len(bot_api.called("getUpdates")) == calls_at_exit  # stopped with the app
    assert bot_api.called("deleteWebhook")  # polling and a webhook cannot coexist
    offsets = [int(c["offset"]) for c in bot_api.called("getUpdates") if "offset" in c]
    assert offsets and offsets[-1] == 902  # the broken update was skipped, not retried
    async with db.sessions() as session:
        (stored,) = (await session.execute(select(InboundMessage))).scalars().all()
    assert stored.provider_id == "tg:900"


async def test_with_a_public_url_the_webhook_is_registered_with_its_secret(db, bot_api):
    settings = Settings(
        CONCORDER_DATABASE_URL=db.url,
        TELEGRAM_BOT_TOKEN="123:abc",
        TELEGRAM_API_BASE_URL=bot_api.url,
        TELEGRAM_WEBHOOK_SECRET="s3cret",
        CONCORDER_PUBLIC_URL="https://relay.example.org/",
        _env_file=None,
    )
    bot_api.fail("setWebhook", 502, "Bad Gateway")  # Telegram briefly down at start-up

    async with Service(settings):
        deadline = time.monotonic() + 10
        while len(bot_api.called("setWebhook")) < 2:
            assert time.monotonic() < deadline, "setWebhook was not retried"
            await asyncio.sleep(0.05)

    registered = bot_api.called("setWebhook")[-1]
    assert registered["url"] == "https://relay.example.org/webhooks/telegram"
    assert registered["secret_token"] == "s3cret"
    assert bot_api.called("getUpdates") == []


async def test_a_secret_telegram_would_refuse_is_reported_not_registered(db, bot_api, caplog):
    settings = Settings(
        CONCORDER_DATABASE_URL=db.url,
        TELEGRAM_BOT_TOKEN="123:abc",
        TELEGRAM_API_BASE_URL=bot_api.url,
        TELEGRAM_WEBHOOK_SECRET="no spaces!",
        CONCORDER_PUBLIC_URL="https://relay.example.org",
        _env_file=None,
    )

    async with Service(settings):
        await asyncio.sleep(0.2)

    assert bot_api.called("setWebhook") == []
    assert "TELEGRAM_WEBHOOK_SECRET must be" in caplog.text
