"""One person's own poll answers, found again by their pseudonym in each poll (it needs
the server secret): for the export of everything held about them (GDPR Art. 15 and 20).
Each answer as they gave it, with the question and the answer in their language."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.polls.pseudonyms import respondent
from flows.i18n import translator
from flows.poll import SCALE, localised
from store.polls import Poll, PollAnswer


def _said(question: dict[str, Any] | None, value: str | None, language: str) -> str | None:
    """What the stored value stands for, as the person was offered it."""
    if value is None:
        return None  # skipped
    if question is None:
        return value
    if question["kind"] == "agree" and value.isdigit() and 1 <= int(value) <= len(SCALE):
        return translator(language).gettext(SCALE[int(value) - 1])
    option = next((o for o in question.get("options") or [] if o["key"] == value), None)
    return localised(option["label"], language) if option else value


async def own_answers(
    session: AsyncSession, key: bytes, participant_id: str, language: str
) -> list[dict[str, Any]]:
    """Every answer this person gave, poll by poll and wave by wave, in order given."""
    found = []
    polls = (await session.execute(select(Poll).order_by(Poll.id))).scalars().all()
    for poll in polls:
        rows = await session.execute(
            select(PollAnswer)
            .where(
                PollAnswer.poll_id == poll.id,
                PollAnswer.respondent == respondent(key, poll.id, participant_id),
            )
            .order_by(PollAnswer.id)
        )
        questions = {q["id"]: q for q in poll.definition.get("questions", [])}
        for answer in rows.scalars():
            question = questions.get(answer.question_id)
            found.append(
                {
                    "poll_id": poll.id,
                    "wave_id": answer.wave_id,
                    "question_id": answer.question_id,
                    "question": localised(question["text"], language) if question else None,
                    "value": answer.value,
                    "answer": _said(question, answer.value, language),
                    "skipped": answer.value is None,
                    "answered_at": answer.answered_at.isoformat(),
                    "respondent": answer.respondent,
                }
            )
    return found
