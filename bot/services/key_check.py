"""The database remembers which secret key it was first used with, and refuses another.

Invitation codes, poll-answer pseudonyms, opt-out marks and audit checkpoints are all made
with the secret key (bot/services/invite_codes.py). A process with another key (a second
instance started without CONCORDER_SECRET_KEY, a command run from another directory, a
restore onto a new machine) would silently disagree with the rest: links would not open,
an export would find no answers, an erased person's STOP would no longer match. So every
process that opens the database compares its key with the one the database first saw.

What the database keeps is HMAC(key, a constant): it tells whether two keys are the same
and reveals nothing of either (no plain hash of the key to guess against).
"""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services import invite_codes
from bot.settings import Settings
from store.db import dialect_insert
from store.models import KeyFingerprint, utcnow

CHECK = b"concorder-relay: the secret key this database was first used with"
ROW = 1


class WrongKey(RuntimeError):
    """This process's secret key is not the one the database was first used with."""


def fingerprint(key: bytes) -> str:
    return hmac.new(key, CHECK, hashlib.sha256).hexdigest()


async def checked_key(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> bytes:
    """The secret key of `settings`, once the database agrees it is its key. The first
    process to use the database records it (several starting at once agree on one)."""
    if not invite_codes.has_key(settings) and await recorded(sessions) is not None:
        # Making a new key file here would only make a key the database refuses.
        raise WrongKey(_advice(settings, missing=True))
    key = invite_codes.server_key(settings)
    mine = fingerprint(key)
    async with sessions() as session, session.begin():
        await session.execute(
            dialect_insert(session, KeyFingerprint)
            .values(id=ROW, fingerprint=mine, recorded_at=utcnow())
            .on_conflict_do_nothing(index_elements=["id"])
        )
        theirs = await session.scalar(
            select(KeyFingerprint.fingerprint).where(KeyFingerprint.id == ROW)
        )
    if theirs is None or not hmac.compare_digest(theirs, mine):
        raise WrongKey(_advice(settings, missing=False))
    return key


async def recorded(sessions: async_sessionmaker[AsyncSession]) -> str | None:
    async with sessions() as session:
        return await session.scalar(
            select(KeyFingerprint.fingerprint).where(KeyFingerprint.id == ROW)
        )


def _advice(settings: Settings, *, missing: bool) -> str:
    where = invite_codes.key_file(settings.database_url)
    if invite_codes.given_key(settings):
        mine = "CONCORDER_SECRET_KEY is set to another key"
    elif missing:
        mine = f"CONCORDER_SECRET_KEY is not set and there is no key file at {where}"
    else:
        mine = f"CONCORDER_SECRET_KEY is not set and the key file at {where} holds another key"
    return (
        "This database was first used with another secret key "
        f"({mine}). With this key, invitation links would not open, a person's export "
        "would miss their poll answers and an erased person's STOP would no longer be "
        "recognised. Set CONCORDER_SECRET_KEY to the key the service uses on this database "
        f"(or, where the variable is not used, put the service's key file at {where})."
    )
