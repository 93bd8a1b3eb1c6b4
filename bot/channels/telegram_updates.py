"""Inbound Telegram updates, from the webhook or from polling: checked, then handled
(messages and button presses become turns; a block or unblock marks the contact).
Message text and chat ids are personal data: they never reach a log line."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot, Message, Update
from telegram.error import (
    TelegramError,
)

from bot.channels.telegram_client import CHANNEL
from bot.relay import Relay
from bot.services import batch
from store import audit
from store.models import Contact, ProcessedUpdate, utcnow

log = logging.getLogger(__name__)


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
        _check(
            message.caption is None or isinstance(message.caption, str),
            "message.caption must be a string",
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


# What a message may carry instead of text, by the name of its field: the first one present
# names the kind (a voice note first: it is what people who find writing hard send).
ATTACHMENTS = (
    "voice",
    "video_note",
    "audio",
    "photo",
    "video",
    "animation",
    "document",
    "sticker",
    "location",
    "venue",
    "contact",
    "poll",
    "dice",
    "story",
    "paid_media",
)


def attachment_of(message: Message) -> str | None:
    """The kind of attachment a message carries, if any (its file is never fetched)."""
    for name in ATTACHMENTS:
        if getattr(message, name, None):
            return name
    return None


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
        received = await batch.receive(
            relay,
            channel=CHANNEL,
            address=str(message.chat.id),
            # A photo's or a document's caption is the person's words.
            text=message.text or message.caption or "",
            provider_id=provider_id,
            language_hint=user.language_code if user else None,
            media=attachment_of(message),
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
    received = await batch.receive(
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
