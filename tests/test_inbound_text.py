"""Whatever a person writes is kept: text PostgreSQL cannot store as it came (a NUL, a lone
surrogate) is stored with U+FFFD in their place, on every way in, and answered. Bodies
that are not messages at all (deep or huge JSON, wrong types) are refused with a clear 400."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.bootstrap import create_app
from store.models import InboundMessage, OutboxMessage
from tests.telegram_peer import bot_api_fixture  # noqa: F401  (fixture)
from tests.test_telegram_e2e import Service as PollingService
from tests.test_telegram_e2e import polling_settings
from tests.test_telegram_webhook import SECRET, callback_update, message_update, webhook_settings
from tests.twilio_peer import sign, twilio_settings

SMS = "/webhooks/twilio/sms"
TELEGRAM = "/webhooks/telegram"
SIMULATOR = "/simulator/api/messages"
DEEP = b'{"update_id": 1, "message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
HUGE_NUMBER = b'{"update_id": ' + b"9" * 5000 + b"}"


async def stored(db, provider_id: str) -> InboundMessage | None:
    async with db.sessions() as session:
        return await session.scalar(
            select(InboundMessage).where(InboundMessage.provider_id == provider_id)
        )


async def replies_to(db, address: str) -> int:
    async with db.sessions() as session:
        return await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.address == address)
        )


async def count_inbound(db) -> int:
    async with db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(InboundMessage))


@pytest.fixture
async def sms_client(db, aiohttp_client):
    return await aiohttp_client(create_app(twilio_settings(db.url), dispatch=False))


@pytest.fixture
async def telegram_client(db, bot_api, aiohttp_client):
    return await aiohttp_client(create_app(webhook_settings(db, bot_api), dispatch=False))


@pytest.fixture
async def simulator_client(settings, aiohttp_client):
    return await aiohttp_client(create_app(settings, dispatch=False))


async def text_in(client, form: dict[str, str]):
    url = str(client.make_url(SMS))
    return await client.post(SMS, data=form, headers=sign(url, form))


async def raw_update(client, body: bytes):
    return await client.post(
        TELEGRAM,
        data=body,
        headers={"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"},
    )


async def test_an_sms_with_a_nul_is_stored_and_answered(db, sms_client):
    form = {
        "MessageSid": "SM" + "a" * 32,
        "From": "+447911123456",
        "To": "+15005550006",
        "Body": "Hello\x00 I am in\x00 \U0001f600",
    }
    response = await text_in(sms_client, form)
    assert response.status == 200
    row = await stored(db, "SM" + "a" * 32)
    assert row.text == "Hello\ufffd I am in\ufffd \U0001f600"
    assert await replies_to(db, "+447911123456") >= 1


async def test_an_sms_form_that_is_not_utf8_is_refused_without_a_500(db, sms_client):
    for content_type in (
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=no-such-charset",
    ):
        response = await sms_client.post(
            SMS,
            data=b"Body=\xff\xfe&From=%2B447911123456",
            headers={"Content-Type": content_type, "X-Twilio-Signature": "x"},
        )
        assert response.status in (400, 403), content_type
    assert await count_inbound(db) == 0


async def test_an_upload_to_a_twilio_webhook_is_refused_without_a_500(db, sms_client):
    for path in (SMS, "/webhooks/twilio/status"):
        upload = aiohttp.FormData()
        upload.add_field("Body", b"a file", filename="body.txt")
        upload.add_field("From", "+447911123456")
        response = await sms_client.post(path, data=upload, headers={"X-Twilio-Signature": "x"})
        assert response.status == 400, path
        assert "x-www-form-urlencoded" in await response.text()
    assert await count_inbound(db) == 0


async def test_a_status_callback_with_a_sid_twilio_never_sends_is_a_bad_request(sms_client):
    form = {"MessageSid": "SM\x00" + "1" * 32, "MessageStatus": "delivered"}
    url = str(sms_client.make_url("/webhooks/twilio/status"))
    response = await sms_client.post("/webhooks/twilio/status", data=form, headers=sign(url, form))
    assert response.status == 400


async def test_a_status_callback_with_a_non_ascii_error_code_is_a_bad_request(sms_client):
    form = {"MessageSid": "SM" + "1" * 32, "MessageStatus": "failed", "ErrorCode": "\u00b2"}
    url = str(sms_client.make_url("/webhooks/twilio/status"))
    response = await sms_client.post("/webhooks/twilio/status", data=form, headers=sign(url, form))
    assert response.status == 400


async def test_a_simulated_chat_id_of_unicode_digits_is_a_bad_request(db, simulator_client):
    for address in ("\u00b2", "-\u00b2", "\u0663"):
        response = await simulator_client.post(
            SIMULATOR, json={"channel": "telegram", "address": address, "text": "hello"}
        )
        assert response.status == 400, address
        assert "chat id" in (await response.json())["error"]
    assert await count_inbound(db) == 0


async def test_an_sms_sid_twilio_never_sends_is_a_bad_request(db, sms_client):
    for sid in ("SM" + "9" * 200, "SM\x00abc", "SM caf\u00e9"):
        form = {"MessageSid": sid, "From": "+447911123456", "Body": "hi"}
        response = await text_in(sms_client, form)
        assert response.status == 400, sid
        assert "MessageSid" in await response.text()
    assert await count_inbound(db) == 0


async def test_telegram_text_with_nul_and_lone_surrogates_is_stored_and_answered(
    db, telegram_client
):
    body = json.dumps(message_update(31, "x")).replace(
        '"text": "x"', r'"text": "a\u0000b\ud800c\udfffd"'
    )
    response = await raw_update(telegram_client, body.encode())
    assert response.status == 200
    assert (await stored(db, "tg:31")).text == "a\ufffdb\ufffdc\ufffdd"
    assert await replies_to(db, "987654321") >= 1


async def test_a_telegram_button_with_a_nul_is_stored(db, telegram_client):
    body = json.dumps(callback_update(32, "lang:fr\x00"))
    response = await raw_update(telegram_client, body.encode())
    assert response.status == 200
    assert (await stored(db, "tg:32")).button == "lang:fr\ufffd"


async def test_telegram_bodies_that_are_not_updates_are_a_clear_400(db, telegram_client):
    wrong_types = [
        message_update(40, "x") | {"update_id": True},
        message_update(41, "x") | {"update_id": 10**30},
        {"update_id": 42, "message": message_update(42, None)["message"] | {"text": 42}},
        {
            "update_id": 43,
            "message": message_update(43, "x")["message"]
            | {"chat": {"id": "not a number", "type": "private"}},
        },
        {
            "update_id": 44,
            "message": message_update(44, "x")["message"]
            | {"chat": {"id": 10**40, "type": "private"}},
        },
        callback_update(45, "x")
        | {"callback_query": callback_update(45, "x")["callback_query"] | {"data": {"nested": 1}}},
    ]
    bodies = [DEEP, HUGE_NUMBER] + [json.dumps(b).encode() for b in wrong_types]
    for body in bodies:
        response = await raw_update(telegram_client, body)
        assert response.status == 400, body[:80]
        assert (await response.json())["error"]
    assert await count_inbound(db) == 0


async def test_simulator_text_with_nul_and_lone_surrogates_is_stored_and_answered(
    db, simulator_client
):
    body = r'{"channel": "sms", "address": "+447911123456", "text": "hi\u0000 \ud83d there"}'
    response = await simulator_client.post(
        SIMULATOR, data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == 202, await response.text()
    async with db.sessions() as session:
        texts = (await session.execute(select(InboundMessage.text))).scalars().all()
    assert texts == ["hi\ufffd \ufffd there"]
    assert await replies_to(db, "+447911123456") >= 1


async def test_simulator_bodies_too_deep_or_too_big_are_a_clear_400(db, simulator_client):
    deep = b'{"channel": "sms", "text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    huge = b'{"channel": "sms", "address": "+447911123456", "text": ' + b"7" * 5000 + b"}"
    for body in (deep, huge):
        response = await simulator_client.post(
            SIMULATOR, data=body, headers={"Content-Type": "application/json"}
        )
        assert response.status == 400, body[:60]
        assert "JSON" in (await response.json())["error"]
    assert await count_inbound(db) == 0


async def test_long_polling_stores_text_with_nul_and_lone_surrogates(db, bot_api):
    bot_api.updates.append(message_update(910, "poll\x00ed \ud800"))
    bot_api.updates.append(callback_update(911, "lang:es\x00"))

    async with PollingService(polling_settings(db, bot_api.url, "123:abc")):
        deadline = time.monotonic() + 10
        while not any(c.get("offset") == "912" for c in bot_api.called("getUpdates")):
            assert time.monotonic() < deadline, "polling did not move past the updates"
            await asyncio.sleep(0.05)

    assert (await stored(db, "tg:910")).text == "poll\ufffded \ufffd"
    assert (await stored(db, "tg:911")).button == "lang:es\ufffd"
