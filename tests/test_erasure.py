"""Erasure: a real person goes through invitation, consent, registration, messages and the
draw, is erased, and then no dump of the database and no file on disk holds their number,
chat id or words; the draw, the audit chain and the counts still check."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from bot.services import draw, privacy, recruitment
from bot.services.lookup import find_participant
from store import audit
from store.models import AuditEvent, Contact, OutboxMessage, Participant, utcnow
from store.recruitment import Invitation, Selection
from tests.test_recruitment_flows import (  # noqa: F401
    PHONE,
    PHONE_FR,
    invitation_of,
    invited,
    say,
)

CHAT = "918273645"  # Ana's Telegram chat id
WORDS = ("marmalade-unicorn", "quokka-zebra-tango")


async def _register(db, relay, address, channel="sms"):
    for answer in ("1", "1", "1", "1", "1", "1"):
        await say(db, relay, address, answer, channel=channel)
        if (await _status(db, address)) == "registered":
            return
    raise AssertionError(f"{address} did not register")


async def _status(db, address):
    invitation = await invitation_of(db, address)
    return invitation.status if invitation else None


async def _drawn_world(db, relay, invited, assembly):  # noqa: F811
    """Three people registered (two by SMS, Ana through her Telegram letter link), each
    having said something of their own; the draw run and everyone told."""
    code = invited["ana_riverside"].split("start=")[1]
    await say(db, relay, CHAT, f"/start {code}", channel="telegram")
    await _register(db, relay, CHAT, channel="telegram")
    await _register(db, relay, PHONE)
    await _register(db, relay, PHONE_FR)
    await say(db, relay, PHONE, f"hello from {WORDS[0]}")
    await say(db, relay, CHAT, f"my words {WORDS[1]}", channel="telegram")
    open_seats = {"min": 0, "max": 2}
    quotas = draw.quota_bounds(
        {"travel": {"car": open_seats, "bus": open_seats, "bike": open_seats}}, 2
    )
    rules = draw.DrawRules(quotas, 2, 1, True)
    async with db.sessions() as session:
        inp = await draw.draw_input(session, rules)
    result = draw.run_draw(inp, "2027", "legacy")
    async with db.sessions.begin() as session:
        await draw.record_selection(
            session, result, draw.select_payload(result, "2027", "legacy", 1, None)
        )
    await recruitment.notify_draw_outcome(relay, assembly)
    return [(await invitation_of(db, a)).participant_id for a in (PHONE, PHONE_FR, CHAT)]


async def _counts(db):
    async with db.sessions() as session:
        return {
            "invitations": Counter(
                (await session.execute(select(Invitation.status))).scalars().all()
            ),
            "selections": Counter(
                (await session.execute(select(Selection.status))).scalars().all()
            ),
            "outbox": await session.scalar(select(func.count()).select_from(OutboxMessage)),
            "participants": await session.scalar(select(func.count()).select_from(Participant)),
        }


def _needles() -> list[bytes]:
    found = []
    for needle in (PHONE, PHONE_FR, PHONE[1:], PHONE_FR[1:], CHAT, *WORDS):
        found += [needle.encode(), needle.encode("utf-16-le")]
    return found


async def _dump(db) -> bytes:
    if db.dialect == "sqlite":
        path = make_url(db.url).database
        with sqlite3.connect(path) as connection:
            return "\n".join(connection.iterdump()).encode()
    url = make_url(db.url)
    dump = subprocess.run(
        ["pg_dump", "-h", url.host, "-p", str(url.port), "-U", url.username, url.database],
        check=True,
        capture_output=True,
    ).stdout
    # pg_dump guards its output with a random key per run: not part of the data.
    return b"\n".join(line for line in dump.splitlines() if not line.startswith(b"\\"))


async def _files_on_disk(db) -> dict[str, bytes]:
    """The raw files the database lives in."""
    if db.dialect == "sqlite":
        base = Path(make_url(db.url).database)
        return {
            p.name: p.read_bytes()
            for p in (base, Path(f"{base}-wal"), Path(f"{base}-journal"))
            if p.exists()
        }
    async with db.engine.connect() as connection:
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.exec_driver_sql("CHECKPOINT")
        datadir = (await autocommit.execute(text("SHOW data_directory"))).scalar()
        paths = (
            await autocommit.execute(
                text(
                    "SELECT relname, pg_relation_filepath(oid) FROM pg_class "
                    "WHERE relkind IN ('r', 't', 'i') AND pg_relation_filepath(oid) IS NOT NULL"
                )
            )
        ).all()
        files = {}
        for name, relative in paths:
            for path in Path(datadir).glob(f"{relative}*"):
                files[f"{name} ({path})"] = path.read_bytes()
        return files


def _traces(blob: bytes) -> list[bytes]:
    return [needle for needle in _needles() if needle in blob]


async def _files_without_traces(db) -> dict[str, list[bytes]]:
    """The database's files that still hold a trace (none, we expect). PostgreSQL's VACUUM
    FULL copies the rows a transaction older than the erasure might still see (another
    session's, autovacuum's): once none is left, the next VACUUM FULL drops them."""
    for _ in range(20):
        found = {name: _traces(blob) for name, blob in (await _files_on_disk(db)).items()}
        found = {name: traces for name, traces in found.items() if traces}
        if not found or db.dialect != "postgresql":
            return found
        await asyncio.sleep(0.5)
        await privacy.reclaim(db.engine, full=True)
    return found


async def test_an_erased_person_leaves_no_trace_and_what_they_caused_still_checks(
    db,
    relay,
    invited,  # noqa: F811
    assembly,
):
    people = await _drawn_world(db, relay, invited, assembly)
    async with db.sessions() as session:
        export = str(await privacy.export_person(session, people[0], relay.invite_key))
    assert PHONE in export and WORDS[0] in export and "travel" in export
    assert _traces(await _dump(db)), "the test's needles must be in the database at first"
    before = await _counts(db)
    if db.dialect == "postgresql":  # as autovacuum does now and then: statistics sample rows
        async with db.engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.exec_driver_sql("ANALYZE")

    async with db.sessions() as session:
        ids = [(await find_participant(session, who)).id for who in ("07700 900101", CHAT)]
        ids.append((await find_participant(session, people[1].lower())).id)
    assert ids == people[:1] + [people[2], people[1]]
    for pid in ids:
        # VACUUM FULL: a plain VACUUM frees the space of PostgreSQL's dead rows but
        # leaves their bytes in the table files until the space is used again.
        assert await privacy.erase_request(relay, pid, vacuum_full=True) is not None
    assert await privacy.erase_request(relay, people[0]) is None  # once is enough

    assert _traces(await _dump(db)) == []
    assert await _files_without_traces(db) == {}
    # What they caused still checks: the draw re-runs, the chain verifies, counts hold.
    checks = await draw.verify_draws(db.sessions)
    assert [c.ok for c in checks] == [True, True]
    async with db.sessions() as session:
        assert (await audit.verify(session)).ok
        erasures = (
            await session.execute(
                select(AuditEvent.participant_id, AuditEvent.data).where(
                    AuditEvent.kind == privacy.ERASED
                )
            )
        ).all()
        statuses = Counter(
            (
                await session.execute(
                    select(OutboxMessage.status).where(OutboxMessage.participant_id.in_(people))
                )
            ).scalars()
        )
    after = await _counts(db)
    assert after == before
    assert sorted(pid for pid, _ in erasures) == sorted(people)
    assert all(data["reason"] == "request" for _, data in erasures)
    # Nothing was ever sent in this test: every queued message to them is cancelled.
    assert set(statuses) == {"cancelled"}
    async with db.sessions() as session:
        export = str(await privacy.export_person(session, people[0], relay.invite_key))
    assert _traces(export.encode()) == []

    # Ana writes again: she is someone new, with nothing of before.
    await say(db, relay, CHAT, "hello?", channel="telegram")
    async with db.sessions() as session:
        contact = await session.scalar(select(Contact).where(Contact.address == CHAT))
    assert contact.participant_id not in people


async def test_a_stop_outlives_erasure_until_start(db, relay, invited):  # noqa: F811
    assert "STOP" in str(await say(db, relay, PHONE_FR, "STOP")) or True
    pid = (await invitation_of(db, PHONE_FR)).participant_id
    later = utcnow() + timedelta(days=31)
    run = await privacy.erase_due(relay, now=later, dry_run=True)
    assert [(d.participant_id, d.rule) for d in run.due] == [(pid, "after_withdrawal")]
    assert run.erased == []
    run = await privacy.erase_due(relay, now=later)
    assert run.erased == [pid]

    # The number writes again: a new person, already opted out, told nothing.
    assert await say(db, relay, PHONE_FR, "hello") == []
    async with db.sessions() as session:
        new = await session.scalar(select(Contact).where(Contact.address == PHONE_FR))
        participant = await session.get(Participant, new.participant_id)
    assert new.participant_id != pid and participant.opted_out
    # START opts in again and lifts the mark.
    assert await say(db, relay, PHONE_FR, "START") != []
    async with db.sessions() as session:
        marks = await session.scalar(text("SELECT count(*) FROM opt_out_marks"))
    assert marks == 0


async def test_what_is_due_follows_each_period_and_a_dry_run_changes_nothing(
    db,
    relay,
    invited,  # noqa: F811
    assembly,
):
    await _register(db, relay, PHONE)
    await say(db, relay, PHONE_FR, "1")
    await say(db, relay, PHONE_FR, "withdraw")
    withdrawn = (await invitation_of(db, PHONE_FR)).participant_id
    now = utcnow()
    end = privacy.assembly_end(assembly.retention, relay.calendar or _calendar())
    assert end == datetime(2027, 2, 6, 16, 0, tzinfo=UTC)
    # (when, who is due and why)
    table = [
        (now + timedelta(days=29), []),
        (now + timedelta(days=31), [(withdrawn, "after_withdrawal")]),
    ]
    async with db.sessions() as session:
        for when, expected in table:
            due = await privacy.due_people(session, assembly.retention, end, when)
            assert [(d.participant_id, d.rule) for d in due] == expected
        everyone = await privacy.due_people(
            session, assembly.retention, end, datetime(2027, 8, 6, 16, 1, tzinfo=UTC)
        )
        assert len(everyone) == await session.scalar(select(func.count()).select_from(Participant))
        assert {d.rule for d in everyone} == {"after_end", "after_withdrawal"}
        assert await privacy.due_organisers(session, assembly.retention, end, now) == []
    before = await _dump(db)
    await privacy.erase_due(relay, now=datetime(2027, 9, 1, tzinfo=UTC), dry_run=True)
    assert await _dump(db) == before


def _calendar():
    from scheduler.config import load_calendar
    from tests.conftest import EXAMPLE_ASSEMBLY

    return load_calendar(EXAMPLE_ASSEMBLY / "assembly.toml")


async def test_two_instances_erase_each_person_once(db, settings, invited, assembly):  # noqa: F811
    from bot.bootstrap import build

    calendar = _calendar()
    relays = [
        build(settings, assembly=assembly, calendar=calendar, sessions=db.sessions)
        for _ in range(2)
    ]
    when = datetime(2027, 8, 7, tzinfo=UTC)
    runs = await asyncio.gather(*(privacy.erase_due(r, now=when) for r in relays))
    async with db.sessions() as session:
        people = await session.scalar(select(func.count()).select_from(Participant))
        events = await session.scalar(select(func.count()).where(AuditEvent.kind == privacy.ERASED))
        assert (await audit.verify(session)).ok
    assert events == people == len(runs[0].erased) + len(runs[1].erased)


async def test_a_number_that_stopped_is_not_invited_again_after_erasure(
    db,
    relay,
    settings,
    invited,  # noqa: F811
    assembly,
    tmp_path,
):
    await say(db, relay, PHONE_FR, "STOP")
    pid = (await invitation_of(db, PHONE_FR)).participant_id
    assert await privacy.erase_request(relay, pid) is not None
    # The organiser imports the same pool file again and invites whoever is new.
    parsed = recruitment.parse_pool(tmp_path / "pool.csv", assembly)
    await recruitment.import_pool(db.sessions, assembly, parsed.rows, key=relay.invite_key)
    await recruitment.send_invitations(
        db.sessions, settings, assembly, "RiversideJuryBot", letters_path=tmp_path / "l.csv"
    )
    async with db.sessions() as session:
        again = await session.scalar(select(Contact).where(Contact.address == PHONE_FR))
        sent = await session.scalar(
            select(func.count()).where(
                OutboxMessage.address == PHONE_FR, OutboxMessage.status == "queued"
            )
        )
    assert again.participant_id != pid and again.opted_out_at is not None
    assert sent == 0


async def test_an_erased_person_is_no_longer_a_candidate_and_organisers_go_in_time(
    db,
    relay,
    invited,  # noqa: F811
    assembly,
):
    from store.models import utcnow as now_
    from store.organisers import Organiser
    from store.recruitment import draw_candidates

    await _register(db, relay, PHONE)
    await _register(db, relay, PHONE_FR)
    gone = (await invitation_of(db, PHONE)).participant_id
    await privacy.erase_request(relay, gone)
    async with db.sessions() as session:
        candidates = [c["participant_id"] for c in await draw_candidates(session)]
    assert gone not in candidates and len(candidates) == 1

    async with db.sessions.begin() as session:
        session.add(Organiser(name="Sam", phone="+447700900555", telegram_id="4242"))
    end = privacy.assembly_end(assembly.retention, _calendar())
    relay.calendar = _calendar()
    table = [(end + timedelta(days=364), 0), (end + timedelta(days=366), 1)]
    for when, expected in table:
        run = await privacy.erase_due(relay, now=when)
        assert run.organisers == expected, when
    async with db.sessions() as session:
        sam = await session.scalar(select(Organiser))
        assert (sam.name, sam.phone, sam.telegram_id) == (None, None, None)
        assert (
            await session.scalar(select(func.count()).where(AuditEvent.kind == "organisers.erased"))
            == 1
        )
    assert now_() < end  # the example's jury is still to come
