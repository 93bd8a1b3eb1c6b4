"""Ballots on a real database (SQLite and PostgreSQL), through the service's inbound turn:
every method voted by SMS (typed) and on Telegram (buttons), confirmed before it counts;
a revote replaces the vote and its receipt is listed as replaced; a webhook delivered twice
votes once; a reply after the close is answered and not counted; STOP ends the vote; the
results list every receipt with its choice, and the tally is an audit event."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from bot.services.ballots import opening, records
from bot.services.ballots.records import BallotProblem
from bot.services.ballots.tallying import digest
from store.ballots import BallotRoll, BallotVote
from store.models import AuditEvent, InboundMessage, OutboxMessage
from tests.ballot_world import (
    create_ballots,
    last_message,
    panel,
    press,
    say,
    tracker_of,
    voter,
)

# ballot, what an SMS voter types (then YES), what a Telegram voter presses (then Yes),
# the choice each vote carries in the published receipts list.
METHODS = [
    ("r1", ["1"], ["no"], "yes", "no"),
    ("first", ["bike"], ["walk"], "bike", "walk"),
    ("order", ["3 1"], ["night", "tram", "done"], ["night", "tram"], ["night", "tram"]),
    ("agree", ["4"], ["5"], 4, 5),
    ("pick2", ["3, 1"], ["lanes", "done"], ["tram", "night"], ["lanes"]),
    ("grades", ["1 3"], ["g1", "g2"], {"a": 2, "b": 0}, {"a": 1, "b": 2}),
]


async def _results(relay, ballot_id):
    closed = await records.close_ballot(relay, ballot_id)
    return closed.results


@pytest.mark.parametrize(("ballot", "typed", "pressed", "sms_vote", "tg_vote"), METHODS)
async def test_each_method_by_sms_and_telegram_counts_the_confirmed_vote(
    relay, db, ballot, typed, pressed, sms_vote, tg_vote
):
    sms, tg, idle = voter(1, "sms"), voter(2, "telegram"), voter(3, "sms")
    await panel(db.sessions, [sms, tg, idle])
    await create_ballots(db.sessions)
    opened = await opening.open_ballot(relay, ballot)
    assert (opened.voters, opened.asked) == (3, 3)

    for text in typed:
        await say(relay, sms, text)
    assert "Cast this vote?" in (await last_message(db.sessions, sms)).text
    async with db.sessions() as session:  # nothing counts before YES
        assert await session.scalar(select(func.count()).select_from(BallotVote)) == 0
    await say(relay, sms, "YES")
    sms_code = tracker_of((await last_message(db.sessions, sms)).text)

    for key in pressed:
        await press(relay, tg, key)
    await press(relay, tg, "yes")
    tg_code = tracker_of((await last_message(db.sessions, tg)).text)

    results = await _results(relay, ballot)
    assert results["voters"] == 3 and results["voted"] == 2
    assert sorted(results["trackers"]) == sorted(
        [[sms_code, sms_vote, "counted"], [tg_code, tg_vote, "counted"]]
    )
    assert results["tally"]["ballots"] == 2
    async with db.sessions() as session:
        event = (
            await session.execute(select(AuditEvent).where(AuditEvent.kind == "ballot.tallied"))
        ).scalar_one()
    assert event.data["trackers_sha256"] == digest(results["trackers"])
    assert event.data["results_sha256"] == results["results_sha256"]


async def test_revote_duplicates_close_and_late_replies(relay, db):
    a, b, late = voter(1, "sms"), voter(2, "sms", language="fr"), voter(3, "telegram")
    await panel(db.sessions, [a, b, late])
    await create_ballots(db.sessions)
    await opening.open_ballot(relay, "first")

    await say(relay, a, "1")
    # Twilio sends the same YES twice (a retried webhook): one vote, one receipt.
    for _ in range(2):
        from bot.services import turns

        await turns.receive(
            relay, channel="sms", address=a.address, text="YES", provider_id="SM-same"
        )
    first = tracker_of((await last_message(db.sessions, a)).text)
    await say(relay, a, "VOTE")
    await say(relay, a, "walk")
    await say(relay, a, "yes")
    second_text = (await last_message(db.sessions, a)).text
    assert "replaces the one before" in second_text
    second = tracker_of(second_text)

    await say(relay, b, "velo")  # the French word for the option
    await say(relay, b, "oui")
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(BallotVote)) == 3
        voted = (await session.execute(select(BallotRoll.voted))).scalars().all()
        assert sorted(voted) == [False, True, True]

    results = await _results(relay, "first")
    rows = {t: (c, s) for t, c, s in results["trackers"]}
    assert rows[first] == (None, "replaced")
    assert rows[second] == ("walk", "counted")
    assert results["tally"]["details"]["counts"] == {"bus": 0, "bike": 1, "walk": 1}

    await press(relay, late, "bus")  # the question was still open on their screen
    answer = (await last_message(db.sessions, late)).text
    assert answer == "Voting in “First priority” has closed; your reply was not counted."
    await say(relay, a, "VOTE")
    assert (await last_message(db.sessions, a)).text == "No ballot is open at the moment."
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(BallotVote)) == 3
        kinds = (await session.execute(select(AuditEvent.kind))).scalars().all()
    assert kinds.count("ballot.vote_cast") == 3 and "ballot.too_late" in kinds


async def test_stop_during_a_vote_ends_it_and_nothing_more_is_sent(relay, db):
    a = voter(1, "sms")
    await panel(db.sessions, [a])
    await create_ballots(db.sessions)
    await opening.open_ballot(relay, "r1")
    await say(relay, a, "1")
    await say(relay, a, "STOP")
    assert "unsubscribed" in (await last_message(db.sessions, a)).text
    async with db.sessions() as session:
        before = await session.scalar(select(func.count()).select_from(OutboxMessage))
    await say(relay, a, "1")  # (YES would be Twilio's word to subscribe again)
    await say(relay, a, "VOTE")
    await opening.open_ballot(relay, "first")  # a later ballot does not ask them
    async with db.sessions() as session:
        after = await session.scalar(select(func.count()).select_from(OutboxMessage))
        assert await session.scalar(select(func.count()).select_from(BallotVote)) == 0
    assert after == before
    results = await _results(relay, "r1")
    # STOP is a withdrawal: off the roll, so neither a voter nor told the results.
    assert results["voters"] == 0 and results["voted"] == 0
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxMessage)) == after


async def test_what_a_voter_types_is_not_stored(relay, db):
    a = voter(1, "sms")
    await panel(db.sessions, [a])
    await create_ballots(db.sessions)
    await opening.open_ballot(relay, "first")
    await say(relay, a, "bike")
    await say(relay, a, "yes")
    async with db.sessions() as session:
        texts = (await session.execute(select(InboundMessage.text))).scalars().all()
    assert texts == ["", ""]


async def test_opening_and_closing_refuse_what_cannot_be_done(relay, db):
    await create_ballots(db.sessions)
    with pytest.raises(BallotProblem, match="Nobody may vote in r1"):
        await opening.open_ballot(relay, "r1")
    with pytest.raises(BallotProblem, match="No ballot 'nope'. Ballots: agree, first"):
        await opening.open_ballot(relay, "nope")
    await panel(db.sessions, [voter(1)])
    await opening.open_ballot(relay, "r1")
    with pytest.raises(BallotProblem, match="already open"):
        await opening.open_ballot(relay, "r1")
    with pytest.raises(BallotProblem, match="is draft, not open. Open it first"):
        await records.close_ballot(relay, "first")
    results = await _results(relay, "r1")
    assert json.loads(json.dumps(results)) == results


async def test_a_ballot_for_one_round_or_one_table_of_the_small_groups(relay, db):
    from store.groups import GroupRun, GroupSeat

    voters = [voter(n) for n in range(1, 7)]
    await panel(db.sessions, voters)
    async with db.sessions.begin() as session:
        session.add(
            GroupRun(run_id="G1", seed="1", algorithm="t", input_sha256="0", payload={}, result={})
        )
        await session.flush()
        for n, v in enumerate(voters):
            session.add(
                GroupSeat(
                    run_id="G1",
                    round=1,
                    table_no=1 + n % 2,
                    letter="ABC"[n // 2],
                    participant_id=v.id,
                )
            )
        session.add(
            GroupSeat(run_id="G1", round=2, table_no=1, letter="A", participant_id=voters[0].id)
        )
    async with db.sessions() as session:
        assert await opening.eligible(session, "panel") == sorted(v.id for v in voters)
        assert await opening.eligible(session, "round:1") == sorted(v.id for v in voters)
        assert await opening.eligible(session, "table:1:2") == [
            voters[1].id,
            voters[3].id,
            voters[5].id,
        ]
        assert await opening.eligible(session, "round:2") == [voters[0].id]
        assert await opening.eligible(session, "table:3:1") == []
