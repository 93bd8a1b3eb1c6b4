"""Whether each channel's sends are going through, as this process's dispatcher sees them.

A send that fails for a passing reason (the provider is down, a timeout) counts against its
channel; any send that goes through clears the count. Messages given up (marked failed) are
counted apart, with the last reason. `/healthz` and `/metrics` read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.metrics import CHANNEL_DEGRADED, CHANNEL_FAILURES

# Failures in a row before a channel counts as degraded: one or two are a recipient's or a
# network's hiccup, more mean the provider itself is in trouble.
DEGRADED_AFTER = 3


@dataclass
class ChannelHealth:
    channel: str
    failures: int = 0  # consecutive
    failing_since: datetime | None = None  # the first of those failures
    last_error: str | None = None
    # Messages this process stopped trying to send (marked failed), and the last reason.
    gave_up: int = 0
    last_gave_up: str | None = None

    @property
    def degraded(self) -> bool:
        return self.failures >= DEGRADED_AFTER

    def failed(self, at: datetime, reason: str) -> None:
        if not self.failures:
            self.failing_since = at
        self.failures += 1
        self.last_error = reason
        CHANNEL_FAILURES.labels(self.channel).set(self.failures)
        CHANNEL_DEGRADED.labels(self.channel).set(1 if self.degraded else 0)

    def given_up(self, reason: str) -> None:
        self.gave_up += 1
        self.last_gave_up = reason

    def succeeded(self) -> None:
        """Called only when `failures` is set: the hot path checks that itself."""
        self.failures, self.failing_since, self.last_error = 0, None, None
        CHANNEL_FAILURES.labels(self.channel).set(0)
        CHANNEL_DEGRADED.labels(self.channel).set(0)

    def as_json(self) -> dict[str, object]:
        return {
            "consecutive_failures": self.failures,
            "failing_since": self.failing_since.isoformat() if self.failing_since else None,
            "last_error": self.last_error,
            "failed_messages": self.gave_up,
            "last_failed_reason": self.last_gave_up,
        }


class ChannelBook:
    """Every channel's health in one service instance (what /healthz reports)."""

    def __init__(self) -> None:
        self._channels: dict[str, ChannelHealth] = {}

    def channel(self, name: str) -> ChannelHealth:
        health = self._channels.get(name)
        if health is None:
            health = self._channels[name] = ChannelHealth(name)
            CHANNEL_FAILURES.labels(name).set(0)
            CHANNEL_DEGRADED.labels(name).set(0)
        return health

    def channels(self) -> dict[str, ChannelHealth]:
        return dict(self._channels)
