"""The calendar inside the service: every tick, plan (now and then) and run what is due.

The service's timers (scheduler/timers.py) tick `CalendarRunner.tick`; tests call `tick(now)` on a
clock of their own. Any number of instances may run on one PostgreSQL database.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flows.config_file import AssemblyFile, ConfigError
from scheduler.config import Calendar, CalendarError, load_calendar
from scheduler.jobs import Enqueue, SyncResult, run_due, sync
from store.models import utcnow

log = logging.getLogger(__name__)

TICK_SECONDS = 30
REPLAN_EVERY = timedelta(minutes=1)


@dataclass
class Tick:
    planned: SyncResult | None
    ran: int


class CalendarRunner:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        enqueue: Enqueue,
        *,
        calendar: Calendar | None = None,
        owner: str | None = None,
        replan_every: timedelta = REPLAN_EVERY,
        batch: int = 50,
        path: str | Path | None = None,
        on_reload: Callable[[Calendar], None] | None = None,
    ):
        """`enqueue` writes due messages to the outbox (see scheduler.jobs.Enqueue);
        `on_reload` is told of a calendar re-read from the file, so the conversations see
        it too."""
        self.sessions = sessions
        self.enqueue = enqueue
        self.on_reload = on_reload
        self._calendar = calendar
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.replan_every = replan_every
        self.batch = batch  # jobs per transaction
        self._planned_at: datetime | None = None
        # The assembly file, re-read when it changes (a session moved in the file).
        self.path = Path(path) if path else None
        self._mtime: float | None = None
        if self.path is not None and calendar is None:
            self.reload_if_changed()
        elif self.path is not None and self.path.exists():
            self._mtime = self.path.stat().st_mtime

    @property
    def calendar(self) -> Calendar | None:
        return self._calendar

    def reload_if_changed(self) -> bool:
        """Re-read the assembly file if it changed; a broken edit keeps the old calendar."""
        if self.path is None:
            return False
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return False
        if mtime == self._mtime:
            return False
        self._mtime = mtime
        try:
            calendar = load_calendar(self.path)
        except CalendarError as exc:
            for problem in exc.problems:
                log.error("calendar not reloaded: %s: %s", exc.path, problem)
            return False
        self._calendar = calendar
        if self.on_reload is not None:
            self.on_reload(calendar)
        self._planned_at = None  # plan again now
        log.info("calendar reloaded from %s", self.path)
        return True

    async def tick(self, now: datetime | None = None) -> Tick:
        """Plan when it is time to, then claim and run every job due at `now`."""
        now = now or utcnow()
        self.reload_if_changed()
        calendar = self.calendar
        if calendar is None:
            return Tick(None, 0)
        planned = None
        if (
            self._planned_at is None
            or now - self._planned_at >= self.replan_every
            or now < self._planned_at
        ):
            async with self.sessions.begin() as session:
                planned = await sync(session, calendar, now)
            self._planned_at = now
        ran = await run_due(
            self.sessions, self.enqueue, calendar, now, owner=self.owner, batch=self.batch
        )
        return Tick(planned, ran)


def has_calendar(path: str | Path) -> bool:
    """Whether an assembly file has calendar tables at all (a recruitment-only file has not)."""
    try:
        return AssemblyFile.read(path).has_calendar
    except (ConfigError, OSError):
        return True  # let the loader report the problem


def load_for(assembly_file: str | None) -> Calendar | None:
    """The calendar of an assembly file, or None when there is none."""
    if not assembly_file or not has_calendar(assembly_file):
        return None
    return load_calendar(assembly_file)
