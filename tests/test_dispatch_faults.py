"""Attempts that fail outside the send itself: a database that refuses to move a message to
SMS, an outcome that cannot be written. Each is tried again a bounded number of times, then
failed with a reason the organiser sees in `concorder outbox status` and on /healthz.

The faults are real: a database trigger refuses the write, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import text
from typer.testing import CliRunner

from bot.bootstrap import build, build_cli, create_app
from bot.delivery.claims import ABANDONED
from bot.delivery.retry import BACKOFF_CAP, MAX_FAULTS
from store.models import Contact
from tests.test_dispatcher import (
    FakeClock,
    RecordingTransport,
    dispatcher,
    person,
    queue,
    rows,
)

# (trigger name, when it refuses: SQL over OLD/NEW, what it guards)
REFUSE_SMS_ROWS = ("refuse_sms_rows", "INSERT", "NEW.channel = 'sms'")
REFUSE_SENT = ("refuse_sent", "UPDATE", "OLD.status = 'sending' AND NEW.status = 'sent'")


async def refuse(db, trigger: tuple[str, str, str]) -> None:
    """A trigger that makes the database refuse such writes to the outbox."""
    name, event, when = trigger
    async with db.engine.begin() as conn:
        if db.dialect == "sqlite":
            await conn.execute(
                text(
                    f"CREATE TRIGGER {name} BEFORE {event} ON outbox WHEN {when} "
                    f"BEGIN SELECT RAISE(ABORT, '{name}'); END"
                )
            )
            return
        await conn.execute(
            text(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN RAISE EXCEPTION '{name}'; END $$"
            )
        )
        await conn.execute(
            text(
                f"CREATE TRIGGER {name} BEFORE {event} ON outbox FOR EACH ROW "
                f"WHEN ({when}) EXECUTE FUNCTION {name}()"
            )
        )


async def allow(db, trigger: tuple[str, str, str]) -> None:
    name = trigger[0]
    async with db.engine.begin() as conn:
        await conn.execute(
            text(
                f"DROP TRIGGER IF EXISTS {name}" + ("" if db.dialect == "sqlite" else " ON outbox")
            )
        )
        if db.dialect != "sqlite":
            await conn.execute(text(f"DROP FUNCTION IF EXISTS {name}()"))


async def status_output(db, monkeypatch) -> str:
    monkeypatch.setenv("CONCORDER_DATABASE_URL", db.url)
    result = await asyncio.to_thread(CliRunner().invoke, build_cli(), ["outbox", "status"])
    assert result.exit_code == 0, result.output
    return result.output


async def test_moving_a_message_to_sms_that_keeps_failing_is_retried_then_failed(
    db, settings, aiohttp_client, monkeypatch
):
    clock = FakeClock()
    relay = build(settings, sessions=db.sessions)
    client = await aiohttp_client(create_app(relay=relay, migrate=False, dispatch=False))
    kim = await person(db, telegram="15001", sms="+447700900150")
    await queue(db, settings, kim, "telegram", "hello", now=clock.now)
    async with db.sessions.begin() as session:
        (await session.get(Contact, kim["telegram"])).unreachable_at = clock.now
    telegram, sms = RecordingTransport(), RecordingTransport("sms")
    worker = dispatcher(
        db, settings, {"telegram": telegram, "sms": sms}, clock, health=relay.health
    )
    await refuse(db, REFUSE_SMS_ROWS)
    try:
        seen = []
        for _ in range(3 * MAX_FAULTS):
            await worker.drain()
            (row,) = await rows(db)
            seen.append((row.status, row.faults))
            if row.status not in ("queued", "sending"):
                break
            assert row.status == "queued", "rescheduled, not left under its lease"
            assert row.error.startswith("processing failed: ")
            assert row.next_attempt_at > clock.now
            assert "processing failed" in await status_output(db, monkeypatch)
            clock.advance(BACKOFF_CAP + 1)
    finally:
        await allow(db, REFUSE_SMS_ROWS)

    assert seen == [("queued", n) for n in range(1, MAX_FAULTS)] + [("failed", MAX_FAULTS)]
    (row,) = await rows(db)
    assert row.error.startswith(f"gave up after {MAX_FAULTS} attempts that failed before an")
    assert telegram.attempts == [] and sms.attempts == []
    shown = await status_output(db, monkeypatch)
    assert "gave up after" in shown and "processing failed" in shown
    health = (await (await client.get("/healthz")).json())["channels"]["telegram"]
    assert health["failed_messages"] == 1
    assert health["last_failed_reason"] == row.error


async def test_a_send_whose_outcome_cannot_be_written_is_failed_after_a_few_leases(
    db, settings, aiohttp_client, monkeypatch
):
    clock = FakeClock()
    relay = build(settings, sessions=db.sessions)
    client = await aiohttp_client(create_app(relay=relay, migrate=False, dispatch=False))
    lea = await person(db, telegram="15002")
    await queue(db, settings, lea, "telegram", "hello", "after", now=clock.now)
    telegram = RecordingTransport()
    worker = dispatcher(
        db,
        settings,
        {"telegram": telegram},
        clock,
        lease=timedelta(seconds=120),
        health=relay.health,
    )
    await refuse(db, REFUSE_SENT)
    try:
        for _ in range(3 * MAX_FAULTS):
            await worker.drain()
            first, _ = await rows(db)
            if first.status != "sending":
                break
            clock.advance(121)  # the lease runs out: the row is claimed again
    finally:
        await allow(db, REFUSE_SENT)

    first, after = await rows(db)
    assert (first.status, first.error) == ("failed", ABANDONED)
    # Sent each time it was claimed, never after its last lease: then "after" goes.
    assert telegram.texts() == ["hello"] * MAX_FAULTS
    assert "the last one's lease ran out" in await status_output(db, monkeypatch)
    health = (await (await client.get("/healthz")).json())["channels"]["telegram"]
    assert (health["failed_messages"], health["last_failed_reason"]) == (1, ABANDONED)
    assert await worker.drain() == 1
    assert telegram.texts() == ["hello"] * MAX_FAULTS + ["after"]
    assert [r.status for r in await rows(db)] == ["failed", "sent"]


async def test_one_outcome_the_database_refuses_does_not_make_the_others_go_twice(db, settings):
    clock = FakeClock()
    people = [await person(db, telegram=f"1510{n}") for n in range(3)]
    for n, who in enumerate(people):
        await queue(db, settings, who, "telegram", f"hello {n}", now=clock.now)
    poisoned = (await rows(db))[1].id
    telegram = RecordingTransport()
    worker = dispatcher(db, settings, {"telegram": telegram}, clock, lease=timedelta(seconds=120))
    refuse_one = ("refuse_one", "UPDATE", f"OLD.id = {poisoned} AND NEW.status = 'sent'")
    await refuse(db, refuse_one)
    try:
        assert await worker.drain() == 3
        assert [(r.id == poisoned, r.status) for r in await rows(db)] == [
            (False, "sent"),
            (True, "sending"),
            (False, "sent"),
        ]
    finally:
        await allow(db, refuse_one)
    clock.advance(121)  # only the refused one's lease runs out: it alone goes again
    assert await worker.drain() == 1
    assert sorted(telegram.texts()) == ["hello 0", "hello 1", "hello 1", "hello 2"]
    assert {r.status for r in await rows(db)} == {"sent"}


async def test_outcomes_wait_for_a_database_that_blinked_instead_of_being_sent_again(db, settings):
    clock = FakeClock()
    ada = await person(db, telegram="15201")
    await queue(db, settings, ada, "telegram", "one", now=clock.now)
    await queue(db, settings, await person(db, telegram="15202"), "telegram", "two", now=clock.now)
    telegram = RecordingTransport()
    worker = dispatcher(db, settings, {"telegram": telegram}, clock)
    claimed = await worker.claim(10, ["telegram"])
    await refuse(db, REFUSE_SENT)
    try:
        for row in claimed:
            worker.writer.finish(row, "sent", sent_at=clock.now)
        assert not await worker.writer.write_batch(worker.writer.take())
        assert worker.writer.count == 2, "kept in memory, not dropped"
    finally:
        await allow(db, REFUSE_SENT)
    await worker.writer.flush()
    assert [r.status for r in await rows(db)] == ["sent", "sent"]
    assert await worker.drain() == 0, "nothing is left to be sent a second time"
