"""SmsTransport sends with the real twilio client: to Prism on Twilio's OpenAPI spec, and to
a loopback server answering with Twilio's error codes."""

from __future__ import annotations

import base64
import io
import logging

import pytest

from bot.channels.sms import SmsTransport
from bot.channels.transport import Outgoing, PermanentFailure, RetryLater
from bot.logs import configure_logging
from tests.twilio_peer import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    free_port,
    twilio_settings,
)

pytest_plugins = ["tests.twilio_peer"]  # fixtures: prism, recording_prism, twilio_like

DB = "sqlite+aiosqlite:///unused.db"  # the transport never touches the database
TO = "+447911123456"


def outgoing(text: str = "Your jury meets on Monday. Reply 1 or 2.", to: str = TO) -> Outgoing:
    return Outgoing(id=7, channel="sms", address=to, text=text)


async def send_with(settings, message: Outgoing):
    transport = SmsTransport(settings)
    try:
        return await transport.send(message)
    finally:
        await transport.close()


async def test_sends_through_the_twilio_api_as_the_spec_describes(recording_prism):
    settings = twilio_settings(
        DB,
        TWILIO_API_BASE_URL=recording_prism.url,
        CONCORDER_PUBLIC_URL="https://relay.example.org/",
    )
    sent = await send_with(settings, outgoing("Café à 18h 👍"))

    assert sent.provider_id.startswith("SM") and len(sent.provider_id) == 34
    [request] = recording_prism.requests
    assert (request.method, request.path) == (
        "POST",
        f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
    )
    assert request.content_type == "application/x-www-form-urlencoded"
    credentials = base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
    assert request.authorization == f"Basic {credentials}"
    assert request.form == {
        "To": [TO],
        "From": [FROM_NUMBER],
        "Body": ["Café à 18h 👍"],
        "StatusCallback": ["https://relay.example.org/webhooks/twilio/status"],
    }


async def test_a_messaging_service_replaces_the_sender_number(recording_prism):
    settings = twilio_settings(
        DB,
        TWILIO_API_BASE_URL=recording_prism.url,
        TWILIO_FROM_NUMBER=None,
        TWILIO_MESSAGING_SERVICE_SID="MG" + "ab" * 16,
    )
    sent = await send_with(settings, outgoing())

    assert sent.provider_id.startswith("SM")
    [request] = recording_prism.requests
    assert request.form["MessagingServiceSid"] == ["MG" + "ab" * 16]
    assert "From" not in request.form and "StatusCallback" not in request.form


async def test_a_request_the_api_rejects_is_a_permanent_failure(recording_prism):
    # Prism answers 422 for what the spec forbids: here a malformed messaging service sid.
    settings = twilio_settings(
        DB,
        TWILIO_API_BASE_URL=recording_prism.url,
        TWILIO_FROM_NUMBER=None,
        TWILIO_MESSAGING_SERVICE_SID="MG1",
    )
    with pytest.raises(PermanentFailure) as failure:
        await send_with(settings, outgoing())
    assert "HTTP 422" in failure.value.reason
    assert not failure.value.opted_out and not failure.value.unreachable


@pytest.mark.parametrize(
    ("status", "code", "opted_out", "unreachable"),
    [
        (400, 21610, True, False),
        (400, 21211, False, True),
        (400, 21614, False, True),
        (400, 21612, False, True),
        (400, 21408, False, False),
    ],
)
async def test_twilio_error_codes_become_permanent_failures(
    twilio_like, status, code, opted_out, unreachable
):
    twilio_like.error(status, code, f"The 'To' number {TO} is not allowed")
    settings = twilio_settings(DB, TWILIO_API_BASE_URL=twilio_like.url)
    with pytest.raises(PermanentFailure) as failure:
        await send_with(settings, outgoing())
    assert (failure.value.opted_out, failure.value.unreachable) == (opted_out, unreachable)
    assert str(code) in failure.value.reason
    assert TO not in failure.value.reason  # Twilio's message repeats the number: dropped
    [request] = twilio_like.requests
    assert request.form["To"] == [TO]


# 401: bad credentials fail every message alike; they wait for the configuration fix.
@pytest.mark.parametrize(("status", "code"), [(429, 20429), (500, 20500), (503, 503), (401, 20003)])
async def test_rate_limits_and_server_errors_are_retried(twilio_like, status, code):
    twilio_like.error(status, code)
    settings = twilio_settings(DB, TWILIO_API_BASE_URL=twilio_like.url)
    with pytest.raises(RetryLater) as retry:
        await send_with(settings, outgoing())
    assert f"HTTP {status}" in retry.value.reason


async def test_an_unreachable_api_is_retried():
    settings = twilio_settings(DB, TWILIO_API_BASE_URL=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(RetryLater) as retry:
        await send_with(settings, outgoing())
    assert "cannot reach Twilio" in retry.value.reason


async def test_a_slow_api_times_out_and_is_retried(twilio_like):
    twilio_like.delay = 5
    twilio_like.error(500, 20500)
    settings = twilio_settings(DB, TWILIO_API_BASE_URL=twilio_like.url)
    transport = SmsTransport(settings, timeout=0.3)
    try:
        with pytest.raises(RetryLater):
            await transport.send(outgoing())
    finally:
        await transport.close()


async def test_sending_logs_no_account_sid_number_or_text(recording_prism, caplog):
    settings = twilio_settings(DB, TWILIO_API_BASE_URL=recording_prism.url)
    # The service's own logging set-up, then everything at its most verbose.
    handler = configure_logging(settings, stream=io.StringIO())
    caplog.set_level(logging.DEBUG)
    try:
        await send_with(settings, outgoing("Secret venue"))
    finally:
        logging.getLogger().removeHandler(handler)

    assert recording_prism.requests
    # The recording hop's own access log is the test peer's, not the relay's.
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name != "aiohttp.access")
    for secret in (ACCOUNT_SID, TO, "Secret venue", AUTH_TOKEN):
        assert secret not in ours
