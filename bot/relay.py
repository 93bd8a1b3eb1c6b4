"""The built application: what the composition root (`bot.bootstrap`) hands each part.

Nothing here is global: a test, a command and the service each build their own.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from functools import cached_property

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import invite_codes
from bot.channel_health import ChannelBook
from bot.hooks import Hooks
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

    @cached_property
    def outbox_signal(self) -> asyncio.Event:
        """Set after every commit that queues messages, so the dispatcher need not poll
        hard. Made on first use: an Event belongs to the running loop."""
        return asyncio.Event()

    @cached_property
    def invite_key(self) -> bytes:
        """The secret invitation codes are made with (read or made on first use)."""
        return invite_codes.server_key(self.settings)
