"""Answering inside an inbound turn: what the questionnaire may know (the wave the person
is answering, open or closed), and the answers it gave recorded in the same transaction,
under the person's pseudonym, with their progress on the wave's roll.

Two messages from one person are taken one after the other (their row is locked for the
turn), and the unique index on (poll, wave, question, respondent) keeps one answer
whatever arrives at once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.relay import Relay
from bot.services.polls.pseudonyms import respondent
from flows import events
from flows.facts import PollFacts
from flows.poll import ANSWERS, NAME
from store.db import dialect_insert
from store.models import Participant
from store.polls import OPEN, Poll, PollAnswer, PollRoll, PollWave


async def poll_facts(session: AsyncSession, participant: Participant) -> dict[str, Any] | None:
    place = (participant.state or {}).get("data", {}).get(NAME)
    if not place:
        return None  # answering no poll: no query
    row = (
        await session.execute(
            select(Poll.definition, PollWave.status)
            .join(PollWave, PollWave.poll_id == Poll.id)
            .where(Poll.id == place.get("id"), PollWave.wave_id == place.get("wave"))
        )
    ).first()
    if row is None:
        return None
    status = "open" if row.status == OPEN else "closed"
    return {"poll": PollFacts(place["id"], place["wave"], status, row.definition)}


async def record_answers(
    session: AsyncSession, key: bytes, participant: Participant, answers: list[dict], now
) -> int:
    """Store a turn's answers once each; returns how many were new."""
    new = 0
    for answer in answers:
        who = respondent(key, answer["poll"], participant.id)
        inserted = await session.execute(
            dialect_insert(session, PollAnswer)
            .values(
                poll_id=answer["poll"],
                wave_id=answer["wave"],
                question_id=answer["question"],
                respondent=who,
                value=answer["value"],
                answered_at=now,
            )
            .on_conflict_do_nothing(
                index_elements=["poll_id", "wave_id", "question_id", "respondent"]
            )
        )
        if not inserted.rowcount:
            continue
        new += 1
        await session.execute(
            update(PollRoll)
            .where(
                PollRoll.poll_id == answer["poll"],
                PollRoll.wave_id == answer["wave"],
                PollRoll.participant_id == participant.id,
            )
            .values(answered=PollRoll.answered + 1)
        )
    return new


async def mark_finished(session: AsyncSession, participant_id: str, poll: str, wave: str) -> None:
    await session.execute(
        update(PollRoll)
        .where(
            PollRoll.poll_id == poll,
            PollRoll.wave_id == wave,
            PollRoll.participant_id == participant_id,
        )
        .values(finished=True)
    )


def register(relay: Relay) -> None:
    async def finished(session: AsyncSession, participant, event, now) -> None:
        await mark_finished(session, participant.id, event.data["poll"], event.data["wave"])

    async def after_turn(session: AsyncSession, settings, *, participant, now, **_: Any) -> int:
        state = participant.state or {}
        answers = state.get("data", {}).get(ANSWERS)
        if not answers:
            return 0
        # The answers leave the conversation state in the turn that gave them.
        data = {k: v for k, v in state["data"].items() if k != ANSWERS}
        participant.state = {**state, "data": data}
        await record_answers(session, relay.invite_key, participant, answers, now=now)
        return 0

    relay.hooks.provide_facts(poll_facts)
    relay.hooks.on_event(events.POLL_COMPLETED, finished)
    relay.hooks.after_turn(after_turn)
