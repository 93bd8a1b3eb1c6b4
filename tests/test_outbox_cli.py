"""`concorder outbox status` and `concorder outbox retry`, as an organiser runs them after an
outage: what waits and why, and failed messages put back without reviving what must stay
dead (people who opted out since, messages whose moment has passed)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from bot.bootstrap import build_cli
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.ratelimit import DeliveryLimits
from bot.services import outgoing
from bot.settings import Settings
from flows.model import Outbound
from store.db import make_engine, sessionmaker
from store.models import AuditEvent, Contact, OutboxMessage, Participant, utcnow
from tests.test_dispatcher import RecordingTransport

runner = CliRunner()


@pytest.fixture
def cli():
    """The `concorder` command as the console script builds it."""
    return build_cli()


def on_db(url: str, work):
    async def go():
        engine = make_engine(url)
        try:
            return await work(sessionmaker(engine))
        finally:
            await engine.dispose()

    return asyncio.run(go())


async def person_with(
    sessions,
    channel: str,
    address: str,
    texts: list[str],
    *,
    status: str,
    error: str | None = None,
    opted_out: bool = False,
    expires_in: timedelta | None = None,
    age: timedelta = timedelta(0),
):
    settings = Settings(_env_file=None)
    now = utcnow() - age
    async with sessions.begin() as session:
        participant = Participant(language="en", state={}, opted_out=opted_out)
        session.add(participant)
        await session.flush()
        contact = Contact(
            participant_id=participant.id, channel=channel, address=address, sms_consent=True
        )
        session.add(contact)
        await session.flush()
        await outgoing.enqueue(
            session,
            settings,
            participant,
            contact,
            [Outbound(text=t) for t in texts],
            prompt_id=None,
            now=now,
            expires_at=now + expires_in if expires_in else None,
        )
        await session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.contact_id == contact.id)
            .values(status=status, error=error, attempts=40)
        )


def seed(url: str) -> None:
    down = "cannot reach Twilio (ClientConnectorError)"

    async def work(sessions):
        await person_with(
            sessions,
            "sms",
            "+447700900401",
            ["ada 1", "ada 2"],
            status="failed",
            error=down,
            age=timedelta(hours=30),
        )
        await person_with(
            sessions,
            "sms",
            "+447700900402",
            ["bob"],
            status="failed",
            error=down,
            opted_out=True,
            age=timedelta(hours=30),
        )
        await person_with(
            sessions,
            "sms",
            "+447700900403",
            ["cy, reminder"],
            status="failed",
            error=down,
            expires_in=timedelta(hours=1),
            age=timedelta(hours=30),
        )
        await person_with(
            sessions,
            "telegram",
            "4004",
            ["dee"],
            status="failed",
            error="telegram network: NetworkError",
            age=timedelta(hours=2),
        )
        await person_with(
            sessions,
            "sms",
            "+447700900405",
            ["eve"],
            status="queued",
            error=down,
            age=timedelta(minutes=50),
        )
        await person_with(sessions, "telegram", "4006", ["fay"], status="sent")

    on_db(url, work)


async def statuses(sessions) -> dict[str, str]:
    async with sessions() as session:
        return dict((await session.execute(select(OutboxMessage.text, OutboxMessage.status))).all())


def test_help_explains_both_commands(cli):
    for command, said in (
        (["outbox", "--help"], "failed messages"),
        (["outbox", "status", "--help"], "oldest"),
        (["outbox", "retry", "--help"], "--dry-run"),
    ):
        result = runner.invoke(cli, command)
        assert result.exit_code == 0 and said in result.output, result.output


def test_status_shows_the_queue_by_channel_and_state_and_why_messages_fail(db, monkeypatch, cli):
    monkeypatch.setenv("CONCORDER_DATABASE_URL", db.url)
    empty = runner.invoke(cli, ["outbox", "status"])
    assert empty.exit_code == 0 and "The outbox is empty" in empty.output
    seed(db.url)

    result = runner.invoke(cli, ["outbox", "status"])
    assert result.exit_code == 0, result.output
    lines = result.output.replace("┃", "│").splitlines()
    header = next(line for line in lines if "queued" in line and "failed" in line)
    assert [w for w in header.replace("│", " ").split()][:9] == [
        "channel",
        "queued",
        "sending",
        "sent",
        "delivered",
        "failed",
        "expired",
        "undeliverable",
        "cancelled",
    ]
    sms = next(line for line in lines if line.replace("│", " ").split()[:1] == ["sms"])
    telegram = next(line for line in lines if line.replace("│", " ").split()[:1] == ["telegram"])
    # sms: eve queued (retrying for 50 min); ada's two, bob and cy failed.
    assert sms.replace("│", " ").split() == [
        "sms",
        "1",
        "0",
        "0",
        "0",
        "4",
        "0",
        "0",
        "0",
        "50",
        "min",
        "1",
    ]
    assert telegram.replace("│", " ").split() == [
        "telegram",
        "0",
        "0",
        "1",
        "0",
        "1",
        "0",
        "0",
        "0",
        "-",
        "0",
    ]
    assert "cannot reach Twilio (ClientConnectorError)" in result.output
    assert "concorder outbox retry" in result.output
    assert "+4477009004" not in result.output  # no phone numbers on screen


def test_retry_puts_failed_messages_back_but_not_opted_out_or_expired_ones(db, monkeypatch, cli):
    monkeypatch.setenv("CONCORDER_DATABASE_URL", db.url)
    seed(db.url)

    dry = runner.invoke(cli, ["outbox", "retry", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Would put back 3 failed messages (sms 2, telegram 1)." in dry.output
    assert "Left alone: 1 to people who opted out, 1 whose moment has passed." in dry.output
    assert "nothing was changed" in dry.output
    assert set(on_db(db.url, statuses).values()) == {"failed", "queued", "sent"}
    assert on_db(db.url, statuses)["ada 1"] == "failed"

    only_recent = runner.invoke(cli, ["outbox", "retry", "--since", "6h", "--dry-run"])
    assert "Would put back 1 failed message (telegram 1)." in only_recent.output

    sms = runner.invoke(cli, ["outbox", "retry", "--channel", "sms"])
    assert sms.exit_code == 0, sms.output
    assert "Put back 2 failed messages (sms 2)." in sms.output
    after = on_db(db.url, statuses)
    assert (after["ada 1"], after["ada 2"], after["bob"], after["cy, reminder"], after["dee"]) == (
        "queued",
        "queued",
        "failed",
        "failed",
        "failed",
    )

    async def audit_and_send(sessions):
        async with sessions() as session:
            event = (
                await session.execute(select(AuditEvent).where(AuditEvent.kind == "outbox.retried"))
            ).scalar_one()
        transport = RecordingTransport("sms")
        settings = Settings(CONCORDER_DATABASE_URL=db.url, _env_file=None)
        await Dispatcher(
            sessions, {"sms": transport}, settings, limits=DeliveryLimits.off()
        ).drain()
        return event.data, (transport.texts("+447700900401"), transport.texts())

    data, sent = on_db(db.url, audit_and_send)
    assert data["messages"] == 2 and data["channel"] == "sms"
    # Sent again at once, in order: not failed straight away for being over a day old.
    assert sent[0] == ["ada 1", "ada 2"] and sorted(sent[1]) == ["ada 1", "ada 2", "eve"]


def test_retry_refuses_what_it_cannot_understand_and_changes_nothing(db, monkeypatch, cli):
    monkeypatch.setenv("CONCORDER_DATABASE_URL", db.url)
    seed(db.url)
    for args, said in (
        (["--channel", "whatsapp"], "--channel 'whatsapp' is unknown"),
        (["--since", "last tuesday"], "is not a time"),
    ):
        result = runner.invoke(cli, ["outbox", "retry", *args])
        assert result.exit_code == 2 and said in result.output, result.output
    assert on_db(db.url, statuses)["ada 1"] == "failed"
