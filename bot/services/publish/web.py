"""The package on the results page: recorded as published (`concorder publish --web`),
turned off and on again (`concorder results off|on`), each with its audit event."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.publish.package import Package
from store import audit
from store.models import utcnow
from store.results import ResultsPage, latest

PUBLISHED, SHOWN, HIDDEN = "results.published", "results.shown", "results.hidden"


@dataclass(frozen=True)
class State:
    published_at: datetime | None
    shown: bool
    files: int
    package_sha256: str | None


def state_of(page: ResultsPage | None) -> State:
    if page is None:
        return State(None, False, 0, None)
    return State(page.published_at, page.shown, len(page.files), page.package_sha256)


async def record(
    sessions: async_sessionmaker[AsyncSession], package: Package, min_cell: int
) -> State:
    """The package becomes what the page shows, and the page is on."""
    files = {name: data.decode("utf-8") for name, data in package.files().items()}
    digest = hashlib.sha256(files["datapackage.json"].encode()).hexdigest()
    now = utcnow()
    async with sessions.begin() as session:
        page = ResultsPage(
            files=files,
            package_sha256=digest,
            min_cell=min_cell,
            shown=True,
            published_at=now,
            changed_at=now,
        )
        session.add(page)
        await audit.append(
            session,
            PUBLISHED,
            {"package_sha256": digest, "files": len(files), "min_cell": min_cell},
            at=now,
        )
        return state_of(page)


async def status(sessions: async_sessionmaker[AsyncSession]) -> State:
    async with sessions() as session:
        return state_of(await latest(session))


async def switch(sessions: async_sessionmaker[AsyncSession], on: bool) -> State:
    """Turn the page on or off; the package stays as published. Nothing published yet:
    a ValueError that says so."""
    now = utcnow()
    async with sessions.begin() as session:
        page = await latest(session)
        if page is None:
            raise ValueError("Nothing is published yet: run `concorder publish --out DIR --web`.")
        if page.shown != on:
            page.shown, page.changed_at = on, now
            await audit.append(
                session, SHOWN if on else HIDDEN, {"package_sha256": page.package_sha256}, at=now
            )
        return state_of(page)
