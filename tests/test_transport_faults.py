"""A transport that raises something unexpected (a bug, not a provider's answer): the
message is retried with the usual backoff a bounded number of times, then failed with a
reason an organiser sees in `concorder outbox status` and /healthz; the messages behind it
go on, and the logs never carry the message's text or the number."""

from __future__ import annotations

import asyncio
import logging

from typer.testing import CliRunner

from bot.bootstrap import build, build_cli, create_app
from bot.channels.transport import Outgoing
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.ratelimit import DeliveryLimits
from bot.delivery.retry import BACKOFF_CAP, UNEXPECTED_ATTEMPTS
from tests.test_dispatcher import FakeClock, RecordingTransport, person, queue, rows

SECRET = "Your code is 4821"
NUMBER = "+447700900123"


def broken(message: Outgoing, attempt: int) -> None:
    if message.text == SECRET:  # a bug that quotes what it was given
        raise ValueError(f"cannot encode {message.text!r} for {message.address}")


async def test_an_unexpected_transport_error_is_retried_a_few_times_then_failed(
    db, settings, aiohttp_client, monkeypatch, caplog
):
    who = await person(db, sms=NUMBER)
    clock = FakeClock()
    await queue(db, settings, who, "sms", SECRET, "see you on Saturday", now=clock.now)
    relay = build(settings)
    transport = RecordingTransport("sms", script=broken)
    worker = Dispatcher(
        db.sessions,
        {"sms": transport},
        settings,
        clock,
        limits=DeliveryLimits.off(),
        rng=lambda: 0.5,
        health=relay.health,
    )
    caplog.set_level(logging.DEBUG)
    for _ in range(3 * UNEXPECTED_ATTEMPTS):  # far fewer rounds than retry_for would allow
        await worker.drain()
        clock.advance(BACKOFF_CAP + 1)

    first, second = await rows(db)
    assert first.status == "failed"
    assert first.attempts == UNEXPECTED_ATTEMPTS
    assert first.error.startswith(f"gave up after {UNEXPECTED_ATTEMPTS} attempts over ")
    assert first.error.endswith(": transport error: ValueError")
    assert " h " not in first.error  # under an hour of trying, not a day
    # With the usual backoff in between, not in a burst.
    tried = [m for m in transport.attempts if m.text == SECRET]
    assert len(tried) == UNEXPECTED_ATTEMPTS
    assert (second.status, transport.texts(NUMBER)) == ("sent", ["see you on Saturday"])

    client = await aiohttp_client(create_app(relay=relay, migrate=False, dispatch=False))
    sms = (await (await client.get("/healthz")).json())["channels"]["sms"]
    assert sms["failed_messages"] == 1
    assert sms["last_failed_reason"] == first.error

    monkeypatch.setenv("CONCORDER_DATABASE_URL", db.url)
    status = await asyncio.to_thread(CliRunner().invoke, build_cli(), ["outbox", "status"])
    assert status.exit_code == 0, status.output
    assert "transport error: ValueError" in status.output
    assert "concorder outbox retry" in status.output

    logged = caplog.text
    assert "ValueError" in logged
    assert SECRET not in logged and "4821" not in logged and "7700900123" not in logged
