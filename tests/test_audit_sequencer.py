"""Audit events are written unlinked and linked into the chain by the sequencer: nothing is
skipped or linked twice, whatever the commit order, and the chain is the same computation."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.services import audit_sequencer
from store import audit
from store.db import make_engine, sessionmaker
from store.models import AuditEvent, AuditHead


async def linked_events(db) -> list[AuditEvent]:
    async with db.sessions() as session:
        return list((await session.execute(select(AuditEvent).order_by(AuditEvent.seq))).scalars())


async def test_the_chain_is_the_same_computation_as_before(db):
    at = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    written = [("vote.cast", {"n": n, "word": "élu"}, f"P{n}") for n in range(4)]
    async with db.sessions.begin() as session:
        for kind, data, pid in written[:2]:
            await audit.append(session, kind, data, participant_id=pid, at=at)
    async with db.sessions.begin() as session:
        await audit.append_many(session, written[2:], at)
    async with db.sessions() as session:
        assert (await audit.verify(session)).pending == 0  # verify linked them first
    prev = audit.GENESIS
    for seq, (kind, data, pid) in enumerate(written, start=1):
        prev = audit.link_hash(prev, audit.canonical(seq, at, kind, pid, data))
    events = await linked_events(db)
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert events[-1].hash == prev
    async with db.sessions() as session:
        result = await audit.verify(session)
        head = await session.get(AuditHead, 1)
    assert (result.ok, result.checked, result.head_hash) == (True, 4, prev)
    assert (head.seq, head.hash) == (4, prev)


async def test_concurrent_appends_are_all_linked_once(db):
    other = make_engine(db.url)  # a second instance on the same database
    stop = asyncio.Event()
    sequencers = [
        asyncio.create_task(audit_sequencer.run(sessions, stop, interval=0.01))
        for sessions in (db.sessions, sessionmaker(other))
    ]

    async def write(n: int) -> None:
        async with db.sessions.begin() as session:
            await audit.append(session, "message.in", {"n": n}, participant_id=f"P{n}")
            await asyncio.sleep(0)
            await audit.append(session, "message.answered", {"n": n}, participant_id=f"P{n}")

    await asyncio.gather(*(write(n) for n in range(60)))
    stop.set()
    await asyncio.gather(*sequencers)
    await other.dispose()
    events = await linked_events(db)
    assert [e.seq for e in events] == list(range(1, 121))
    assert sorted(e.data["n"] for e in events) == sorted(list(range(60)) * 2)
    # One transaction's events stay in their order.
    for n in range(60):
        kinds = [e.kind for e in events if e.data["n"] == n]
        assert kinds == ["message.in", "message.answered"]
    async with db.sessions() as session:
        result = await audit.verify(session)
    assert (result.ok, result.checked, result.pending) == (True, 120, 0)


# PostgreSQL only: SQLite runs one writing transaction at a time, so ids commit in order.
@pytest.mark.parametrize("db", ["postgresql"], indirect=True)
async def test_an_event_committed_after_a_higher_one_is_linked_next(db):
    early = db.sessions()
    await early.begin()
    await audit.append(early, "slow", {})  # the lower id, committed last
    async with db.sessions.begin() as session:
        await audit.append(session, "fast", {})
    assert await audit.sequence_all(db.sessions) == 1
    await early.commit()
    await early.close()
    assert await audit.sequence_all(db.sessions) == 1
    events = await linked_events(db)
    assert [(e.seq, e.kind) for e in events] == [(1, "fast"), (2, "slow")]
    async with db.sessions() as session:
        assert (await audit.verify(session)).ok


async def test_a_rolled_back_event_leaves_no_gap(db):
    async with db.sessions.begin() as session:
        await audit.append(session, "kept", {"n": 1})
    session = db.sessions()
    await session.begin()
    await audit.append(session, "dropped", {})
    await session.rollback()
    await session.close()
    async with db.sessions.begin() as session:
        await audit.append(session, "kept", {"n": 2})
    async with db.sessions() as session:
        result = await audit.verify(session)
    assert (result.ok, result.checked) == (True, 2)
    assert [e.data["n"] for e in await linked_events(db)] == [1, 2]


async def test_a_crash_before_sequencing_loses_nothing(db):
    engine = make_engine(db.url)
    async with sessionmaker(engine).begin() as session:
        for n in range(3):
            await audit.append(session, "before.crash", {"n": n})
    await engine.dispose()  # the process is gone before any sequencer ran
    async with db.sessions() as session:
        assert await audit.pending(session) == 3
    async with db.sessions() as session:
        result = await audit.verify(session)
    assert (result.ok, result.checked, result.pending) == (True, 3, 0)


async def test_verify_inside_a_transaction_reports_what_waits(db):
    async with db.sessions.begin() as session:
        await audit.append(session, "first", {})
    await audit.sequence_all(db.sessions)
    async with db.sessions.begin() as session:
        await audit.append(session, "second", {})
    async with db.sessions() as session:
        await session.execute(select(AuditHead))  # a transaction is open: nothing is linked
        result = await audit.verify(session)
    assert (result.ok, result.checked, result.pending) == (True, 1, 1)


async def test_a_linked_append_knows_its_seq_before_commit(db):
    async with db.sessions.begin() as session:
        await audit.append(session, "waiting", {})
    async with db.sessions.begin() as session:
        event = await audit.append(
            session,
            "draw.completed",
            {"draw": "D1"},
            at=datetime.now(UTC) - timedelta(seconds=1),
            linked=True,
        )
        assert event.seq == 2 and event.hash is not None
    async with db.sessions() as session:
        result = await audit.verify(session)
    assert (result.ok, result.checked, result.head_hash) == (True, 2, event.hash)
