"""When a failed send is tried again, and when it is given up.

A message that fails for a passing reason (provider down, timeout) is retried with capped
exponential backoff and jitter until it has been due for `settings.retry_for` (24 hours by
default): it is given up by age, not after a few attempts. A send that raised something
no transport is meant to raise (a bug, an unexpected network error) is retried the same
way, but only `UNEXPECTED_ATTEMPTS` times: a fault that repeats is no passing reason, and
the messages behind it to the same contact wait meanwhile. So is an attempt that ended with
no outcome at all (processing failed outside the send, say a database error while moving
the message to SMS, or the lease ran out before the outcome was written): `MAX_FAULTS`
such attempts, counted in the row, and the message is failed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # claims.py reads MAX_FAULTS from here
    from bot.delivery.claims import Claimed

# The longest wait between two attempts at one message (before jitter halves it at most):
# after an outage the queue starts moving again within five minutes.
BACKOFF_CAP = 300.0
# Attempts at a message whose send keeps raising something unexpected: with the backoff
# above, two to four minutes of trying.
UNEXPECTED_ATTEMPTS = 8
# Attempts that ended with no outcome before a message is failed (outbox.faults).
MAX_FAULTS = 8


def backoff(
    attempt: int,
    *,
    base: float = 2.0,
    cap: float = BACKOFF_CAP,
    rng: Callable[[], float] = random.random,
) -> float:
    """Exponential backoff with jitter: half fixed, half random, so retries spread out."""
    ceiling = min(cap, base * 2 ** min(30, max(0, attempt - 1)))
    return ceiling / 2 + ceiling / 2 * rng()


def age(elapsed: timedelta) -> str:
    hours, seconds = divmod(int(elapsed.total_seconds()), 3600)
    return f"{hours} h {seconds // 60} min" if hours else f"{seconds // 60} min {seconds % 60} s"


@dataclass(frozen=True, slots=True)
class Retry:
    """What becomes of a failed attempt: tried again at `at`, or given up (`at` is None)."""

    error: str
    at: datetime | None = None


def after_failure(
    row: Claimed,
    reason: str,
    after: float | None,
    *,
    now: datetime,
    retry_for: timedelta,
    rng: Callable[[], float],
    unexpected: bool = False,
) -> Retry:
    """Try again later, until the message has been due for `retry_for` (or, for an
    unexpected fault, until UNEXPECTED_ATTEMPTS); a message that expires sooner is looked
    at again when it expires, so it holds up nobody behind."""
    give_up_at = row.not_before + retry_for
    if now >= give_up_at or (unexpected and row.attempts >= UNEXPECTED_ATTEMPTS):
        return Retry(
            f"gave up after {row.attempts} attempts over {age(now - row.not_before)}: {reason}"
        )
    # The channel's own retry_after is honoured exactly; our guesses get jitter.
    delay = after if after is not None else backoff(row.attempts, rng=rng)
    next_attempt = min(now + timedelta(seconds=delay), give_up_at)
    if row.expires_at is not None:
        next_attempt = min(next_attempt, row.expires_at)
    return Retry(reason, next_attempt)


def after_fault(row: Claimed, reason: str, *, now: datetime, rng: Callable[[], float]) -> Retry:
    """An attempt that failed outside the send: tried again with backoff, given up at the
    MAX_FAULTS-th such attempt (however young the message)."""
    faults = row.faults + 1
    if faults >= MAX_FAULTS:
        return Retry(f"gave up after {faults} attempts that failed before an outcome: {reason}")
    next_attempt = now + timedelta(seconds=backoff(faults, rng=rng))
    if row.expires_at is not None:
        next_attempt = min(next_attempt, row.expires_at)
    return Retry(reason, next_attempt)
