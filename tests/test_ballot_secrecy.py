"""What a full dump of the database reveals about who voted how, during a ballot and after
its close (SQLite iterdump and pg_dump, and the database's own files), and that nobody
votes twice whatever arrives at once.

During the vote the operator can link: the ballot's key is stored and each vote carries
its voter's keyed link, so a later vote can replace it (README, "Ballots: what secrecy
rests on"). After the close nothing links a vote to a voter: no key, no link, no id or
row order from the time of voting, no receipt code outside the published results.
"""

from __future__ import annotations

import asyncio
import random
import re

from sqlalchemy import func, select

from bot.bootstrap import build
from bot.channels.simulator import SimulatorTransport
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.ratelimit import DeliveryLimits
from bot.services.ballots import opening, records
from bot.services.ballots.voting import voter_link
from store.ballots import Ballot, BallotRoll, BallotVote
from store.db import make_engine, sessionmaker
from store.models import AuditEvent, utcnow
from tests.ballot_world import (
    create_ballots,
    last_message,
    messages,
    panel,
    press,
    say,
    tracker_of,
    voter,
)
from tests.test_erasure import _dump, _files_on_disk

OPTIONS = ["bus", "bike", "walk"]


def tables_of(dump: str) -> dict[str, list[str]]:
    """The dump's data lines by table (SQLite INSERT lines, pg_dump COPY sections)."""
    found: dict[str, list[str]] = {}
    current = None
    for line in dump.splitlines():
        if match := re.match(r'INSERT INTO "?(\w+)"? VALUES', line):
            found.setdefault(match[1], []).append(line)
        elif match := re.match(r"COPY public\.(\w+) ", line):
            current = match[1]
        elif current and not line.strip():
            current = None
        elif current:
            found.setdefault(current, []).append(line)
    return found


async def _vote(relay, db, v, option: str) -> str:
    if v.channel == "sms":
        await say(relay, v, str(OPTIONS.index(option) + 1))
        await say(relay, v, "yes")
    else:
        await press(relay, v, option)
        await press(relay, v, "yes")
    text = (await last_message(db.sessions, v)).text
    return tracker_of(text)


def delivered(db, settings, now=None) -> Dispatcher:
    """The real dispatcher on the built-in simulator (at `now`): the messages are sent."""
    transports = {channel: SimulatorTransport(channel) for channel in ("sms", "telegram")}
    clock = (lambda: now) if now else utcnow
    return Dispatcher(db.sessions, transports, settings, clock, limits=DeliveryLimits.off())


def shown(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


async def test_a_dump_links_votes_only_while_the_ballot_is_open(relay, db, settings):
    voters = [voter(n) for n in range(1, 15)]
    await panel(db.sessions, voters)
    await create_ballots(db.sessions)
    await opening.open_ballot(relay, "first")
    rng = random.Random(5)
    cast: list[tuple[str, str]] = []  # (tracker, option) in the order cast
    for v in voters:
        cast.append((await _vote(relay, db, v, rng.choice(OPTIONS)), v.id))
    for v in voters[:3]:  # three change their minds
        await say(relay, v, "VOTE")
        cast.append((await _vote(relay, db, v, "walk"), v.id))
    async with db.sessions() as session:
        key = (await session.get(Ballot, "first")).link_key
        old_ids = [str(i) for i in (await session.execute(select(BallotVote.id))).scalars()]
    links = {v.id: voter_link(key, "first", v.id) for v in voters}

    during = (await _dump(db)).decode("utf-8", "replace")
    # While open, the key and the links are there: whoever holds the dump can link.
    assert key in during and all(link in during for link in links.values())
    # And the receipts the voters were sent, and their choices read back, are in the outbox.
    assert all(shown(code) in during for code, _ in cast)
    assert "You chose: " in during

    await delivered(db, settings).drain()
    await records.close_ballot(relay, "first")
    after = (await _dump(db)).decode("utf-8", "replace")
    data = tables_of(after)
    assert key not in after
    assert not [link for link in links.values() if link in after]
    assert not [i for i in old_ids if i in after and i.replace("-", "") not in after]
    # A receipt code is only in the votes and the published results, nowhere else.
    for code, _ in cast:
        holders = {table for table, lines in data.items() if any(code in x for x in lines)}
        assert holders == {"ballot_votes", "ballots"}, (code, holders)
        assert shown(code) not in after
    assert "You chose: " not in after
    # The rows' order is not the order of voting (17 votes: 1 chance in 3.5e14).
    in_dump = [code for line in data["ballot_votes"] for code, _ in cast if code in line]
    assert len(in_dump) == len(cast) and in_dump != [c for c, _ in cast]
    # No time and no voter in a vote; no vote in the roll; the audit says who, never what.
    columns = set(BallotVote.__table__.columns.keys())
    assert columns == {"id", "ballot_id", "choice", "tracker", "status", "voter_link"}
    assert set(BallotRoll.__table__.columns.keys()) == {
        "ballot_id",
        "participant_id",
        "voted",
        "asked",
        "withdrawn",
    }
    async with db.sessions() as session:
        assert (
            await session.scalar(select(func.count()).where(BallotVote.voter_link.is_not(None)))
            == 0
        )
        events = (
            (await session.execute(select(AuditEvent).where(AuditEvent.kind == "ballot.vote_cast")))
            .scalars()
            .all()
        )
    assert len(events) == len(cast) and all(e.data == {"ballot": "first"} for e in events)

    # The bytes are gone from the files too (secure_delete; VACUUM FULL).
    secrets_ = [key, *links.values()]
    for _ in range(20):
        files = await _files_on_disk(db)
        left = {n for n, blob in files.items() for s in secrets_ if s.encode() in blob}
        if not left:
            break
        await asyncio.sleep(0.5)
        await records.reclaim(db.engine)
    assert not left


async def test_nobody_votes_twice_whatever_arrives_at_once(relay, db, settings):
    """Two instances (two engines on one database) take the same voter's YES at once, and
    the close races the last votes: one vote each, and every vote answered as cast is in
    the results with its receipt."""
    voters = [voter(n) for n in range(1, 9)]
    await panel(db.sessions, voters)
    await create_ballots(db.sessions)
    await opening.open_ballot(relay, "first")
    other_engine = make_engine(db.url)
    other = build(settings, sessions=sessionmaker(other_engine))
    try:
        for v in voters:
            await say(relay, v, "2") if v.channel == "sms" else await press(relay, v, "bike")
        sms = [v for v in voters if v.channel == "sms"]
        await asyncio.gather(*(say(r, v, "yes") for v in sms[:2] for r in (relay, other)))
        async with db.sessions() as session:
            assert await session.scalar(select(func.count()).select_from(BallotVote)) == 2

        late = [v for v in voters if v not in sms[:2]]

        async def confirm(v):
            if v.channel == "sms":
                await say(other, v, "yes")
            else:
                await press(other, v, "yes")

        results = await asyncio.gather(
            records.close_ballot(relay, "first"), *(confirm(v) for v in late)
        )
    finally:
        await other_engine.dispose()
    published = {code for code, _, _ in results[0].results["trackers"]}
    answers = [await messages(db.sessions, v) for v in voters]
    cast = [tracker_of(a) for said in answers for a in said if "Your vote is cast" in a]
    closed = [v for v, said in zip(voters, answers, strict=True) if "not counted" in said[-1]]
    assert set(cast) == published and len(cast) + len(closed) == len(voters)
    # Everyone is told the results once, each as the roll saw them at the close.
    told = [[a for a in said if "of 8 voted" in a] for said in answers]
    assert all(len(t) == 1 for t in told), told
    checks = sum("Check your vote" in t[0] for t in told)
    assert checks == len(cast) and len(told) - checks == len(closed)
    assert results[0].results["tally"]["details"]["counts"]["bike"] == len(cast)
