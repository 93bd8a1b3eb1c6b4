"""The turn's own transaction, lent to a service function written to open its own.

The conversation's facilitator operations (bot.services.deliberation) each take the
`Relay` and run in a transaction of their own. A facilitator's chat command must change
the table and answer them in one transaction, the turn's: `joined(relay, session)` is a
copy of the relay whose `sessions()` and `sessions.begin()` hand out the turn's session,
without committing or closing it; the caller commits with the turn.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.relay import Relay


class _Lent:
    """The turn's session as a context manager whose begin() joins, never commits."""

    def __init__(self, session: AsyncSession):
        self._session = session

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    async def __aenter__(self) -> _Lent:
        return self

    async def __aexit__(self, *exc: object) -> bool:
        return False

    def begin(self) -> contextlib.AbstractAsyncContextManager:
        return self

    def begin_nested(self) -> Any:
        return self._session.begin_nested()


class _Sessions:
    def __init__(self, session: AsyncSession, kw: dict[str, Any]):
        self._lent = _Lent(session)
        self.kw = kw

    def __call__(self) -> _Lent:
        return self._lent

    def begin(self) -> _Lent:
        return self._lent


def joined(relay: Relay, session: AsyncSession) -> Relay:
    lent = copy.copy(relay)
    lent.sessions = _Sessions(session, getattr(relay.sessions, "kw", {}))
    return lent
