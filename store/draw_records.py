"""Draw runs: exactly what each stratified draw was given and what it gave back.

The payload (the pseudonymised input, seed, algorithm) is what `select --verify` re-runs;
its SHA-256 is also in the audit trail, so an altered payload is caught. A transparent
lottery is recorded twice: once "published" (the list of panels, before the pick seed is
known) and then "done" with the pick.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Float, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, BigId, utcnow

SELECT = "select"
REPLACE = "replace"
PUBLISHED = "published"  # a transparent lottery's panels, awaiting the pick seed
DONE = "done"
SUPERSEDED = "superseded"  # a published list that was picked from (see the DONE run)


def new_draw_id() -> str:
    return "D" + secrets.token_hex(6).upper()


class DrawRun(Base):
    __tablename__ = "draw_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    draw_id: Mapped[str] = mapped_column(String(64), unique=True, default=new_draw_id)
    kind: Mapped[str] = mapped_column(String(16))  # select | replace
    status: Mapped[str] = mapped_column(String(16), default=DONE)
    seed: Mapped[str] = mapped_column(String(200))
    algorithm: Mapped[str] = mapped_column(String(16))
    library_version: Mapped[str] = mapped_column(String(32))
    input_sha256: Mapped[str] = mapped_column(String(64))
    # What the selection process was given (bot.services.draw payload) and what it returned.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    lowest_probability: Mapped[float | None] = mapped_column(Float)
    audit_seq: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


async def runs(session: AsyncSession, kind: str | None = None) -> list[DrawRun]:
    query = select(DrawRun).order_by(DrawRun.id)
    if kind:
        query = query.where(DrawRun.kind == kind)
    return list((await session.execute(query)).scalars().all())


async def completed_selection(session: AsyncSession) -> DrawRun | None:
    return (
        await session.execute(
            select(DrawRun)
            .where(DrawRun.kind == SELECT, DrawRun.status == DONE)
            .order_by(DrawRun.id)
            .limit(1)
        )
    ).scalar_one_or_none()


async def published_lottery(session: AsyncSession) -> DrawRun | None:
    return (
        await session.execute(
            select(DrawRun)
            .where(DrawRun.kind == SELECT, DrawRun.status == PUBLISHED)
            .order_by(DrawRun.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
