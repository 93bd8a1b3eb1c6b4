"""Long polling, and the start-up calls that set or remove the webhook."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

from telegram import Bot
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from bot.channels.telegram_client import ALLOWED_UPDATES, WEBHOOK_PATH, retry_seconds
from bot.channels.telegram_updates import BadUpdate, process_update
from bot.relay import Relay
from bot.settings import Settings

log = logging.getLogger(__name__)

SECRET_FORMAT = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what setWebhook accepts
POLL_TIMEOUT = 25  # seconds Telegram holds a getUpdates call open when nothing happens
POLL_PAUSE = 0.25  # pause after an empty answer (servers that ignore the long-poll timeout)
MAX_UPDATE_FAILURES = 5  # an update that keeps failing is skipped after this many tries


async def fetch_updates(bot: Bot, offset: int | None) -> list[dict[str, Any]]:
    """getUpdates as raw JSON, so one malformed update cannot block the ones after it
    (Bot.get_updates parses the whole batch at once and logs it raw when that fails)."""
    data: dict[str, Any] = {"timeout": POLL_TIMEOUT, "allowed_updates": ALLOWED_UPDATES}
    if offset is not None:
        data["offset"] = offset
    result = await bot._post("getUpdates", data, read_timeout=POLL_TIMEOUT + 10)
    return result if isinstance(result, list) else []


async def poll(bot: Bot, relay: Relay, pause: float = POLL_PAUSE) -> None:
    """Fetch updates until cancelled, handling each with the webhook's code."""
    offset: int | None = None
    failures = 0
    backoff = 1.0
    await _until_done(lambda: bot.delete_webhook(), "deleteWebhook")  # polling needs it gone
    log.info("telegram: long polling started")
    while True:
        try:
            updates = await fetch_updates(bot, offset)
        except RetryAfter as exc:
            await asyncio.sleep(retry_seconds(exc))
            continue
        except TimedOut:
            continue
        except (NetworkError, Conflict, InvalidToken, TelegramError) as exc:
            log.warning(
                "telegram: getUpdates failed (%s); retrying in %.0f s", type(exc).__name__, backoff
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 60.0)
            continue
        backoff = 1.0
        if not updates:
            await asyncio.sleep(pause)
        for raw in updates:
            update_id = raw.get("update_id") if isinstance(raw, dict) else None
            try:
                outcome = await process_update(raw, bot=bot, relay=relay)
                log.debug("telegram update %s: %s", update_id, outcome)
            except BadUpdate as exc:
                log.warning("telegram update %s skipped: %s", update_id, exc)
            except Exception as exc:  # only the type: database errors quote their parameters
                failures += 1
                if failures < MAX_UPDATE_FAILURES:
                    log.error(
                        "telegram update %s failed (%s); will retry", update_id, type(exc).__name__
                    )
                    await asyncio.sleep(min(failures, 5))
                    break  # fetch again from the same offset: Telegram re-sends it
                log.error(
                    "telegram update %s failed %d times (%s); skipped",
                    update_id,
                    failures,
                    type(exc).__name__,
                )
            failures = 0
            if isinstance(update_id, int):
                offset = update_id + 1


async def register_webhook(bot: Bot, settings: Settings) -> None:
    secret = settings.telegram_webhook_secret or ""
    if not SECRET_FORMAT.fullmatch(secret):
        log.error(
            "telegram: TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, "
            "0-9, _ and -; the webhook was not registered"
        )
        return
    url = f"{settings.public_url.rstrip('/')}{WEBHOOK_PATH}"
    if await _until_done(
        lambda: bot.set_webhook(url=url, secret_token=secret, allowed_updates=ALLOWED_UPDATES),
        "setWebhook",
    ):
        log.info("telegram: webhook registered")


async def _until_done(call: Callable[[], Any], name: str) -> bool:
    """Retry a start-up call with growing pauses: Telegram may be briefly unreachable.
    Gives up (False) when Telegram refuses the call itself: retrying cannot help."""
    backoff = 1.0
    while True:
        try:
            await call()
            return True
        except RetryAfter as exc:
            await asyncio.sleep(retry_seconds(exc))
        except (BadRequest, InvalidToken, Forbidden) as exc:
            log.error("telegram: %s refused: %s", name, exc.message)
            return False
        except TelegramError as exc:
            log.warning(
                "telegram: %s failed (%s); retrying in %.0f s", name, type(exc).__name__, backoff
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 300.0)


def webhook_mode(settings: Settings) -> bool:
    return bool(settings.public_url and settings.telegram_webhook_secret)
