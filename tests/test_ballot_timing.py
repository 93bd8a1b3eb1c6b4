"""Ballots of the assembly file open and close at their times, once, however many instances
tick at the same moment; a ballot already opened is never changed by the file."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import func, select

from bot.bootstrap import build
from bot.services.ballots.timing import tick
from store.ballots import Ballot, BallotRoll
from store.db import make_engine, sessionmaker
from store.models import AuditEvent, OutboxMessage
from tests.ballot_world import last_message, panel, voter
from tests.test_ballot_secrecy import delivered

OPENS = datetime(2027, 2, 6, 15, 0, tzinfo=UTC)
CLOSES = datetime(2027, 2, 6, 15, 45, tzinfo=UTC)


async def test_the_example_ballot_opens_and_closes_on_time_once(relay, assembly, db, settings):
    voters = [voter(n, language="fr" if n == 2 else "en") for n in range(1, 4)]
    await panel(db.sessions, voters)
    assert await tick(relay, OPENS.replace(hour=14)) == []
    async with db.sessions() as session:
        ballot = await session.get(Ballot, "fares")
        assert (ballot.status, ballot.source, ballot.closes_at) == ("draft", "assembly", CLOSES)

    other_engine = make_engine(db.url)
    other = build(settings, assembly=assembly, sessions=sessionmaker(other_engine))
    try:
        done = await asyncio.gather(tick(relay, OPENS), tick(other, OPENS))
    finally:
        await other_engine.dispose()
    assert sorted(sum(done, [])) == ["opened fares"]
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(BallotRoll)) == 3
    asked = (await last_message(db.sessions, voters[1])).text
    assert asked.startswith("Recommandation 3 : tarifs\n")

    assert await tick(relay, CLOSES.replace(minute=44)) == []
    assert await tick(relay, CLOSES) == ["closed fares"]
    async with db.sessions() as session:
        kinds = (await session.execute(select(AuditEvent.kind))).scalars().all()
        ballot = await session.get(Ballot, "fares")
    assert kinds.count("ballot.opened") == kinds.count("ballot.tallied") == 1
    assert ballot.status == "closed" and ballot.results["voters"] == 3
    assert not ballot.results["quorum_met"]  # 0.75 of 3 is 3 voters; nobody voted

    # The questions were still waiting to be sent at the close: once sent, the next tick
    # (no ballot open) blanks them as the close blanked those already sent.
    assert await _ballot_texts(db) == {"queued"}
    await delivered(db, settings, CLOSES).drain()
    await tick(relay, CLOSES)
    assert await _ballot_texts(db) == {""}


async def _ballot_texts(db) -> set[str]:
    async with db.sessions() as session:
        rows = await session.execute(
            select(OutboxMessage.status, OutboxMessage.text).where(OutboxMessage.kind == "ballot")
        )
        return {"queued" if status == "queued" else text for status, text in rows}


async def test_an_opening_a_crash_interrupted_is_finished_by_the_next_tick(relay, db, monkeypatch):
    from bot.services.ballots import opening
    from tests.ballot_world import create_ballots

    voters = [voter(n) for n in range(1, 6)]
    await panel(db.sessions, voters)
    await create_ballots(db.sessions)

    async def crashed(*args, **kwargs):  # the process died once the ballot was open
        raise SystemExit

    real = opening.ask_voters
    monkeypatch.setattr(opening, "ask_voters", crashed)
    try:
        await opening.open_ballot(relay, "r1")
    except SystemExit:
        pass
    monkeypatch.setattr(opening, "ask_voters", real)
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    monkeypatch.setattr(opening, "CHUNK", 2)  # three chunks
    await tick(relay)
    for v in voters:
        assert (await last_message(db.sessions, v)).text.startswith("Recommendation 1\n")
    await tick(relay)  # nobody is asked twice
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == 5


async def test_instances_starting_together_store_the_files_ballot_once(
    relay, assembly, db, settings
):
    # Every instance reads the assembly's ballots on its first tick: on a fresh database
    # two of them find no ballot and both insert it. Neither may fail for it.
    other_engine = make_engine(db.url)
    other = build(settings, assembly=assembly, sessions=sessionmaker(other_engine))
    try:
        early = OPENS.replace(hour=14)
        done = await asyncio.gather(*(tick(each, early) for each in (relay, other) * 2))
    finally:
        await other_engine.dispose()
    assert done == [[]] * 4
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Ballot)) == 1
        kinds = (await session.execute(select(AuditEvent.kind))).scalars().all()
    assert kinds.count("ballot.created") == 1
