"""What every part of broadcasting shares."""

from __future__ import annotations


class BroadcastError(ValueError):
    """A broadcast that cannot be made; the message says what to change."""
