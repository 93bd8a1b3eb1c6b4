"""SMS over Twilio: the inbound and status webhooks, and the transport that sends.

Replies never go back as TwiML: every message goes through the outbox, so ordering,
opt-outs, retries and rate limits apply to SMS like to every other channel.
Nothing here logs a phone number or message text.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
from datetime import datetime

import aiohttp
from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from bot.addresses import BadAddress, inbound_sender
from bot.channels.transport import Outgoing, RetryLater, Sent
from bot.channels.twilio_errors import OPTED_OUT, UNDELIVERABLE, classify, describe
from bot.metrics import MESSAGES_IN, MESSAGES_OUT, WEBHOOKS_REJECTED
from bot.relay import Relay
from bot.services import batch
from bot.settings import Settings
from bot.web.app import RELAY, SESSIONS, SETTINGS
from flows.keywords import CARRIER_OPT_IN_WORDS  # Twilio lifts its STOP block on these
from flows.text import fold
from store import audit
from store.models import Contact, InboundMessage, OutboxMessage, OutboxStatus, utcnow

log = logging.getLogger(__name__)

INBOUND_PATH = "/webhooks/twilio/sms"
STATUS_PATH = "/webhooks/twilio/status"
FORM_TYPE = "application/x-www-form-urlencoded"
SID_FORMAT = re.compile(r"[A-Za-z0-9]{2,64}")  # Twilio's are 34: two letters, 32 hex digits
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


# Outbox statuses in the order a message passes through them; the last rank is final.
RANK = {
    OutboxStatus.QUEUED: 0,
    OutboxStatus.SENDING: 1,
    OutboxStatus.SENT: 2,
    OutboxStatus.DELIVERED: 3,
    OutboxStatus.FAILED: 3,
    OutboxStatus.UNDELIVERABLE: 3,
    OutboxStatus.CANCELLED: 3,
}
FINAL = 3
# A status callback for a sid not stored yet is tried again after each of these pauses
# (seconds, about 3 in all; Twilio waits 15 s for an answer).
EARLY_STATUS_PAUSES = (0.05, 0.1, 0.2, 0.4, 0.8, 1.5)


class Unknown(enum.Enum):
    SID = "no message of ours has this sid"


UNKNOWN = Unknown.SID
# Twilio's MessageStatus -> the outbox status it means. Twilio's own in-flight statuses
# (accepted, queued, sending) say less than the "sent" the row already has: ignored.
FROM_TWILIO = {
    "sent": OutboxStatus.SENT,
    "delivered": OutboxStatus.DELIVERED,
    "undelivered": OutboxStatus.UNDELIVERABLE,
    "failed": OutboxStatus.FAILED,
}


# ---- webhooks -------------------------------------------------------------------------


def signed_url(request: web.Request, settings: Settings) -> str:
    """The URL Twilio signed. Behind a proxy the request's scheme and host are not it."""
    if settings.public_url:
        return settings.public_url.rstrip("/") + request.raw_path
    return str(request.url)


async def verified_form(request: web.Request) -> MultiDictProxy[str] | None:
    """The posted form when X-Twilio-Signature proves Twilio sent it, else None."""
    settings = request.app[SETTINGS]
    if request.content_type != FORM_TYPE:  # a multipart upload would give files, not text
        WEBHOOKS_REJECTED.labels("twilio").inc()
        raise web.HTTPBadRequest(text=f"Twilio webhooks are {FORM_TYPE}\n")
    try:
        form = await request.post()
    except (UnicodeDecodeError, LookupError):  # not UTF-8, or a charset Python lacks
        log.warning("refused a Twilio webhook on %s: the form is not UTF-8", request.path)
        WEBHOOKS_REJECTED.labels("twilio").inc()
        raise web.HTTPBadRequest(text="the form must be UTF-8 URL-encoded\n") from None
    signature = request.headers.get("X-Twilio-Signature")
    token = settings.twilio_auth_token
    if token and signature:
        if RequestValidator(token).validate(signed_url(request, settings), form, signature):
            return form  # type: ignore[return-value]
    reason = "no auth token configured" if not token else "missing or bad signature"
    log.warning("refused a Twilio webhook on %s: %s", request.path, reason)
    WEBHOOKS_REJECTED.labels("twilio").inc()
    return None


def forbidden() -> web.Response:
    return web.Response(status=403, text="invalid Twilio signature\n")


def bad_request(reason: str) -> web.Response:
    return web.Response(status=400, text=reason + "\n")


def twiml() -> web.Response:
    return web.Response(text=EMPTY_TWIML, content_type="text/xml")


async def inbound_sms(request: web.Request) -> web.Response:
    form = await verified_form(request)
    if form is None:
        return forbidden()
    settings = request.app[SETTINGS]
    sid = form.get("MessageSid") or form.get("SmsSid")
    if not sid:
        return bad_request("MessageSid is missing")
    if not SID_FORMAT.fullmatch(sid):
        return bad_request("MessageSid is not a Twilio message sid")
    try:
        # Twilio has vouched for the sender: any number, short code or sender name is kept.
        address = inbound_sender(form.get("From", ""), settings.default_region)
    except BadAddress as exc:
        MESSAGES_IN.labels("sms", "bad_address").inc()
        return bad_request(f"From: {exc}")
    body = form.get("Body", "")
    sessions = request.app[SESSIONS]
    if fold(body) in CARRIER_OPT_IN_WORDS:
        await lift_carrier_opt_out(sessions, address, sid)
    result = await batch.receive(
        request.app[RELAY],
        channel="sms",
        address=address,
        text=body,
        provider_id=sid,
        media=mms_kind(form),
    )
    if result.duplicate:
        log.info("sms %s received again: acknowledged, not processed", sid)
    return twiml()


# An MMS's first attachment, by the start of its content type; anything else is a file.
MMS_KINDS = (("audio/", "voice"), ("image/", "photo"), ("video/", "video"))


def mms_kind(form: MultiDictProxy[str]) -> str | None:
    """The kind of an MMS's attachment, None for a plain SMS. The picture is never fetched
    nor read: an MMS with words is handled as its words, one without as words missing."""
    count = (form.get("NumMedia") or "0").strip()
    if not (count.isascii() and count.isdigit()) or int(count) == 0:
        return None
    content_type = (form.get("MediaContentType0") or "").strip().lower()
    for prefix, kind in MMS_KINDS:
        if content_type.startswith(prefix):
            return kind
    return "document"


async def lift_carrier_opt_out(sessions, address: str, sid: str) -> None:
    """The number texted START: Twilio will deliver to it again, so may we."""
    now = utcnow()
    async with sessions.begin() as session:
        seen = (
            await session.execute(
                select(InboundMessage.id).where(
                    InboundMessage.channel == "sms", InboundMessage.provider_id == sid
                )
            )
        ).first()
        if seen is not None:
            return  # a retried old START must not undo a STOP that came after it
        contact = (
            await session.execute(
                select(Contact)
                .where(Contact.channel == "sms", Contact.address == address)
                .with_for_update()
            )
        ).scalar_one_or_none()
        if contact is None or contact.opted_out_at is None:
            return
        contact.opted_out_at = None
        await audit.append(
            session,
            "contact.opted_in",
            {"channel": "sms", "contact_id": contact.id},
            participant_id=contact.participant_id,
            at=now,
        )


async def status_callback(request: web.Request) -> web.Response:
    form = await verified_form(request)
    if form is None:
        return forbidden()
    sid = form.get("MessageSid") or form.get("SmsSid")
    if not sid:
        return bad_request("MessageSid is missing")
    if not SID_FORMAT.fullmatch(sid):
        return bad_request("MessageSid is not a Twilio message sid")
    status = (form.get("MessageStatus") or form.get("SmsStatus") or "").strip().lower()
    raw_code = (form.get("ErrorCode") or "").strip()
    if raw_code and not (raw_code.isascii() and raw_code.isdigit()):
        return bad_request("ErrorCode is not a number")
    code = int(raw_code) if raw_code else None
    changed = await apply_status(request.app[SESSIONS], sid, status, code)
    for pause in EARLY_STATUS_PAUSES:
        if changed is not UNKNOWN:
            break
        # Twilio can call back before the dispatcher has committed the send that tells us
        # this sid (it records sends in batches): wait for it a little, then give up.
        await asyncio.sleep(pause)
        changed = await apply_status(request.app[SESSIONS], sid, status, code)
    if changed is UNKNOWN:
        log.info("status %s for an unknown sms ignored", status[:20])
    elif changed:
        MESSAGES_OUT.labels("sms", changed).inc()
    return web.Response(status=200)


async def apply_status(
    sessions, sid: str, twilio_status: str, code: int | None
) -> str | None | Unknown:
    """Move the outbox row forward (never back); returns the new status if it changed,
    UNKNOWN when no message of ours has this sid (yet)."""
    now = utcnow()
    async with sessions.begin() as session:
        row = (
            (
                await session.execute(
                    select(OutboxMessage)
                    .where(OutboxMessage.channel == "sms", OutboxMessage.provider_id == sid)
                    .with_for_update()
                )
            )
            .scalars()
            .first()
        )
        if row is None:
            return UNKNOWN
        if code == OPTED_OUT:
            await mark_opted_out(session, row.contact_id, now)
        target = FROM_TWILIO.get(twilio_status)
        if code == OPTED_OUT or code in UNDELIVERABLE:
            target = OutboxStatus.FAILED
        current = RANK.get(row.status, FINAL)
        if target is None or current >= FINAL or RANK[target] <= current:
            return None
        row.status = target
        if target == OutboxStatus.SENT:
            row.sent_at = row.sent_at or now
        elif target == OutboxStatus.DELIVERED:
            row.delivered_at = now
        else:
            row.error = describe(None, code) if code else f"twilio reported {twilio_status}"
        return target


async def mark_opted_out(session: AsyncSession, contact_id: int, now: datetime) -> None:
    contact = (
        await session.execute(select(Contact).where(Contact.id == contact_id).with_for_update())
    ).scalar_one()
    if contact.opted_out_at is not None:
        return
    contact.opted_out_at = now
    await audit.append(
        session,
        "contact.opted_out",
        {"channel": "sms", "contact_id": contact.id, "code": OPTED_OUT},
        participant_id=contact.participant_id,
        at=now,
    )


def install(app: web.Application, relay: Relay, dispatch: bool) -> None:
    app.router.add_post(INBOUND_PATH, inbound_sms)
    app.router.add_post(STATUS_PATH, status_callback)


# ---- transport ------------------------------------------------------------------------


class SmsTransport:
    """Sends one outbox row as one SMS through Twilio's REST API."""

    channel = "sms"

    def __init__(self, settings: Settings, *, timeout: float = 30.0):
        self.settings = settings
        self.timeout = timeout  # the async twilio client has no timeout of its own
        self._http: AsyncTwilioHttpClient | None = None
        self._client: Client | None = None

    def _twilio(self) -> Client:
        # Built on first use: aiohttp sessions belong to the running event loop.
        if self._client is None:
            self._http = AsyncTwilioHttpClient()
            self._client = Client(
                self.settings.twilio_account_sid,
                self.settings.twilio_auth_token,
                http_client=self._http,
            )
            if self.settings.twilio_api_base_url:
                self._client.api.base_url = self.settings.twilio_api_base_url.rstrip("/")
        return self._client

    def _fields(self, message: Outgoing) -> dict[str, str]:
        settings = self.settings
        fields = {"to": message.address, "body": message.text}
        if settings.twilio_from_number:
            fields["from_"] = settings.twilio_from_number
        else:
            fields["messaging_service_sid"] = settings.twilio_messaging_service_sid or ""
        if settings.public_url:
            fields["status_callback"] = settings.public_url.rstrip("/") + STATUS_PATH
        return fields

    async def send(self, message: Outgoing) -> Sent:
        client = self._twilio()
        try:
            async with asyncio.timeout(self.timeout):
                created = await client.messages.create_async(**self._fields(message))
        except (TwilioRestException, TwilioServiceException) as exc:
            failure = classify(exc.status, exc.code)
            log.warning("sms outbox row %s not sent: %s", message.id, failure.reason)
            raise failure from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("sms outbox row %s not sent: %s", message.id, type(exc).__name__)
            raise RetryLater(f"cannot reach Twilio ({type(exc).__name__})") from None
        return Sent(provider_id=created.sid)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        self._http = self._client = None
