"""The assembly's statements and answers as a `Conversation` for the opinion map: people by
pseudonym, each statement in the language asked for (else its first), rejected and
unsent ones left out, as Pol.is leaves out what its moderators rejected."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.synthesis.opinions import Conversation
from store.statements import APPROVED, REJECTED, Statement, StatementVote


async def load(session: AsyncSession, language: str = "en", topic: str = "") -> Conversation:
    conv = Conversation(statements={}, votes={}, topic=topic)
    for s in (await session.execute(select(Statement).order_by(Statement.id))).scalars():
        if s.status == APPROVED and s.sent_at is None:
            continue  # nobody has been asked it yet
        conv.statements[s.id] = s.texts.get(language) or next(iter(s.texts.values()), "")
        conv.authors[s.id] = s.participant_id or ""
        conv.moderated[s.id] = {APPROVED: 1, REJECTED: -1}.get(s.status, 0)
    rows = await session.execute(
        select(StatementVote.participant_id, StatementVote.statement_id, StatementVote.vote)
    )
    for who, sid, vote in rows:
        if sid in conv.statements:
            conv.votes[(who, sid)] = vote
    return conv
