"""The assembly's final recommendations and the commissioning authority's responses.

A recommendation holds its texts per language and may name the ballot that adopted it.
Each response is a new version (1, 2, ...): the first answer, then any later change of
position. The unique (recommendation, version) pair is what makes two organisers entering
a response at once record it once, and message the panel once.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, UniqueConstraint, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, BigId, utcnow

ACCEPTED, PARTLY, REJECTED, PENDING = "accepted", "partly", "rejected", "pending"
RESPONSE_STATUSES = (ACCEPTED, PARTLY, REJECTED, PENDING)


class Recommendation(Base):
    __tablename__ = "recommendations"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)  # the order they are listed in
    title: Mapped[dict[str, Any]] = mapped_column(JSON)  # language -> text
    text: Mapped[dict[str, Any]] = mapped_column(JSON)
    ballot_id: Mapped[str | None] = mapped_column(ForeignKey("ballots.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RecommendationResponse(Base):
    __tablename__ = "recommendation_responses"
    __table_args__ = (
        UniqueConstraint("recommendation_id", "version", name="uq_recommendation_response"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    recommendation_id: Mapped[str] = mapped_column(ForeignKey("recommendations.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    text: Mapped[dict[str, Any]] = mapped_column(JSON)  # language -> text
    responded_on: Mapped[date] = mapped_column(Date)  # the authority's date
    recipients: Mapped[int] = mapped_column(Integer, default=0)  # panel members told
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


async def all_recommendations(session: AsyncSession) -> list[Recommendation]:
    return list(
        (await session.execute(select(Recommendation).order_by(Recommendation.number))).scalars()
    )


async def responses(
    session: AsyncSession, recommendation_id: str | None = None
) -> list[RecommendationResponse]:
    """Every response (or one recommendation's), oldest version first."""
    query = select(RecommendationResponse).order_by(
        RecommendationResponse.recommendation_id, RecommendationResponse.version
    )
    if recommendation_id is not None:
        query = query.where(RecommendationResponse.recommendation_id == recommendation_id)
    return list((await session.execute(query)).scalars())
