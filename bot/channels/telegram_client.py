"""The Telegram Bot API client the channel's parts share: how a Bot is built and closed,
and what every part needs to know of Telegram's answers."""

from __future__ import annotations

import logging
import warnings
from datetime import timedelta

from telegram import Bot
from telegram.error import (
    RetryAfter,
)
from telegram.request import BaseRequest, HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from bot.settings import Settings

# python-telegram-bot logs every call's parameters (message text, chat ids) at DEBUG, and
# httpx logs every URL (which holds the bot token) at INFO. Neither may reach our logs.
logging.getLogger("telegram").setLevel(logging.INFO)
logging.getLogger("httpx").setLevel(logging.WARNING)

CHANNEL = "telegram"
WEBHOOK_PATH = "/webhooks/telegram"
# The update kinds we act on; asking for exactly these keeps the rest off the wire.
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]


def request_factory(read_timeout: float = 10.0) -> BaseRequest:
    """The HTTP client python-telegram-bot uses (tests swap in one for their emulator)."""
    return HTTPXRequest(connection_pool_size=32, read_timeout=read_timeout)


def make_bot(settings: Settings, request: BaseRequest | None = None) -> Bot:
    """A Bot on one HTTP client (getUpdates passes its own long read timeout per call)."""
    if not settings.telegram_bot_token:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    base = settings.telegram_api_base_url.rstrip("/")
    request = request or request_factory()
    return Bot(
        settings.telegram_bot_token,
        base_url=f"{base}/bot",
        base_file_url=f"{base}/file/bot",
        request=request,
        get_updates_request=request,
    )


async def close_bot(bot: Bot) -> None:
    # Bot.shutdown() only closes clients after Bot.initialize(), which calls getMe: we never
    # need that call, so the HTTP client is closed here directly.
    await bot.shutdown()
    await bot.request.shutdown()


def retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # retry_after turns into a timedelta in PTB 23
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        after = exc.retry_after
    return after.total_seconds() if isinstance(after, timedelta) else float(after)
