"""Telling every organiser about one person, each in their own language, through the outbox.

People are named by pseudonym (and the organisers' own reference from the pool file, when
it has one), never by number or chat id: an organiser's copy must not keep what an erasure
removes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.organisers import organiser_contacts
from bot.services.outgoing import enqueue
from bot.settings import Settings
from flows.i18n import Translator, translator
from flows.model import Outbound
from store.recruitment import PoolEntry

# What an organiser reads, written in their language by the caller.
Compose = Callable[[Translator], str]


async def who(session: AsyncSession, participant_id: str) -> str:
    """'P1A2B3C4D5E6 (row-17)': the pseudonym, and the pool file's own id if it gave one."""
    ref = (
        await session.execute(
            select(PoolEntry.external_id).where(PoolEntry.participant_id == participant_id)
        )
    ).scalar_one_or_none()
    return participant_id + (f" ({ref})" if ref else "")


async def tell_organisers(
    session: AsyncSession, settings: Settings, compose: Compose, *, kind: str, now: datetime
) -> int:
    """Queue `compose(translator)` to every organiser who can be reached; rows queued."""
    queued = 0
    for _info, organiser, contact in await organiser_contacts(session, settings.default_language):
        text = compose(translator(organiser.language))
        queued += await enqueue(
            session,
            settings,
            organiser,
            contact,
            [Outbound(text=text, kind=kind)],
            prompt_id=None,
            now=now,
        )
    return queued
