"""The opinion map's statements as the panel and the organisers meet them: sent to the
confirmed panel, answered by SMS letters or words and by Telegram buttons, the last answer
counting, proposals kept for approval, and nothing recorded twice when the same answer
arrives twice at once (two instances on one database, SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import func, select

from bot.bootstrap import build
from bot.services.synthesis import conversation, records
from bot.services.synthesis.voting import record_answer
from flows import events
from store.db import make_engine, sessionmaker
from store.models import AuditEvent, Participant, utcnow
from store.statements import APPROVED, PROPOSED, Statement, StatementVote
from tests.ballot_world import last_message, messages, panel, press, say, voter
from tests.test_draw import concorder

BUSES = {"en": "Buses should be free for everyone under 18.", "fr": "Bus gratuits avant 18 ans."}
PARKS = {"en": "The town needs more parks.", "fr": "La ville a besoin de plus de parcs."}


async def _statements(db, *texts: dict[str, str]) -> list[int]:
    async with db.sessions.begin() as session:
        return [await records.add(session, t) for t in texts]


async def _votes(db) -> dict[tuple[str, int], int]:
    async with db.sessions() as session:
        rows = await session.execute(
            select(StatementVote.participant_id, StatementVote.statement_id, StatementVote.vote)
        )
        return {(p, s): v for p, s, v in rows}


async def test_the_panel_answers_by_letters_words_and_buttons(relay, db):
    sms, tg, fr = voter(1, "sms"), voter(2, "telegram"), voter(3, "sms", "fr")
    await panel(db.sessions, [sms, tg, fr])
    first, second = await _statements(db, BUSES, PARKS)
    sent = await records.send(relay)
    assert (sent.statements, sent.people, sent.asked) == (2, 3, 3)

    assert "Reply A to agree, D to disagree or P to pass." in (await messages(db.sessions, sms))[-1]
    await say(relay, sms, "a")
    await say(relay, sms, "Disagree")
    await press(relay, tg, "disagree")
    await press(relay, tg, "pass")
    assert "Bus gratuits avant 18 ans." in (await messages(db.sessions, fr))[-1]
    await say(relay, fr, "d'accord")
    await say(relay, fr, "maybe")  # not an answer: asked again
    await say(relay, fr, "pas d'accord")

    assert await _votes(db) == {
        (sms.id, first): 1,
        (sms.id, second): -1,
        (tg.id, first): -1,
        (tg.id, second): 0,
        (fr.id, first): 1,
        (fr.id, second): -1,
    }
    said = await messages(db.sessions, fr)
    assert any("Répondez A" in m or "A pour" in m for m in said[-3:])
    assert "OPINIONS" in said[-1] or "AVIS" in said[-1]


async def test_the_last_answer_counts(relay, db):
    sms = voter(1, "sms")
    await panel(db.sessions, [sms])
    (only,) = await _statements(db, BUSES)
    await records.send(relay)
    await say(relay, sms, "A")
    await say(relay, sms, "opinions")  # all answered: round again
    assert BUSES["en"] in (await messages(db.sessions, sms))[-1]
    await say(relay, sms, "D")
    assert await _votes(db) == {(sms.id, only): -1}
    async with db.sessions() as session:
        row = await session.get(StatementVote, (only, sms.id))
        assert row.answers == 2


async def test_a_participants_proposal_waits_for_approval_then_goes_out(relay, db):
    sms, other = voter(1, "sms"), voter(2, "sms")
    await panel(db.sessions, [sms, other])
    await _statements(db, BUSES)
    await records.send(relay)
    await say(relay, sms, "A")
    await say(relay, sms, "PROPOSE Cycle lanes should be separated from cars.")
    assert "organisers will read" in (await messages(db.sessions, sms))[-1]
    async with db.sessions() as session:
        proposal = (
            await session.execute(select(Statement).where(Statement.status == PROPOSED))
        ).scalar_one()
        person = await session.get(Participant, sms.id)
    assert proposal.texts == {"en": "Cycle lanes should be separated from cars."}
    assert proposal.participant_id == sms.id
    assert "statement_proposed" not in str(person.state)  # the text lives in one place
    # No one is asked it before it is approved.
    async with db.sessions() as session:
        assert [r.id for r in await records.listing(session, APPROVED)] != [proposal.id]
    async with db.sessions.begin() as session:
        await records.decide(
            session, proposal.id, approve=True, texts={"fr": "Des pistes cyclables séparées."}
        )
    sent = await records.send(relay)
    assert sent.statements == 1
    await say(relay, other, "P")  # the first one; the new one comes next
    assert "Cycle lanes" in (await messages(db.sessions, other))[-1]
    # The audit trail has the proposal's length, never its text.
    async with db.sessions() as session:
        data = (
            await session.execute(
                select(AuditEvent.data).where(AuditEvent.kind == events.STATEMENT_PROPOSED)
            )
        ).scalar_one()
    assert "Cycle" not in str(data)


async def test_the_same_answer_twice_at_once_is_recorded_once(relay, db, settings):
    """A double press of one button reaching two instances at once, and the upsert itself
    racing on two connections: one row each time, no error."""
    tg, sms = voter(2, "telegram"), voter(1, "sms")
    await panel(db.sessions, [tg, sms])
    (only,) = await _statements(db, BUSES)
    await records.send(relay)
    other_engine = make_engine(db.url)
    other = build(settings, sessions=sessionmaker(other_engine))
    try:
        message = await last_message(db.sessions, tg)
        assert BUSES["en"] in message.text
        agree = next(b["data"] for b in message.buttons if b["data"].endswith(":agree"))
        await asyncio.gather(say(relay, tg, button=agree), say(other, tg, button=agree))

        async def answer(sessions, vote):
            async with sessions.begin() as session:
                await record_answer(session, only, sms.id, vote, utcnow())

        await asyncio.gather(answer(db.sessions, 1), answer(other.sessions, 1))
    finally:
        await other_engine.dispose()
    assert await _votes(db) == {(tg.id, only): 1, (sms.id, only): 1}
    async with db.sessions() as session:
        answered = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.kind == events.STATEMENT_ANSWERED, AuditEvent.participant_id == tg.id)
        )
    assert answered == 1


async def test_the_map_reads_sent_statements_and_their_answers(relay, db):
    people = [voter(n, "sms") for n in range(1, 5)]
    await panel(db.sessions, people)
    first, second = await _statements(db, BUSES, PARKS)
    await _statements(db, {"en": "Not sent yet."})
    async with db.sessions.begin() as session:
        (await session.get(Statement, first)).sent_at = utcnow()
        (await session.get(Statement, second)).sent_at = utcnow()
        for n, p in enumerate(people):
            await record_answer(session, first, p.id, 1 if n % 2 else -1, utcnow())
    async with db.sessions() as session:
        conv = await conversation.load(session, "fr")
    assert conv.statements == {first: BUSES["fr"], second: PARKS["fr"]}
    assert len(conv.votes) == 4 and conv.participants == sorted(p.id for p in people)


async def test_a_members_answers_and_proposals_are_in_the_copy_of_their_data(relay, db, tmp_path):
    sms, other = voter(1, "sms"), voter(2, "sms")
    await panel(db.sessions, [sms, other])
    first, second = await _statements(db, BUSES, PARKS)
    await records.send(relay)
    await say(relay, sms, "A")
    await say(relay, sms, "P")
    await say(relay, sms, "PROPOSE Cycle lanes should be separated from cars.")
    await say(relay, other, "D")

    code, out, err = await concorder(db, tmp_path, "person", "export", sms.address)
    assert code == 0, err
    tables = json.loads(out)["tables"]
    given = {(r["statement_id"], r["vote"]) for r in tables["statement_votes"]["rows"]}
    assert given == {(first, 1), (second, 0)}  # only theirs: agree, pass
    proposed = [r["texts"] for r in tables["statements"]["rows"]]
    assert proposed == [{"en": "Cycle lanes should be separated from cars."}]
