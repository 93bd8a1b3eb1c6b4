"""Transactions that lost a race with a concurrent one, and running them again."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError

log = logging.getLogger(__name__)
T = TypeVar("T")

# PostgreSQL's codes for a transaction that lost a race and would pass if run again:
# serialization failure and deadlock (a unique violation is an IntegrityError).
RETRYABLE_SQLSTATES = {"40001", "40P01"}
CONFLICT_RETRIES = 4


# SQLite's "database is busy" and "locked" (extended codes keep the primary one in the low
# byte): a writer that waited out the busy timeout, or whose snapshot went stale.
RETRYABLE_SQLITE_CODES = {5, 6}


def lost_a_race(exc: DBAPIError) -> bool:
    if isinstance(exc, IntegrityError):
        return True
    if getattr(exc.orig, "sqlite_errorcode", 0) & 0xFF in RETRYABLE_SQLITE_CODES:
        return True
    return getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES


async def retry_conflicts(transaction: Callable[[], Awaitable[T]]) -> T:
    """Run `transaction` (which opens and commits its own), again if it lost a race with a
    concurrent one: Twilio never resends an inbound SMS, so a 500 would lose the message.
    A conflict that is not a race comes back every time and is raised after the last try."""
    for attempt in range(CONFLICT_RETRIES):
        try:
            return await transaction()
        except DBAPIError as exc:
            if attempt == CONFLICT_RETRIES - 1 or not lost_a_race(exc):
                raise
            log.info("transaction lost a race (%s); trying again", type(exc.orig).__name__)
            await asyncio.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
    raise AssertionError("unreachable")
