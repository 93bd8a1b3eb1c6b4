"""What the results page shows: the open data package as the organisers last published it
on the web (`concorder publish --web`), file by file, and whether the page is on.

The page is rendered from these files alone, so it shows exactly what the package holds.
Each publication is a new row; the latest is the one shown, while `shown` is true.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from store.models import Base, BigId, utcnow


class ResultsPage(Base):
    __tablename__ = "results_pages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    files: Mapped[dict[str, str]] = mapped_column(JSON)  # file name -> its text (UTF-8)
    package_sha256: Mapped[str] = mapped_column(String(64))  # of datapackage.json
    min_cell: Mapped[int] = mapped_column(Integer)
    shown: Mapped[bool] = mapped_column(Boolean, default=True)
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


async def latest(session: AsyncSession) -> ResultsPage | None:
    return (
        await session.execute(select(ResultsPage).order_by(ResultsPage.id.desc()).limit(1))
    ).scalar_one_or_none()


async def shown(session: AsyncSession) -> ResultsPage | None:
    """The publication the page shows, or None while it is off."""
    page = await latest(session)
    return page if page is not None and page.shown else None
