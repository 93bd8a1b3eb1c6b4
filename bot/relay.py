"""The built application: what the composition root (`bot.bootstrap`) hands each part.

Nothing here is global: a test, a command and the service each build their own.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.delivery.health import ChannelBook
from bot.hooks import Hooks
from bot.services import invite_codes
from bot.settings import Settings
from flows.assembly import Assembly
from flows.engine import Engine
from scheduler.audience import Audience, confirmed_panel
from scheduler.config import Calendar


@dataclass(eq=False)
class Relay:
    settings: Settings
    # The conversations: every flow and command (flows.catalog.build_engine).
    engine: Engine
    hooks: Hooks = field(default_factory=Hooks)
    # The assembly file's recruitment and calendar tables (None: not configured).
    assembly: Assembly | None = None
    calendar: Calendar | None = None
    # Who gets briefings and reminders.
    audience: Audience = confirmed_panel
    # Set once the database is open (the web app's start-up, a command, a test).
    sessions: async_sessionmaker[AsyncSession] | None = None
    health: ChannelBook = field(default_factory=ChannelBook)
    # While the web app runs: its inbound batcher (bot.services.batch.Batcher), through
    # which webhooks' messages go in groups; None elsewhere (commands, tests: one by one).
    batcher: Any = None

    @cached_property
    def outbox_signal(self) -> asyncio.Event:
        """Set after every commit that queues messages, so the dispatcher need not poll
        hard. Made on first use: an Event belongs to the running loop."""
        return asyncio.Event()

    @cached_property
    def _wakes(self) -> dict[str, asyncio.Event]:
        return {}

    def wake(self, step: str) -> asyncio.Event:
        """Set to wake a background step (`step` names it) before its next tick: the one
        place such signals live, so no module keeps them for every Relay."""
        if step not in self._wakes:
            self._wakes[step] = asyncio.Event()
        return self._wakes[step]

    @cached_property
    def _sqlite_writer(self) -> asyncio.Lock:
        return asyncio.Lock()

    def write_turn(self) -> contextlib.AbstractAsyncContextManager:
        """Held around an inbound turn's transaction. SQLite lets one transaction write at
        a time, and one that finds the file locked sleeps in growing steps (up to 100 ms)
        before it looks again: concurrent webhooks then wait long after the lock is free.
        The turns of one instance therefore queue here in turn; PostgreSQL needs no queue."""
        if self.settings.database_url.startswith("sqlite"):
            return self._sqlite_writer
        return contextlib.nullcontext()

    @cached_property
    def person_lookup(self) -> Any:
        """The query an inbound turn finds and locks its person with (built once: the hooks
        are registered by then). On SQLite it reads the hooks' person columns beside them:
        a writer holds the whole database, so they stay true for the turn. PostgreSQL reads
        them apart, after the lock: a query that waited for the lock would have read the
        other tables as they were before the transaction it waited for committed."""
        from bot.services.people import locking_lookup

        sqlite = self.settings.database_url.startswith("sqlite")
        return locking_lookup(self.hooks.person_columns if sqlite else None)

    @cached_property
    def invite_key(self) -> bytes:
        """The secret invitation codes are made with (read or made on first use)."""
        return invite_codes.server_key(self.settings)
