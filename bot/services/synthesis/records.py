"""The organisers' side of the statements: add, list, approve or reject, and send.

Sending marks every approved statement not yet sent as sent, then asks the confirmed
panel, a hundred people per transaction (a long one would hold the database's locks while
the webhooks wait). Someone already answering gets the new statements when they reach the
end of the ones they have, or with OPINIONS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.relay import Relay
from bot.services.people import lock_participant
from bot.services.turns import start_flow
from flows.statements import ASKED, MAX_LENGTH, NAME
from store import audit
from store.deliberation import OPEN, TablePrompt
from store.models import utcnow
from store.recruitment import CONFIRMED, Selection
from store.statements import APPROVED, PROPOSED, REJECTED, Statement, StatementVote

CHUNK = 100
ADDED, DECIDED, SENT = "statement.added", "statement.decided", "statement.sent"


class StatementProblem(ValueError):
    """A statement that cannot be added, approved or sent, in words for the organiser."""


@dataclass
class Row:
    id: int
    texts: dict[str, str]
    status: str
    proposed: bool  # by a participant
    sent: bool
    agree: int = 0
    disagree: int = 0
    passed: int = 0


@dataclass
class Sent:
    statements: int
    people: int = 0
    asked: int = 0
    not_asked: list[str] = field(default_factory=list)  # opted out or unreachable
    # Prompts open at the tables: what their members write goes to the table, so they
    # answer the statements once the prompt closes.
    open_prompts: int = 0


def check_texts(texts: dict[str, str]) -> dict[str, str]:
    clean = {lang: " ".join(text.split()) for lang, text in texts.items()}
    for lang, text in clean.items():
        if not text:
            raise StatementProblem(f"The {lang} text is empty.")
        if len(text) > MAX_LENGTH:
            raise StatementProblem(
                f"The {lang} text has {len(text)} characters; a statement has at most "
                f"{MAX_LENGTH}, so it fits one SMS with its question."
            )
    if not clean:
        raise StatementProblem("A statement needs a text in at least one language.")
    return clean


async def add(session: AsyncSession, texts: dict[str, str], now: datetime | None = None) -> int:
    """An organiser's statement: approved as it is written."""
    statement = Statement(texts=check_texts(texts), status=APPROVED, created_at=now or utcnow())
    session.add(statement)
    await session.flush()
    await audit.append(session, ADDED, {"statement": statement.id}, at=now)
    return statement.id


async def listing(session: AsyncSession, status: str | None = None) -> list[Row]:
    counts = {
        (sid, vote): n
        for sid, vote, n in await session.execute(
            select(StatementVote.statement_id, StatementVote.vote, func.count()).group_by(
                StatementVote.statement_id, StatementVote.vote
            )
        )
    }
    query = select(Statement).order_by(Statement.id)
    if status:
        query = query.where(Statement.status == status)
    return [
        Row(
            s.id,
            s.texts,
            s.status,
            s.participant_id is not None,
            s.sent_at is not None,
            counts.get((s.id, 1), 0),
            counts.get((s.id, -1), 0),
            counts.get((s.id, 0), 0),
        )
        for s in (await session.execute(query)).scalars()
    ]


async def decide(
    session: AsyncSession,
    statement_id: int,
    *,
    approve: bool,
    texts: dict[str, str] | None = None,
    now: datetime | None = None,
) -> Statement:
    """Approve (with translations added, if given) or reject a proposed statement."""
    statement = await session.get(Statement, statement_id, with_for_update=True)
    if statement is None:
        raise StatementProblem(f"There is no statement {statement_id}.")
    if statement.status != PROPOSED:
        raise StatementProblem(f"Statement {statement_id} is already {statement.status}.")
    if texts:
        statement.texts = check_texts({**statement.texts, **texts})
    statement.status = APPROVED if approve else REJECTED
    await audit.append(
        session, DECIDED, {"statement": statement_id, "status": statement.status}, at=now
    )
    return statement


async def send(relay: Relay, *, dry_run: bool = False, now: datetime | None = None) -> Sent:
    """Mark the approved statements not yet sent as sent, then ask the confirmed panel."""
    now = now or utcnow()
    async with relay.sessions.begin() as session:
        new = list(
            (
                await session.execute(
                    select(Statement.id)
                    .where(Statement.status == APPROVED, Statement.sent_at.is_(None))
                    .with_for_update()
                )
            ).scalars()
        )
        people = sorted(
            set(
                (
                    await session.execute(
                        select(Selection.participant_id).where(Selection.status == CONFIRMED)
                    )
                ).scalars()
            )
        )
        result = Sent(len(new), len(people))
        result.open_prompts = await session.scalar(
            select(func.count()).select_from(TablePrompt).where(TablePrompt.status == OPEN)
        )
        if not new:
            raise StatementProblem("No approved statement is waiting to be sent.")
        if dry_run:
            return result
        await session.execute(update(Statement).where(Statement.id.in_(new)).values(sent_at=now))
        await audit.append(session, SENT, {"statements": new, "people": len(people)}, at=now)
    for start in range(0, len(people), CHUNK):
        async with relay.sessions.begin() as session:
            for participant_id in people[start : start + CHUNK]:
                await _ask(session, relay, participant_id, result, now)
        relay.outbox_signal.set()
    return result


async def _ask(session: AsyncSession, relay: Relay, participant_id: str, result: Sent, now):
    participant = await lock_participant(session, participant_id)
    state = participant.state or {}
    # Their turns read the statements from now on (facts); everyone else's never do.
    participant.state = {**state, "data": {**state.get("data", {}), ASKED: True}}
    if participant.opted_out:
        result.not_asked.append(participant_id)
        return
    if state.get("flow") == NAME or state.get("step"):
        return  # answering already, or in another conversation: OPINIONS brings them here
    queued = await start_flow(session, relay, participant, NAME, now=now)
    if queued:
        result.asked += 1
    else:
        result.not_asked.append(participant_id)
