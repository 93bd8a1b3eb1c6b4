"""What every resource writer is given, and the shape of a writer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.publish.package import Resource

DEFAULT_MIN_CELL = 5


@dataclass(frozen=True)
class Context:
    assembly: Any  # flows.assembly.Assembly, or None without an assembly file
    calendar: Any  # scheduler.config.Calendar, or None
    min_cell: int = DEFAULT_MIN_CELL
    now: datetime | None = None

    @property
    def languages(self) -> list[str]:
        return list(self.assembly.languages) if self.assembly else ["en"]


# A writer reads what it publishes in the package's one read-only transaction.
Writer = Callable[[AsyncSession, Context], Awaitable[list[Resource]]]
