"""The built-in simulator: a channel that needs no account, and a web page to chat on it.

A channel with no real account configured (settings.simulated_channels) is served by
`SimulatorTransport`: handing a message over is delivering it. The JSON API lets the page
(and `concorder simulate`) play the person: POST what they send, GET what came back.

Beside a real channel (settings.simulator_kept_apart) the people played here live under
addresses of their own ("sim:+447700900123"): they can never speak as, read the messages of,
or merge with a real contact or an organiser, and the real channel's transport hands what is
queued for them back to the simulator (bot.channels.transport.KeepSimulatedApart).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import phonenumbers
from aiohttp import web
from sqlalchemy import and_, func, or_, select

from bot.addresses import CHANNELS, BadAddress, normalise, simulated_address
from bot.channels.transport import Outgoing, Sent
from bot.relay import Relay
from bot.services import invite_codes
from bot.services.unhandled.keep import receive_or_keep
from bot.settings import Settings
from bot.web.app import RELAY, SESSIONS, SETTINGS
from flows.i18n import shipped_languages, translator
from store.models import OutboxMessage, OutboxStatus, utcnow

STATIC = Path(__file__).resolve().parent / "static"
MAX_TEXT = 2000  # what the page lets you type; longer than any real SMS or quick reply
MAX_BUTTON = 64  # callback data limit of Telegram (and of the inbound table's column)
SHOWN_STATUSES = (OutboxStatus.SENT, OutboxStatus.DELIVERED)


class SimulatorTransport:
    """The transport of a simulated channel: a send is an immediate delivery."""

    def __init__(self, channel: str):
        self.channel = channel

    async def send(self, message: Outgoing) -> Sent:
        return Sent(provider_id=f"sim-{message.id}", delivered=True)

    async def close(self) -> None:
        return None


class InputError(Exception):
    """A request the simulator refuses; `status` and the message go back as JSON."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def _error(exc: InputError) -> web.Response:
    return web.json_response({"error": exc.message}, status=exc.status)


def _channel(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InputError(f"'channel' is required: one of {', '.join(CHANNELS)}")
    if value not in CHANNELS:
        raise InputError(f"unknown channel {value[:20]!r}; use one of {', '.join(CHANNELS)}")
    return value


def _address(channel: str, value: Any, settings: Settings) -> str:
    """The address as the person typed it, normalised (what the API shows back)."""
    if not isinstance(value, str) or not value.strip():
        what = "a phone number" if channel == "sms" else "a chat id"
        raise InputError(f"'address' is required: {what}")
    try:
        return normalise(channel, value, settings.default_region)
    except BadAddress as exc:
        fictional = channel == "sms" and _fictional_number(value, settings.default_region)
        if fictional:
            return fictional
        raise InputError(f"bad address: {exc}") from None


def stored_address(address: str, settings: Settings) -> str:
    """Where the simulated person lives: apart from real contacts beside a real channel."""
    return simulated_address(address) if settings.simulator_kept_apart else address


def _fictional_number(value: str, region: str) -> str | None:
    """Numbers reserved for drama (UK 07700 900xxx, US 555-01xx) have the right length but
    are assigned to no one: ideal for a simulator, so they are taken in E.164 form."""
    try:
        parsed = phonenumbers.parse(value.strip(), region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json(loads=json.loads)
    except RecursionError:
        raise InputError("the body is JSON nested too deeply") from None
    except (ValueError, UnicodeDecodeError):  # not JSON, or a number of 5,000 digits
        raise InputError(
            "the body must be JSON, e.g. "
            '{"channel": "sms", "address": "+447700900123", "text": "hello"}'
        ) from None
    if not isinstance(body, dict):
        raise InputError("the body must be a JSON object")
    return body


def parse_message(body: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Check what the simulated person sends; InputError says what is wrong."""
    channel = _channel(body.get("channel"))
    address = _address(channel, body.get("address"), settings)
    text = body.get("text", "")
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise InputError("'text' must be a string")
    if len(text) > MAX_TEXT:
        raise InputError(
            f"the text is {len(text):,} characters long; the simulator takes at most "
            f"{MAX_TEXT:,}. Nothing was sent.",
            status=413,
        )
    button = body.get("button")
    if button is not None:
        if channel != "telegram":
            raise InputError(
                "'button' is for telegram only: SMS has no buttons, send the number as text"
            )
        if not isinstance(button, str) or not button or len(button) > MAX_BUTTON:
            raise InputError(
                f"'button' must be the button's callback data (1 to {MAX_BUTTON} characters)"
            )
    elif not text.strip():
        raise InputError("'text' is required (or 'button' for a Telegram button press)")
    language = body.get("language")
    if language is not None and (not isinstance(language, str) or len(language) > 35):
        raise InputError("'language' must be a language code such as 'en' or 'fr'")
    return {
        "channel": channel,
        "address": address,
        "text": text,
        "button": button,
        "language": language or None,
    }


async def post_message(request: web.Request) -> web.Response:
    settings: Settings = request.app[SETTINGS]
    try:
        message = parse_message(await _json_body(request), settings)
    except InputError as exc:
        return _error(exc)
    # As a webhook's: a turn that fails keeps the message, answered when the fault passes.
    received = await receive_or_keep(
        request.app[RELAY],
        channel=message["channel"],
        address=stored_address(message["address"], settings),
        text=message["text"],
        button=message["button"],
        provider_id=f"sim-{uuid.uuid4().hex}",
        language_hint=message["language"],
    )
    return web.json_response(
        {
            "participant_id": received.participant_id,
            "address": message["address"],
            "queued": received.queued,
            "kept": received.kept,
        },
        status=202,
    )


def message_json(row: OutboxMessage, invite_key: bytes) -> dict[str, Any]:
    at = row.delivered_at or row.sent_at or row.created_at
    return {
        "seq": row.seq,
        # Codes are filled in as they leave.
        "text": invite_codes.reveal(row.text, row.kind, invite_key),
        "choices": [{"label": b["label"], "data": b["data"]} for b in row.buttons or []],
        "status": row.status,
        "time": at.isoformat() if at else None,
        "part": row.part,
        "parts": row.parts,
        "segments": row.segments if row.channel == "sms" else None,
        "encoding": row.encoding if row.channel == "sms" else None,
    }


async def get_messages(request: web.Request) -> web.Response:
    settings: Settings = request.app[SETTINGS]
    query = request.query
    try:
        channel = _channel(query.get("channel"))
        address = _address(channel, query.get("address"), settings)
        after = query.get("after", "0")
        if not (after.isascii() and after.isdigit() and len(after) <= 9):
            raise InputError("'after' must be a message seq number (0 for all)")
    except InputError as exc:
        return _error(exc)
    mine = (
        OutboxMessage.channel == channel,
        OutboxMessage.address == stored_address(address, settings),
    )
    async with request.app[SESSIONS]() as session:
        shown = (
            (
                await session.execute(
                    select(OutboxMessage)
                    .where(
                        *mine,
                        OutboxMessage.status.in_(SHOWN_STATUSES),
                        OutboxMessage.seq > int(after),
                    )
                    .order_by(OutboxMessage.seq)
                )
            )
            .scalars()
            .all()
        )
        # Replies on their way: due now, but the dispatcher has not handed them over yet
        # (a message scheduled for later, after quiet hours say, is not on its way).
        pending = (
            await session.execute(
                select(func.count())
                .select_from(OutboxMessage)
                .where(
                    *mine,
                    or_(
                        OutboxMessage.status == OutboxStatus.SENDING,
                        and_(
                            OutboxMessage.status == OutboxStatus.QUEUED,
                            OutboxMessage.next_attempt_at <= utcnow(),
                        ),
                    ),
                )
            )
        ).scalar_one()
    key = request.app[RELAY].invite_key
    return web.json_response(
        {
            "channel": channel,
            "address": address,
            "messages": [message_json(r, key) for r in shown],
            "pending": pending,
        }
    )


async def get_config(request: web.Request) -> web.Response:
    """What the page offers: every channel, the shipped languages, and whether the people
    played are kept apart from real ones (a real channel is configured)."""
    settings: Settings = request.app[SETTINGS]
    languages = [
        {"code": code, "name": translator(code).language_name(code)} for code in shipped_languages()
    ]
    return web.json_response(
        {
            "channels": sorted(CHANNELS),
            "kept_apart": settings.simulator_kept_apart,
            "languages": languages,
            "default_language": settings.default_language,
            "max_text": MAX_TEXT,
        }
    )


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "simulator.html")


def install(app: web.Application, relay: Relay, dispatch: bool) -> None:
    if not relay.settings.simulator_enabled:
        # A real or public service must not let anyone speak as any phone number.
        return
    app.router.add_get("/simulator", page)
    app.router.add_get("/simulator/", page)
    app.router.add_static("/simulator/static/", STATIC)
    app.router.add_get("/simulator/api/config", get_config)
    app.router.add_post("/simulator/api/messages", post_message)
    app.router.add_get("/simulator/api/messages", get_messages)
