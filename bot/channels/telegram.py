"""The Telegram channel: the webhook, long polling, and the transport that sends messages.

Inbound updates arrive either at POST /webhooks/telegram (when CONCORDER_PUBLIC_URL and
TELEGRAM_WEBHOOK_SECRET are set) or through a long-polling loop (a token is enough); both
feed `process_update`. Outbound messages go through `TelegramTransport.send`.
Message text and chat ids are personal data: they never reach a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
import warnings
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import BaseRequest, HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from bot.channels.telegram_format import markdown_to_html
from bot.channels.transport import Outgoing, PermanentFailure, RetryLater, Sent
from bot.metrics import WEBHOOKS_REJECTED
from bot.relay import Relay
from bot.services import turns as service
from bot.settings import Settings
from bot.web.app import RELAY, SETTINGS
from store import audit
from store.models import Contact, ProcessedUpdate, utcnow

log = logging.getLogger(__name__)

# python-telegram-bot logs every call's parameters (message text, chat ids) at DEBUG, and
# httpx logs every URL (which holds the bot token) at INFO. Neither may reach our logs.
logging.getLogger("telegram").setLevel(logging.INFO)
logging.getLogger("httpx").setLevel(logging.WARNING)

WEBHOOK_PATH = "/webhooks/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
CHANNEL = "telegram"
SECRET_FORMAT = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what setWebhook accepts
MAX_CALLBACK_BYTES = 64  # Telegram's limit on callback_data
# The update kinds we act on; asking for exactly these keeps the rest off the wire.
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]

POLL_TIMEOUT = 25  # seconds Telegram holds a getUpdates call open when nothing happens
POLL_PAUSE = 0.25  # pause after an empty answer (servers that ignore the long-poll timeout)
MAX_UPDATE_FAILURES = 5  # an update that keeps failing is skipped after this many tries

TELEGRAM_BOT = web.AppKey("telegram_bot", Bot)


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


# --- inbound -------------------------------------------------------------------------------


class BadUpdate(ValueError):
    """A body that is not a Telegram update."""


ID_LIMIT = 2**63  # Telegram's ids all fit a signed 64-bit integer


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) < ID_LIMIT


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise BadUpdate(f"malformed Telegram update: {what}")


def _check_chat(chat: Any) -> None:
    _check(chat is not None and _is_id(chat.id), "chat.id must be an integer")
    _check(isinstance(chat.type, str), "chat.type must be a string")


def _check_user(user: Any) -> None:
    if user is not None:
        _check(_is_id(user.id), "from.id must be an integer")
        _check(
            user.language_code is None or isinstance(user.language_code, str),
            "from.language_code must be a string",
        )


def check_fields(update: Update) -> None:
    """The fields process_update reads, typed as Telegram types them: de_json takes any
    JSON value for any field, and a number where text belongs must not reach the store."""
    if (message := update.message) is not None:
        _check_chat(message.chat)
        _check_user(message.from_user)
        _check(
            message.text is None or isinstance(message.text, str), "message.text must be a string"
        )
    if (query := update.callback_query) is not None:
        _check(isinstance(query.id, str), "callback_query.id must be a string")
        _check(query.from_user is not None, "callback_query.from is required")
        _check_user(query.from_user)
        _check(
            query.data is None or isinstance(query.data, str),
            "callback_query.data must be a string",
        )
        if query.message is not None:
            _check_chat(query.message.chat)
    if (member := update.my_chat_member) is not None:
        _check_chat(member.chat)
        _check(
            isinstance(member.new_chat_member.status, str),
            "my_chat_member.new_chat_member.status must be a string",
        )


def parse_update(data: Any, bot: Bot | None = None) -> Update:
    if not isinstance(data, dict) or not _is_id(data.get("update_id")):
        raise BadUpdate("not a Telegram update: a JSON object with an integer update_id")
    try:
        update = Update.de_json(data, bot)
        if update is not None:
            check_fields(update)
    except BadUpdate:
        raise
    except Exception as exc:  # de_json raises KeyError/TypeError/ValueError on bad shapes
        raise BadUpdate(f"malformed Telegram update ({type(exc).__name__})") from exc
    if update is None:
        raise BadUpdate("empty Telegram update")
    return update


async def process_update(data: Any, *, bot: Bot, relay: Relay) -> str:
    """Handle one update (from the webhook or from polling); returns what was done.

    Raises BadUpdate for a body that is not an update. An update seen before is not
    processed again: receive() dedupes on "tg:<update_id>".
    """
    return await handle_update(parse_update(data, bot), bot=bot, relay=relay)


async def handle_update(update: Update, *, bot: Bot, relay: Relay) -> str:
    """Handle one update already parsed (with `bot`) and checked by `parse_update`."""
    provider_id = f"tg:{update.update_id}"
    if update.message is not None:
        message = update.message
        if message.chat.type != "private":
            return "ignored"  # groups would mix people; the relay talks one to one
        user = message.from_user
        received = await service.receive(
            relay,
            channel=CHANNEL,
            address=str(message.chat.id),
            text=message.text or "",
            provider_id=provider_id,
            language_hint=user.language_code if user else None,
        )
        return "duplicate" if received.duplicate else "message"
    if update.callback_query is not None:
        return await _callback(update, bot, relay, provider_id)
    if update.my_chat_member is not None:
        return await _membership(update, relay.sessions)
    return "ignored"  # edited messages, channel posts and the like


async def _callback(update: Update, bot: Bot, relay: Relay, provider_id: str) -> str:
    query = update.callback_query
    # Answer first and always (duplicates too): the button spins until it is answered.
    try:
        await bot.answer_callback_query(query.id)
    except TelegramError as exc:
        log.warning(
            "telegram update %s: callback not answered (%s)", update.update_id, type(exc).__name__
        )
    chat = query.message.chat if query.message is not None else None
    if chat is not None and chat.type != "private":
        return "ignored"
    address = str(chat.id if chat is not None else query.from_user.id)
    received = await service.receive(
        relay,
        channel=CHANNEL,
        address=address,
        text="",
        button=query.data or "",
        provider_id=provider_id,
        language_hint=query.from_user.language_code,
    )
    return "duplicate" if received.duplicate else "callback"


async def _membership(update: Update, sessions: async_sessionmaker[AsyncSession]) -> str:
    """The person blocked the bot ("kicked") or unblocked it ("member")."""
    member = update.my_chat_member
    if member.chat.type != "private":
        return "ignored"
    status = member.new_chat_member.status
    if status not in ("kicked", "member"):
        return "ignored"
    now = utcnow()
    async with sessions.begin() as session:
        try:
            async with session.begin_nested():
                session.add(ProcessedUpdate(source=CHANNEL, key=str(update.update_id), at=now))
                await session.flush()
        except IntegrityError:
            return "duplicate"
        contact = (
            await session.execute(
                select(Contact).where(
                    Contact.channel == CHANNEL, Contact.address == str(member.chat.id)
                )
            )
        ).scalar_one_or_none()
        if contact is None:
            return "ignored"  # never wrote to us: nothing to mark
        if status == "kicked" and contact.unreachable_at is None:
            contact.unreachable_at = now
            await audit.append(
                session,
                "contact.unreachable",
                {"channel": CHANNEL, "contact_id": contact.id, "reason": "blocked"},
                participant_id=contact.participant_id,
                at=now,
            )
            return "blocked"
        if status == "member" and contact.unreachable_at is not None:
            contact.unreachable_at = None
            await audit.append(
                session,
                "contact.reachable",
                {"channel": CHANNEL, "contact_id": contact.id},
                participant_id=contact.participant_id,
                at=now,
            )
            return "unblocked"
    return "ignored"


async def webhook(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    secret = settings.telegram_webhook_secret
    given = request.headers.get(SECRET_HEADER)
    bot = request.app.get(TELEGRAM_BOT)
    if (
        not secret
        or bot is None
        or given is None
        or not hmac.compare_digest(given.encode(), secret.encode())
    ):
        WEBHOOKS_REJECTED.labels(CHANNEL).inc()
        return web.json_response({"error": "forbidden"}, status=403)
    try:
        update = parse_update(json.loads(await request.read()), bot)
        update_id = update.update_id
    except RecursionError:
        return web.json_response({"error": "body is JSON nested too deeply"}, status=400)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, or a 5,000-digit number
        return web.json_response({"error": f"body is not JSON: {exc}"}, status=400)
    except BadUpdate as exc:
        return web.json_response({"error": str(exc)}, status=400)
    try:
        outcome = await handle_update(update, bot=bot, relay=request.app[RELAY])
    except Exception as exc:  # Telegram retries on 5xx; the error text may quote the message
        log.error("telegram update %s failed (%s)", update_id, type(exc).__name__)
        return web.json_response({"error": "temporarily unavailable"}, status=500)
    log.debug("telegram update %s: %s", update_id, outcome)
    return web.json_response({"ok": True})


# --- long polling and webhook registration -------------------------------------------------


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


def install(app: web.Application, relay: Relay, dispatch: bool) -> None:
    settings = relay.settings
    app.router.add_post(WEBHOOK_PATH, webhook)
    if not settings.telegram_enabled:
        return

    async def lifecycle(app: web.Application):
        bot = make_bot(settings)
        app[TELEGRAM_BOT] = bot
        task = None
        if dispatch:  # dispatch=False: no background work and no calls out at start-up
            if webhook_mode(settings):
                task = asyncio.create_task(register_webhook(bot, settings))
            else:
                task = asyncio.create_task(poll(bot, relay))
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await close_bot(bot)

    app.cleanup_ctx.append(lifecycle)


# --- outbound ------------------------------------------------------------------------------


def retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # retry_after turns into a timedelta in PTB 23
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        after = exc.retry_after
    return after.total_seconds() if isinstance(after, timedelta) else float(after)


def callback_data(data: str) -> str:
    """Callback data cut to Telegram's 64 bytes without splitting a character."""
    raw = data.encode()
    if len(raw) <= MAX_CALLBACK_BYTES:
        return data
    log.warning("telegram: callback data of %d bytes cut to %d", len(raw), MAX_CALLBACK_BYTES)
    return raw[:MAX_CALLBACK_BYTES].decode(errors="ignore")


def keyboard(buttons: list[dict[str, str]] | None) -> InlineKeyboardMarkup | None:
    """One button per row: labels stay readable on narrow phones."""
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(b["label"], callback_data=callback_data(b["data"]))]
            for b in buttons
        ]
    )


class TelegramTransport:
    """Sends outbox messages with python-telegram-bot; maps Telegram errors onto the port."""

    channel = CHANNEL

    def __init__(self, settings: Settings, request: BaseRequest | None = None):
        self.bot = make_bot(settings, request=request)

    async def send(self, message: Outgoing) -> Sent:
        markup = keyboard(message.buttons)
        try:
            try:
                if message.markdown:
                    sent = await self._send(
                        message, markdown_to_html(message.text), ParseMode.HTML, markup
                    )
                else:
                    sent = await self._send(message, message.text, None, markup)
            except BadRequest as exc:
                if not (message.markdown and "parse entities" in exc.message.lower()):
                    raise
                # Our HTML was refused: the words matter more than the formatting.
                log.warning("telegram: outbox %s sent without formatting", message.id)
                sent = await self._send(message, message.text, None, markup)
        except RetryAfter as exc:
            raise RetryLater("telegram flood control", after=retry_seconds(exc)) from exc
        except Forbidden as exc:  # blocked by the user, or the account is gone
            raise PermanentFailure(f"telegram: {exc.message}", unreachable=True) from exc
        except (BadRequest, ChatMigrated) as exc:  # chat not found, text refused
            raise PermanentFailure(f"telegram: {exc.message}") from exc
        except (TimedOut, NetworkError) as exc:
            raise RetryLater(f"telegram network: {type(exc).__name__}") from exc
        except TelegramError as exc:  # a rejected token or a server error: ours to fix
            raise RetryLater(f"telegram: {type(exc).__name__}: {exc.message}") from exc
        return Sent(provider_id=str(sent.message_id))

    async def _send(
        self,
        message: Outgoing,
        text: str,
        parse_mode: str | None,
        markup: InlineKeyboardMarkup | None,
    ):
        return await self.bot.send_message(
            chat_id=message.address,
            text=text,
            parse_mode=parse_mode,
            reply_markup=markup,
        )

    async def close(self) -> None:
        await close_bot(self.bot)
