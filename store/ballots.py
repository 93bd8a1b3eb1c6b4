"""Ballots: their definitions and state, the roll of who may vote and who has, and the
votes themselves, kept apart so that a vote cannot be tied to its voter.

- `ballot_votes` holds no voter id and no time; its primary key is a random UUID. While
  the ballot is open a vote carries `voter_link`, an HMAC of the voter under the ballot's
  own key (`ballots.link_key`), so a later vote can replace it; at close the key and every
  link are destroyed and the votes are written again in a shuffled order (README,
  "Ballots: what secrecy rests on").
- `ballot_roll` holds who may vote and whether they have: no vote id, no time. Someone
  who withdraws while a ballot is open leaves its roll (`leave_open_rolls`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Uuid, delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base

DRAFT, OPEN, CLOSED = "draft", "open", "closed"
COUNTED, REPLACED = "counted", "replaced"


class Ballot(Base):
    __tablename__ = "ballots"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=DRAFT)
    # The checked definition (flows.ballot_spec.plain): texts, method, options, voters.
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    opens_at: Mapped[datetime | None]
    closes_at: Mapped[datetime | None]
    opened_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    # 32 random bytes (hex) while open: the key of the voters' links. Gone at close.
    link_key: Mapped[str | None] = mapped_column(String(64))
    # At close: the tally, the trackers with their choices, turnout and quorum.
    results: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # From the assembly file ("assembly") or a file given to `ballot create` ("file").
    source: Mapped[str] = mapped_column(String(16), default="file")


class BallotRoll(Base):
    """Who may vote in a ballot (set when it opens) and whether they have."""

    __tablename__ = "ballot_roll"

    ballot_id: Mapped[str] = mapped_column(ForeignKey("ballots.id"), primary_key=True)
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), primary_key=True)
    voted: Mapped[bool] = mapped_column(Boolean, default=False)
    asked: Mapped[bool] = mapped_column(Boolean, default=False)  # sent the question
    # Withdrew after voting: their vote stays in the count (and so in the turnout), but
    # they may not vote again and are not told the results.
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class BallotVote(Base):
    """One vote as cast: its choice and tracker, never its voter or its time."""

    __tablename__ = "ballot_votes"
    __table_args__ = (
        Index("uq_ballot_votes_tracker", "ballot_id", "tracker", unique=True),
        # One current vote per voter while open, whatever arrives at once.
        Index(
            "uq_ballot_votes_link",
            "ballot_id",
            "voter_link",
            unique=True,
            sqlite_where=text("voter_link IS NOT NULL"),
            postgresql_where=text("voter_link IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    ballot_id: Mapped[str] = mapped_column(ForeignKey("ballots.id"))
    choice: Mapped[Any] = mapped_column(JSON, nullable=True)
    tracker: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=COUNTED)
    voter_link: Mapped[str | None] = mapped_column(String(64))


async def leave_open_rolls(session: AsyncSession, participant_id: str) -> int:
    """Someone withdrew (WITHDRAW, STOP, an organiser, erasure): off the roll of every open
    ballot they have not voted in; where they voted, the vote stays counted and they are
    marked as having left. Closed ballots keep their rolls (the published turnout)."""
    open_ = select(Ballot.id).where(Ballot.status == OPEN)
    mine = (BallotRoll.participant_id == participant_id, BallotRoll.ballot_id.in_(open_))
    gone = await session.execute(delete(BallotRoll).where(*mine, BallotRoll.voted.is_(False)))
    kept = await session.execute(
        update(BallotRoll)
        .where(*mine, BallotRoll.voted.is_(True), BallotRoll.withdrawn.is_(False))
        .values(withdrawn=True, asked=True)
    )
    return (gone.rowcount or 0) + (kept.rowcount or 0)
