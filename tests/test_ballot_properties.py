"""Property: whatever voters do (vote, change their vote, have a webhook delivered twice,
confirm at the same moment as another, leave a choice unconfirmed), after the close the
tally is the last confirmed vote of each voter, each voter's last receipt carries it and
their earlier ones read "replaced", and nothing links a vote to a voter: no key, no link,
no choice waiting in anyone's conversation, no link in a dump of the database."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import uuid
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from bot.bootstrap import build
from bot.services import turns
from bot.services.ballots import opening, records
from bot.services.ballots.voting import voter_link
from bot.settings import Settings
from store.ballots import Ballot, BallotVote
from store.db import make_engine, sessionmaker
from store.models import Participant
from tests.ballot_world import create_ballots, messages, panel, say, tracker_of, voter

OPTIONS = ["bus", "bike", "walk"]
VOTERS = 4
STEP = st.tuples(
    st.sampled_from(["vote", "twice", "together", "unconfirmed"]),
    st.integers(0, VOTERS - 1),
    st.integers(0, len(OPTIONS) - 1),
)


async def _receipts(sessions, v) -> list[str]:
    return [tracker_of(m) for m in await messages(sessions, v) if "vote is cast" in m]


async def _run(steps, path) -> None:
    url = f"sqlite+aiosqlite:///{path}"
    engine = make_engine(url)
    sessions = sessionmaker(engine)
    relay = build(Settings(CONCORDER_DATABASE_URL=url, _env_file=None), sessions=sessions)
    voters = [voter(n, "sms") for n in range(1, VOTERS + 1)]
    try:
        await panel(sessions, voters)
        await create_ballots(sessions)
        await opening.open_ballot(relay, "first")
        last: dict[str, str] = {}
        for kind, who, option in steps:
            v = voters[who]
            await say(relay, v, "VOTE")
            await say(relay, v, str(option + 1))
            if kind == "vote":
                await say(relay, v, "yes")
            elif kind == "twice":  # the same webhook delivered twice, at once
                same = f"SM{uuid.uuid4().hex}"
                await asyncio.gather(
                    *(
                        turns.receive(
                            relay, channel="sms", address=v.address, text="yes", provider_id=same
                        )
                        for _ in range(2)
                    )
                )
            elif kind == "together":  # another voter confirms at the same moment
                w = voters[(who + 1) % VOTERS]
                await say(relay, w, "VOTE")
                await say(relay, w, "1")
                await asyncio.gather(say(relay, v, "yes"), say(relay, w, "yes"))
                last[w.id] = OPTIONS[0]
            if kind != "unconfirmed":
                last[v.id] = OPTIONS[option]
        async with sessions() as session:
            key = (await session.get(Ballot, "first")).link_key
        links = [voter_link(key, "first", v.id) for v in voters]
        closed = await records.close_ballot(relay, "first")

        results = closed.results
        assert results["tally"]["details"]["counts"] == {
            o: Counter(last.values())[o] for o in OPTIONS
        }
        published = {t: (c, s) for t, c, s in results["trackers"]}
        receipts = 0
        for v in voters:
            codes = await _receipts(sessions, v)
            receipts += len(codes)
            assert len(codes) == len(set(codes))
            if v.id in last:
                assert published[codes[-1]] == (last[v.id], "counted")
            assert all(published[c] == (None, "replaced") for c in codes[:-1])
        assert len(published) == receipts
        async with sessions() as session:
            assert (await session.get(Ballot, "first")).link_key is None
            stored = (await session.execute(select(BallotVote.voter_link))).scalars().all()
            assert stored == [None] * len(published)
            for state in (await session.execute(select(Participant.state))).scalars():
                assert set(state.get("data", {}).get("ballot", {})) <= {"id"}
        with sqlite3.connect(path) as connection:
            dump = "\n".join(connection.iterdump())
        assert key not in dump and not [link for link in links if link in dump]
    finally:
        await engine.dispose()


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEP, min_size=1, max_size=10))
def test_any_voting_sequence_counts_last_votes_and_leaves_no_link(steps, sqlite_template, tmp_path):
    path = tmp_path / f"{uuid.uuid4().hex}.db"
    shutil.copy(sqlite_template, path)
    try:
        asyncio.run(_run(steps, path))
    finally:
        path.unlink(missing_ok=True)
