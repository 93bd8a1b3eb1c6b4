"""The recruitment service's shared pieces: one assembly per database, its errors and limits."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from flows.assembly import Assembly
from store import audit
from store.models import (
    AuditEvent,
)

log = logging.getLogger(__name__)

RECRUITMENT_FLOWS = ("invitation", "consent", "registration", "confirmation")
PLACEHOLDER_BOT = "ConcorderSimulatorBot"  # links made without a real bot point here
CHUNK = 10000


async def check_one_assembly(session: AsyncSession, assembly: Assembly) -> None:
    """One assembly per database: refuse work for another one than the first recorded."""
    recorded = (
        await session.execute(
            select(AuditEvent.data)
            .where(AuditEvent.kind == "recruitment.assembly")
            .order_by(AuditEvent.id)
            .limit(1)
        )
    ).scalar_one_or_none()
    # Its name in any of its languages: run in another language first, it is the same one.
    names = {assembly.name, *assembly.assembly.name.values()}
    if recorded is None:
        await audit.append(session, "recruitment.assembly", {"name": assembly.name})
    elif recorded.get("name") not in names:
        raise RecruitmentError(
            f"this database belongs to the assembly {recorded.get('name')!r}, not "
            f"{assembly.name!r}: use a database of its own for each assembly"
        )


class RecruitmentError(RuntimeError):
    """An organiser command cannot go ahead; the message says why and what to do."""
