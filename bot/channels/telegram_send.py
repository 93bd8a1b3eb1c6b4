"""Outbound Telegram messages: the transport the dispatcher sends with, and buttons."""

from __future__ import annotations

import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.request import BaseRequest

from bot.channels.telegram_client import CHANNEL, close_bot, make_bot, retry_seconds
from bot.channels.telegram_format import markdown_to_html
from bot.channels.transport import Outgoing, PermanentFailure, RetryLater, Sent
from bot.settings import Settings

log = logging.getLogger(__name__)

MAX_CALLBACK_BYTES = 64  # Telegram's limit on callback_data


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
