"""At the close everyone on the roll is told the results in their own language, in the
close's transaction; someone who withdraws while a ballot is open (WITHDRAW, STOP, an
organiser's `concorder withdraw`, erasure) leaves its roll, and a vote they cast stays
counted."""

from __future__ import annotations

from sqlalchemy import select, update

from bot.services.ballots import opening, records
from bot.services.privacy.erase import erase_person
from bot.services.withdrawals import withdraw_person
from store.ballots import Ballot, BallotRoll
from store.models import AuditEvent, Contact, OutboxMessage, Participant, utcnow
from tests.ballot_world import create_ballots, messages, panel, say, tracker_of, voter


async def results_told(db, v) -> list[OutboxMessage]:
    async with db.sessions() as session:
        return list(
            (
                await session.execute(
                    select(OutboxMessage).where(
                        OutboxMessage.participant_id == v.id,
                        OutboxMessage.kind == "ballot_result",
                    )
                )
            ).scalars()
        )


async def test_everyone_on_the_roll_is_told_the_results_in_their_language(relay, db):
    a, b = voter(1, "sms"), voter(2, "telegram", language="fr")
    gone = voter(3, "telegram")  # the bot was blocked: no way to reach them
    await panel(db.sessions, [a, b, gone])
    await create_ballots(db.sessions)
    await opening.open_ballot(relay, "r1")
    async with db.sessions.begin() as session:
        await session.execute(
            update(Contact).where(Contact.participant_id == gone.id).values(unreachable_at=utcnow())
        )
    await say(relay, a, "2")
    await say(relay, a, "YES")
    code = tracker_of((await messages(db.sessions, a))[-1])

    dry = await records.close_ballot(relay, "r1", dry_run=True)
    assert dry.told == 0 and not await results_told(db, a)

    closed = await records.close_ballot(relay, "r1")
    assert closed.told == 2 and (closed.voters, closed.voted) == (3, 1)
    (to_a,) = await results_told(db, a)
    (to_b,) = await results_told(db, b)
    assert not await results_told(db, gone)
    assert to_a.text == (
        "Voting in “Recommendation 1” has closed: 1 of 3 voted.\n"
        "The quorum of 2 voters was not met.\n"
        "Result: Yes 0, No 1. Chosen: No.\n"
        "Check your vote: find the receipt code we gave you when you voted in the list of "
        "receipts published at riverside.example.org/vote. It must show the vote you cast, "
        "or “replaced” if you voted again later."
    ).replace("“", '"').replace("”", '"')  # SMS: plain quotes
    assert to_b.text.startswith("Le vote « Recommandation 1 » est clos. Participation : 1 sur 3.")
    assert "Vous n'avez pas voté" in to_b.text and "(en français)" in to_b.text
    async with db.sessions() as session:
        ballot = await session.get(Ballot, "r1")
        told = (
            await session.execute(
                select(AuditEvent.data).where(AuditEvent.kind == "ballot.results_sent")
            )
        ).scalar_one()
    # Queued with the close itself, and the receipt they check is in what was published.
    assert to_a.created_at == ballot.closed_at == to_b.created_at
    assert told == {"ballot": "r1", "people": 2}
    assert [code, "no", "counted"] in ballot.results["trackers"]

    # A later close blanks the ballot conversation's messages, never the results.
    await opening.open_ballot(relay, "first")
    await records.close_ballot(relay, "first")
    (still,) = [m for m in await results_told(db, a) if "Recommendation 1" in m.text]
    assert still.text == to_a.text


async def roll(db) -> dict[str, tuple[bool, bool]]:
    async with db.sessions() as session:
        rows = await session.execute(
            select(BallotRoll.participant_id, BallotRoll.voted, BallotRoll.withdrawn).where(
                BallotRoll.ballot_id == "first"
            )
        )
        return {pid: (voted, withdrawn) for pid, voted, withdrawn in rows}


async def test_withdrawing_while_a_ballot_is_open_leaves_its_roll(relay, db, assembly):
    voted_then_left, left, by_organiser, erased, stays, stopped = (
        voter(n, "sms") for n in range(1, 7)
    )
    everyone = [voted_then_left, left, by_organiser, erased, stays, stopped]
    await panel(db.sessions, everyone, invited=True)
    await create_ballots(db.sessions)
    await opening.open_ballot(relay, "first")
    for v in (voted_then_left, stays):
        await say(relay, v, "bike")
        await say(relay, v, "yes")

    await say(relay, voted_then_left, "WITHDRAW")
    await say(relay, voted_then_left, "1")  # a panel member is asked first
    await say(relay, left, "bus")  # a choice waiting for YES
    await say(relay, left, "WITHDRAW")
    await say(relay, left, "1")
    await say(relay, stopped, "STOP")
    async with db.sessions.begin() as session:
        person = await session.get(Participant, by_organiser.id)
        await withdraw_person(session, relay, person, reason="moved away")
    async with db.sessions.begin() as session:
        await erase_person(session, erased.id, reason="asked", key=b"k" * 32, now=utcnow())

    # Only the vote cast before leaving keeps a place on the roll, marked; nobody else left.
    assert await roll(db) == {voted_then_left.id: (True, True), stays.id: (True, False)}
    async with db.sessions() as session:
        state = (await session.get(Participant, left.id)).state
    assert "ballot" not in state["data"]  # the unconfirmed choice went with them

    # A withdrawn voter cannot vote again, even after START.
    before = len(await messages(db.sessions, voted_then_left))
    await say(relay, voted_then_left, "START")
    await say(relay, voted_then_left, "VOTE")
    await say(relay, voted_then_left, "walk")
    await say(relay, voted_then_left, "yes")
    said = (await messages(db.sessions, voted_then_left))[before:]
    assert not any("Cast this vote?" in s or "receipt code" in s for s in said), said

    closed = await records.close_ballot(relay, "first")
    # Their vote counts, so they count in the turnout; the others are not voters any more.
    assert (closed.voters, closed.voted) == (2, 2)
    assert closed.results["tally"]["details"]["counts"] == {"bus": 0, "bike": 2, "walk": 0}
    assert closed.results["quorum"] == 0 or closed.results["quorum_met"]
    assert closed.told == 1
    for v in everyone:
        assert bool(await results_told(db, v)) == (v is stays), v
