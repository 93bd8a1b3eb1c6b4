"""When a message whose turn failed is tried again, and when the service gives up."""

from __future__ import annotations

from datetime import timedelta

# After the 1st, 2nd, ... failure: 1, 5, 15 then 40 minutes. The fifth failure, about an
# hour after the first, is the last: a fault that lasts that long needs a person.
DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(minutes=40),
)
MAX_FAILURES = len(DELAYS) + 1


def next_try(failures: int) -> timedelta:
    """How long after its `failures`-th failure a message is tried again."""
    return DELAYS[min(failures, len(DELAYS)) - 1]


def gives_up(failures: int) -> bool:
    return failures >= MAX_FAILURES
