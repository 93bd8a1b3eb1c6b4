"""Open data: the assembly published as a Frictionless Data Package.

Each resource writer reads what it publishes and returns its tables (`context.Writer`);
`bot.bootstrap.publication_writers` lists them in the one place a feature adds its own
(the synthesis adds the opinion map and themes there). Nothing written names a person:
participants appear by pseudonym, counts are suppressed below `min_cell`.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.publish import draws, outline, participation, votes
from bot.services.publish.context import DEFAULT_MIN_CELL, Context, Writer
from bot.services.publish.package import Field, Package, Resource
from bot.services.publish.suppression import SUPPRESSED, suppress
from store.models import utcnow

# The package's own resources, in the order a reader meets them.
WRITERS: list[Writer] = [
    outline.assembly,
    draws.draws,
    participation.participation,
    votes.ballots,
    votes.recommendations,
    outline.checkpoint,
]


class PublishProblem(ValueError):
    """The package cannot be made as asked; the message says why."""


async def build(
    sessions: async_sessionmaker[AsyncSession],
    writers: list[Writer],
    *,
    assembly=None,
    calendar=None,
    min_cell: int = DEFAULT_MIN_CELL,
    now: datetime | None = None,
) -> Package:
    """Every writer's resources, read in one transaction (one consistent picture)."""
    if min_cell < 1:
        raise PublishProblem(f"--min-cell {min_cell}: give 1 (nothing hidden) or more")
    context = Context(assembly, calendar, min_cell, now or utcnow())
    resources: list[Resource] = []
    async with sessions() as session:
        for writer in writers:
            resources += await writer(session, context)
    names = [r.name for r in resources]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise PublishProblem(f"two resources are named {', '.join(twice)}")
    name = _slug(assembly.name) if assembly else "concorder-assembly"
    title = assembly.name if assembly else "A Concorder Relay assembly"
    return Package(name, title, context.now, resources, _names(assembly))


def _names(assembly) -> str | None:
    """The name in every language, for the descriptor's description, when they differ."""
    if assembly is None or len(set(assembly.names.values())) < 2:
        return None
    return "; ".join(f"{code}: {name}" for code, name in assembly.names.items())


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-")
    return slug or "concorder-assembly"


def write(package: Package, out: Path) -> list[Path]:
    return package.write(out)


__all__ = [
    "DEFAULT_MIN_CELL",
    "SUPPRESSED",
    "WRITERS",
    "Context",
    "Field",
    "Package",
    "PublishProblem",
    "Resource",
    "Writer",
    "build",
    "suppress",
    "write",
]
