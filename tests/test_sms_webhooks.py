"""Twilio's webhooks into the app: inbound SMS and delivery status, signed as Twilio signs."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select, update

from bot.bootstrap import create_app
from bot.channels.sms import SmsTransport
from bot.channels.transport import Outgoing
from bot.metrics import REGISTRY
from store.models import AuditEvent, Contact, InboundMessage, OutboxMessage, utcnow
from tests.twilio_peer import sign, twilio_settings

pytest_plugins = ["tests.twilio_peer"]  # fixtures: prism, recording_prism

SMS = "/webhooks/twilio/sms"
STATUS = "/webhooks/twilio/status"
ALICE = "+447911123456"


@pytest.fixture
async def sms_app(db, aiohttp_client):
    async def make(**extra):
        return await aiohttp_client(create_app(twilio_settings(db.url, **extra), dispatch=False))

    return make


@pytest.fixture
async def client(sms_app):
    return await sms_app()


def inbound(sid: str, body: str, sender: str = ALICE, **extra: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": sender,
        "To": "+15005550006",
        "Body": body,
        "NumMedia": "0",
        **extra,
    }


async def post(
    client,
    path: str,
    form: dict[str, str],
    *,
    signed_url: str | None = None,
    token: str | None = None,
):
    url = signed_url or str(client.make_url(path))
    headers = sign(url, form, token) if token else sign(url, form)
    return await client.post(path, data=form, headers=headers)


async def count(db, model, *where) -> int:
    async with db.sessions() as session:
        return (
            await session.execute(select(func.count()).select_from(model).where(*where))
        ).scalar_one()


async def outbox_for(db, address: str) -> list[OutboxMessage]:
    async with db.sessions() as session:
        return list(
            (
                await session.execute(
                    select(OutboxMessage)
                    .where(OutboxMessage.address == address)
                    .order_by(OutboxMessage.id)
                )
            ).scalars()
        )


async def test_a_signed_message_is_acknowledged_and_answered_through_the_outbox(client, db):
    answer = await post(client, SMS, inbound("SM" + "1" * 32, "Hello"))

    assert answer.status == 200
    assert answer.content_type == "text/xml"
    assert (await answer.text()).endswith("<Response/>")
    replies = await outbox_for(db, ALICE)
    assert replies and {r.status for r in replies} == {"queued"}
    assert {r.channel for r in replies} == {"sms"}
    assert "Concorder Relay" in replies[0].text
    assert await count(db, InboundMessage, InboundMessage.provider_id == "SM" + "1" * 32) == 1


async def test_forged_or_missing_signatures_are_refused_and_nothing_is_stored(client, db):
    form = inbound("SM" + "2" * 32, "Hello")
    forged = await post(client, SMS, form, token="not-the-auth-token")
    unsigned = await client.post(SMS, data=form)
    tampered = await client.post(
        SMS, data={**form, "Body": "STOP"}, headers=sign(str(client.make_url(SMS)), form)
    )

    assert (forged.status, unsigned.status, tampered.status) == (403, 403, 403)
    assert await count(db, InboundMessage) == 0
    assert await count(db, Contact) == 0
    assert await count(db, OutboxMessage) == 0


async def test_without_an_auth_token_every_webhook_is_refused(sms_app, db):
    client = await sms_app(TWILIO_AUTH_TOKEN=None)
    answer = await post(client, SMS, inbound("SM" + "3" * 32, "Hello"))
    status = await post(
        client, STATUS, {"MessageSid": "SM" + "3" * 32, "MessageStatus": "delivered"}
    )
    assert (answer.status, status.status) == (403, 403)
    assert await count(db, InboundMessage) == 0


async def test_a_message_delivered_twice_is_processed_once(client, db):
    form = inbound("SM" + "4" * 32, "Hello")
    first = await post(client, SMS, form)
    replies = len(await outbox_for(db, ALICE))
    again = await post(client, SMS, form)

    assert (first.status, again.status) == (200, 200)
    assert await count(db, InboundMessage) == 1
    assert len(await outbox_for(db, ALICE)) == replies


async def test_behind_a_proxy_the_public_url_is_what_twilio_signed(sms_app, db):
    client = await sms_app(CONCORDER_PUBLIC_URL="https://public.example/")
    path = SMS + "?assembly=north"
    form = inbound("SM" + "5" * 32, "Hello")
    local = await post(client, path, form, signed_url=str(client.make_url(path)))
    public = await post(
        client, path, form, signed_url="https://public.example/webhooks/twilio/sms?assembly=north"
    )

    assert str(client.make_url(path)).startswith("http://127.0.0.1")
    assert (local.status, public.status) == (403, 200)
    assert await count(db, InboundMessage) == 1


async def test_a_sender_that_is_not_a_phone_number_is_refused_with_a_reason(client, db):
    answer = await post(client, SMS, inbound("SM" + "6" * 32, "Hello", sender="+44123"))

    assert answer.status == 400
    assert "From:" in await answer.text()
    assert "+44123" not in await answer.text()
    assert await count(db, InboundMessage) == 0
    assert await count(db, Contact) == 0


@pytest.mark.parametrize("body", ["", "🗳️👍 ¿Qué tal? 你好", "Long story. " * 200])
async def test_empty_long_and_emoji_bodies_and_new_parameters_are_taken(client, db, body):
    form = inbound("SM" + "7" * 32, body, FromCountry="GB", AddOnsFuture="{}")
    answer = await post(client, SMS, form)

    assert answer.status == 200
    async with db.sessions() as session:
        stored = (await session.execute(select(InboundMessage))).scalar_one()
    assert stored.text == body
    assert await outbox_for(db, ALICE)


def picture(sid: str, body: str = "") -> dict[str, str]:
    """An MMS with one photo, as Twilio posts it (the picture stays on Twilio's side)."""
    return inbound(
        sid,
        body,
        NumMedia="1",
        MediaContentType0="image/jpeg",
        MediaUrl0=f"https://api.twilio.com/2010-04-01/Accounts/AC/Messages/{sid}/Media/ME1",
    )


async def test_a_picture_message_without_words_is_answered_and_the_question_asked_again(client, db):
    await post(client, SMS, inbound("SM" + "a" * 32, "Hello"))

    answer = await post(client, SMS, picture("SM" + "b" * 32))

    assert answer.status == 200
    welcome, said, again = [r.text for r in await outbox_for(db, ALICE)]
    assert said == (
        "I can only read written messages: please write your answer, even in a few words."
    )
    assert again == welcome
    async with db.sessions() as session:
        stored = await session.scalar(
            select(InboundMessage).where(InboundMessage.provider_id == "SM" + "b" * 32)
        )
    assert (stored.text, stored.media) == ("", "photo")


async def test_a_picture_message_with_words_is_handled_as_its_words(client, db):
    await post(client, SMS, inbound("SM" + "c" * 32, "Hello"))

    await post(client, SMS, picture("SM" + "d" * 32, "2"))

    *_, question = [r.text for r in await outbox_for(db, ALICE)]
    assert question.startswith("Which language would you like?")


async def test_stop_is_confirmed_once_and_then_nothing_more_is_sent(client, db):
    await post(client, SMS, inbound("SM" + "a" * 32, "Hello"))
    before = len(await outbox_for(db, ALICE))
    await post(client, SMS, inbound("SM" + "b" * 32, "STOP"))
    after_stop = await outbox_for(db, ALICE)
    await post(client, SMS, inbound("SM" + "c" * 32, "Hello?"))
    await post(client, SMS, inbound("SM" + "d" * 32, "1"))

    [confirmation] = after_stop[before:]
    assert confirmation.compliance and "START" in confirmation.text
    assert len(await outbox_for(db, ALICE)) == len(after_stop)


# ---- delivery status callbacks --------------------------------------------------------


async def handed_to_twilio(client, db, sid: str, inbound_sid: str) -> int:
    """A reply the dispatcher has handed to Twilio (it stores Twilio's sid, status sent)."""
    await post(client, SMS, inbound(inbound_sid, "Hello"))
    row = (await outbox_for(db, ALICE))[0]
    async with db.sessions.begin() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row.id)
            .values(status="sent", provider_id=sid)
        )
    return row.id


def status(sid: str, state: str, code: str | None = None) -> dict[str, str]:
    form = {
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": state,
        "SmsStatus": state,
        "To": ALICE,
        "From": "+15005550006",
        "AccountSid": "AC" + "0" * 32,
    }
    if code:
        form["ErrorCode"] = code
    return form


def sms_out(state: str) -> float:
    labels = {"channel": "sms", "status": state}
    return REGISTRY.get_sample_value("concorder_messages_out_total", labels) or 0.0


async def row(db, row_id: int) -> OutboxMessage:
    async with db.sessions() as session:
        return await session.get(OutboxMessage, row_id)


async def test_delivery_is_recorded_once_and_never_undone(client, db):
    sid = "SM" + "e" * 32
    row_id = await handed_to_twilio(client, db, sid, "SM" + "f" * 32)
    delivered_before = sms_out("delivered")

    for state in ("queued", "sent", "delivered", "delivered", "sent", "failed"):
        answer = await post(client, STATUS, status(sid, state))
        assert answer.status == 200

    message = await row(db, row_id)
    assert message.status == "delivered" and message.delivered_at is not None
    assert message.error is None
    assert sms_out("delivered") - delivered_before == 1


async def test_a_status_that_comes_before_the_send_is_recorded_waits_for_it(client, db):
    await post(client, SMS, inbound("SM" + "8" * 32, "Hello"))
    reply = (await outbox_for(db, ALICE))[0]
    sid = "SM" + "7" * 32
    early = asyncio.create_task(post(client, STATUS, status(sid, "delivered")))
    await asyncio.sleep(0.3)
    assert not early.done()  # Twilio was quicker than our commit of the send
    async with db.sessions.begin() as session:  # what the dispatcher records for the send
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == reply.id)
            .values(status="sent", provider_id=sid)
        )
    assert (await early).status == 200
    assert (await row(db, reply.id)).status == "delivered"


async def test_a_status_for_a_message_that_is_not_ours_is_acknowledged_and_changes_nothing(
    client, db, monkeypatch
):
    monkeypatch.setattr("bot.channels.sms.EARLY_STATUS_PAUSES", (0.01, 0.01))
    row_id = await handed_to_twilio(client, db, "SM" + "5" * 32, "SM" + "6" * 32)
    answer = await post(client, STATUS, status("SM" + "4" * 32, "failed", "30003"))
    assert answer.status == 200
    assert (await row(db, row_id)).status == "sent"


async def test_a_forged_status_callback_changes_nothing(client, db):
    sid = "SM" + "9" * 32
    row_id = await handed_to_twilio(client, db, sid, "SM" + "8" * 32)
    forged = await post(client, STATUS, status(sid, "failed", "30003"), token="guess")

    assert forged.status == 403
    assert (await row(db, row_id)).status == "sent"


async def test_twilio_opt_out_marks_the_contact_once(client, db):
    sid = "SM" + "ab" * 16
    row_id = await handed_to_twilio(client, db, sid, "SM" + "cd" * 16)

    for _ in range(2):
        assert (await post(client, STATUS, status(sid, "failed", "21610"))).status == 200

    message = await row(db, row_id)
    assert message.status == "failed" and "21610" in message.error
    async with db.sessions() as session:
        contact = (await session.execute(select(Contact))).scalar_one()
    assert contact.opted_out_at is not None
    assert await count(db, AuditEvent, AuditEvent.kind == "contact.opted_out") == 1


async def test_start_lifts_a_carrier_opt_out_but_a_retried_old_start_does_not(client, db):
    sid = "SM" + "ef" * 16
    await handed_to_twilio(client, db, sid, "SM" + "01" * 16)
    await post(client, STATUS, status(sid, "failed", "21610"))
    start = inbound("SM" + "02" * 16, "Start")
    await post(client, SMS, start)

    async with db.sessions() as session:
        contact = (await session.execute(select(Contact))).scalar_one()
    assert contact.opted_out_at is None

    async with db.sessions.begin() as session:
        await session.execute(update(Contact).values(opted_out_at=utcnow()))
    await post(client, SMS, start)  # Twilio retrying the same webhook
    async with db.sessions() as session:
        contact = (await session.execute(select(Contact))).scalar_one()
    assert contact.opted_out_at is not None


@pytest.mark.parametrize("code", ["30003", "30005", "30006"])
async def test_an_unreachable_number_fails_the_message_with_the_code(client, db, code):
    sid = "SM" + "34" * 16
    row_id = await handed_to_twilio(client, db, sid, "SM" + "56" * 16)
    await post(client, STATUS, status(sid, "undelivered", code))

    message = await row(db, row_id)
    assert message.status == "failed" and code in message.error
    assert ALICE not in message.error


async def test_a_reply_goes_out_through_twilio_and_its_delivery_comes_back(
    db, aiohttp_client, recording_prism
):
    public = "https://relay.example.org"
    settings = twilio_settings(
        db.url, CONCORDER_PUBLIC_URL=public, TWILIO_API_BASE_URL=recording_prism.url
    )
    client = await aiohttp_client(create_app(settings, dispatch=False))
    await post(client, SMS, inbound("SM" + "78" * 16, "Bonjour"), signed_url=public + SMS)
    reply = (await outbox_for(db, ALICE))[0]

    # What the dispatcher does with the row: send it, keep Twilio's sid.
    transport = SmsTransport(settings)
    try:
        sent = await transport.send(
            Outgoing(id=reply.id, channel="sms", address=reply.address, text=reply.text)
        )
    finally:
        await transport.close()
    async with db.sessions.begin() as session:
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == reply.id)
            .values(status="sent", provider_id=sent.provider_id)
        )
    [request] = recording_prism.requests
    assert request.form["To"] == [ALICE] and request.form["Body"] == [reply.text]

    callback = request.form["StatusCallback"][0]
    form = status(sent.provider_id, "delivered")
    answer = await post(client, urlsplit(callback).path, form, signed_url=callback)

    assert answer.status == 200
    assert (await row(db, reply.id)).status == "delivered"
