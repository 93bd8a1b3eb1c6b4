"""Small-group tables: each allocation run (its canonical input, seed, result and the
organisers' moves since) and the seats it gives (round, table, letter, participant).

A seat is pseudonymous: a member is known to the others at their table only by letter
(Member C at table 4), and the conversation relays by seat. `groups assign --verify`
re-runs the recorded input and compares it with the run's result, and the result with the
moves applied with the seats.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, BigId, utcnow

CURRENT = "current"
REPLACED = "replaced"  # an allocation made again with --replace; its seats are gone


def new_run_id() -> str:
    return "G" + secrets.token_hex(6).upper()


class GroupRun(Base):
    __tablename__ = "group_runs"
    # One current allocation, even when two commands record one at the same moment.
    __table_args__ = (
        Index(
            "uq_group_runs_one_current",
            "status",
            unique=True,
            sqlite_where=text("status = 'current'"),
            postgresql_where=text("status = 'current'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(16), unique=True, default=new_run_id)
    status: Mapped[str] = mapped_column(String(16), default=CURRENT)
    seed: Mapped[str] = mapped_column(String(200))
    algorithm: Mapped[str] = mapped_column(String(32))
    input_sha256: Mapped[str] = mapped_column(String(64))
    # The canonical input (allocate.Problem.canonical()): ids, languages, category values.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The tables per round as allocated, and the quality of ours and both baselines.
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The organisers' moves since, in order: {member, round, from, to, letter}.
    moves: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    audit_seq: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GroupSeat(Base):
    __tablename__ = "group_seats"
    __table_args__ = (
        UniqueConstraint("run_id", "round", "participant_id", name="uq_group_seats_member"),
        UniqueConstraint("run_id", "round", "table_no", "letter", name="uq_group_seats_letter"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("group_runs.run_id"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    table_no: Mapped[int] = mapped_column(Integer)
    letter: Mapped[str] = mapped_column(String(4))
    participant_id: Mapped[str] = mapped_column(ForeignKey("participants.id"), index=True)
    notified_at: Mapped[datetime | None]


async def current_run(session: AsyncSession) -> GroupRun | None:
    return (
        await session.execute(
            select(GroupRun).where(GroupRun.status == CURRENT).order_by(GroupRun.id.desc()).limit(1)
        )
    ).scalar_one_or_none()


async def seats_of(
    session: AsyncSession, run_id: str, round_no: int | None = None, *, lock: bool = False
) -> list[GroupSeat]:
    query = select(GroupSeat).where(GroupSeat.run_id == run_id)
    if round_no is not None:
        query = query.where(GroupSeat.round == round_no)
    query = query.order_by(GroupSeat.round, GroupSeat.table_no, GroupSeat.letter)
    if lock:
        query = query.with_for_update()
    return list((await session.execute(query)).scalars())
