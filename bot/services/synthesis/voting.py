"""Answers to the opinion map's statements inside a turn: what the conversation may know
(the statements sent, with this person's current answers), each answer recorded in the
same transaction (one row per person and statement, the last answer replacing it), and a
participant's proposal stored for the organisers to approve.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.relay import Relay
from flows import events
from flows.facts import StatementFacts
from flows.statements import ASKED, PROPOSED
from store.models import Participant
from store.statements import APPROVED, Statement, StatementVote
from store.statements import PROPOSED as WAITING

INSERT = {"postgresql": pg_insert, "sqlite": sqlite_insert}


async def statement_facts(session: AsyncSession, participant: Participant) -> dict[str, Any] | None:
    if not (participant.state or {}).get("data", {}).get(ASKED):
        return None  # never sent statements: one query fewer for everyone else
    rows = (
        await session.execute(
            select(Statement.id, Statement.texts, StatementVote.vote)
            .outerjoin(
                StatementVote,
                (StatementVote.statement_id == Statement.id)
                & (StatementVote.participant_id == participant.id),
            )
            .where(Statement.status == APPROVED, Statement.sent_at.is_not(None))
            .order_by(Statement.sent_at, Statement.id)
        )
    ).all()
    return {"statements": [StatementFacts(id=i, texts=t, vote=v) for i, t, v in rows]}


async def record_answer(
    session: AsyncSession, statement_id: int, participant_id: str, vote: int, now: datetime
) -> None:
    """One row per person and statement whatever arrives at once: a second answer, even
    one racing the first, replaces the vote and counts itself in `answers`."""
    insert = INSERT[session.bind.dialect.name](StatementVote)
    values = {"statement_id": statement_id, "participant_id": participant_id}
    await session.execute(
        insert.values(**values, vote=vote, answers=1, at=now).on_conflict_do_update(
            index_elements=["statement_id", "participant_id"],
            set_={"vote": vote, "at": now, "answers": StatementVote.answers + 1},
        )
    )


def register(relay: Relay) -> None:
    async def answered(session: AsyncSession, participant, event, now) -> None:
        await record_answer(
            session, int(event.data["statement"]), participant.id, int(event.data["vote"]), now
        )

    async def proposed(session: AsyncSession, participant, event, now) -> None:
        # The text leaves the state before it is written: it lives in `statements` only.
        state = dict(participant.state)
        data = dict(state.get("data", {}))
        text = data.pop(PROPOSED)
        participant.state = {**state, "data": data}
        session.add(
            Statement(
                texts={participant.language: text},
                status=WAITING,
                participant_id=participant.id,
                created_at=now,
            )
        )

    relay.hooks.provide_facts(statement_facts)
    relay.hooks.on_event(events.STATEMENT_ANSWERED, answered)
    relay.hooks.on_event(events.STATEMENT_PROPOSED, proposed)
