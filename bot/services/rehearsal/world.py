"""A rehearsal's sandbox: a scratch SQLite database, the application built on it exactly as
the service builds it, the simulator as the only transport, and a virtual clock.

Nothing here can reach a provider: the settings are made from scratch with every account
left out (whatever the environment or a .env file says), the dispatcher is given the
simulator's transport for each channel and nothing else, and `open_world` refuses to go on
if either were not so.
"""

from __future__ import annotations

import hashlib
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.bootstrap import build
from bot.channels.simulator import SimulatorTransport
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.ratelimit import DeliveryLimits
from bot.relay import Relay
from bot.services import ballots, deliberation, key_check, outgoing, recruitment
from bot.services.batch import Batcher
from bot.services.polls import timing as poll_timing
from bot.settings import Settings
from flows.assembly import Assembly
from scheduler.config import Calendar
from scheduler.runner import CalendarRunner
from store.ballots import Ballot
from store.calendar import CalendarJob
from store.db import make_engine, sessionmaker, upgrade_async
from store.deliberation import DeliberationJob
from store.models import OutboxMessage, OutboxStatus
from store.polls import Poll, PollRoll, PollWave
from store.recruitment import AWAITING_REPLY, Invitation

CHANNELS = ("sms", "telegram")
# Accounts the sandbox always leaves out, by their environment names.
NO_ACCOUNTS = {
    "TELEGRAM_BOT_TOKEN": None,
    "TELEGRAM_WEBHOOK_SECRET": None,
    "TWILIO_ACCOUNT_SID": None,
    "TWILIO_AUTH_TOKEN": None,
    "TWILIO_FROM_NUMBER": None,
    "TWILIO_MESSAGING_SERVICE_SID": None,
    "CONCORDER_PUBLIC_URL": None,
}


class SandboxError(RuntimeError):
    """The rehearsal would not be sealed off from real channels: it does not start."""


def sandbox_settings(directory: Path, base: Settings, seed: str) -> Settings:
    """Settings for the scratch database only: no account of any channel (the simulator
    serves both), the cost and language settings of `base`, a key made from the seed."""
    settings = Settings(
        _env_file=None,
        CONCORDER_DATABASE_URL=f"sqlite+aiosqlite:///{directory / 'rehearsal.db'}",
        CONCORDER_SECRET_KEY=hashlib.sha256(f"rehearsal:{seed}".encode()).hexdigest(),
        CONCORDER_SIMULATOR=True,
        CONCORDER_ASSEMBLY=None,
        CONCORDER_DEFAULT_LANGUAGE=base.default_language,
        CONCORDER_DEFAULT_REGION=base.default_region,
        CONCORDER_SMS_COST_PER_SEGMENT=base.sms_cost_per_segment,
        CONCORDER_SMS_MAX_SEGMENTS=base.sms_max_segments,
        CONCORDER_CHECKPOINT_DIR=str(directory / "checkpoints"),
        CONCORDER_BELENIOS_DIR=str(directory / "belenios"),
        **NO_ACCOUNTS,
    )
    if settings.real_channel_configured or set(settings.simulated_channels) != set(CHANNELS):
        raise SandboxError("a rehearsal runs on the simulator only")
    return settings


@dataclass
class Phase:
    """Part of the run, named after the organiser's step or the timed work that began it."""

    name: str
    virtual: timedelta = timedelta(0)
    wall: float = 0.0


@dataclass
class World:
    directory: Path
    settings: Settings
    relay: Relay
    dispatcher: Dispatcher
    runner: CalendarRunner | None
    assembly: Assembly
    calendar: Calendar | None
    now: datetime
    started: datetime
    phases: dict[str, Phase] = field(default_factory=dict)
    # (first outbox id, phase name) at each change of phase: rows are binned by id.
    marks: list[tuple[int, str]] = field(default_factory=list)
    current: str = ""
    _since: tuple[datetime, float] | None = None
    engine: AsyncEngine | None = None
    batcher: Batcher | None = None  # inbound messages, as the service takes webhooks
    clock: list[datetime] = field(default_factory=list)  # what the dispatcher's clock reads

    async def enter(self, name: str) -> None:
        """Start (or come back to) a phase: later outbox rows count to it."""
        if name == self.current:
            return
        self._close_interval()
        self.current = name
        self.phases.setdefault(name, Phase(name))
        async with self.relay.sessions() as session:
            last = await session.scalar(select(func.max(OutboxMessage.id))) or 0
        self.marks.append((last + 1, name))
        self._since = (self.now, time.monotonic())

    def _close_interval(self) -> None:
        if self._since is None or not self.current:
            return
        at, wall = self._since
        phase = self.phases[self.current]
        phase.virtual += self.now - at
        phase.wall += time.monotonic() - wall
        self._since = (self.now, time.monotonic())

    def finish(self) -> None:
        self._close_interval()
        self._since = None

    def phase_of(self, outbox_id: int) -> str:
        starts = [m[0] for m in self.marks]
        index = bisect_right(starts, outbox_id) - 1
        return self.marks[max(index, 0)][1] if self.marks else ""

    async def deliver(self) -> int:
        """Hand every due outbox row to the simulator, as the dispatcher does."""
        return await self.dispatcher.drain()


async def open_world(
    directory: Path,
    base: Settings,
    seed: str,
    assembly: Assembly,
    calendar: Calendar | None,
    start: datetime,
    prepare: Callable[[Relay], None] | None = None,
) -> World:
    """The sandbox, migrated and built; `prepare` may change the relay before it runs (a
    test plants a fault there)."""
    settings = sandbox_settings(directory, base, seed)
    await upgrade_async(settings.database_url)
    engine = make_engine(settings.database_url)
    event.listen(engine.sync_engine, "connect", _scratch_pragmas)
    sessions = sessionmaker(engine)
    await key_check.checked_key(settings, sessions)  # the scratch database's own key
    relay = build(settings, assembly=assembly, calendar=calendar, sessions=sessions)
    if prepare is not None:
        prepare(relay)
    world_now = [start]
    limits = DeliveryLimits.from_settings(settings)
    limits.channels.clear()  # the simulator is no carrier: no rate to keep
    transports = {channel: SimulatorTransport(channel) for channel in CHANNELS}
    dispatcher = Dispatcher(
        sessions,
        transports,
        settings,
        clock=lambda: world_now[0],
        limits=limits,
        invite_key=relay.invite_key,
    )
    if any(not isinstance(t, SimulatorTransport) for t in dispatcher.transports.values()):
        raise SandboxError("a rehearsal hands messages to the simulator only")
    runner = None
    if calendar is not None:
        runner = CalendarRunner(sessions, outgoing.enqueuer(settings), calendar=calendar)
    world = World(directory, settings, relay, dispatcher, runner, assembly, calendar, start, start)
    world.engine, world.clock, world.batcher = engine, world_now, Batcher(relay)
    return world


def _scratch_pragmas(dbapi_conn, _record) -> None:
    # A scratch database need not survive a power cut: no wait for the disk at each commit.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.close()


def set_time(world: World, now: datetime) -> None:
    world.now = now
    world.clock[0] = now


async def close_world(world: World) -> None:
    world.finish()
    await world.batcher.close()
    await world.engine.dispose()


async def timed_work(world: World) -> dict[str, list[str] | int]:
    """Everything the service's timers would do at `world.now`: recruitment reminders and
    lapses, the calendar's briefings and reminders, ballots and poll waves opening and
    closing, the small-group tables' openings, nudges, digests and closes."""
    relay, now = world.relay, world.now
    done: dict[str, list[str] | int] = {}
    done["recruitment"] = sum((await recruitment.recruitment_tick(relay, now)).values())
    if world.runner is not None:
        done["calendar"] = (await world.runner.tick(now)).ran
    done["ballots"] = await ballots.timing.tick(relay, now)
    done["polls"] = await poll_timing.tick(relay, now)
    done["deliberation"] = await deliberation.timing.run_due(relay, now=now)
    return done


async def next_due(world: World) -> datetime | None:
    """The earliest moment after now when the service has timed work or a queued message
    comes due."""
    now = world.now
    firsts = [
        select(func.min(CalendarJob.send_at)).where(
            CalendarJob.status == "pending", CalendarJob.send_at > now
        ),
        select(func.min(DeliberationJob.due_at)).where(
            DeliberationJob.status == "pending", DeliberationJob.due_at > now
        ),
        select(func.min(Ballot.opens_at)).where(Ballot.status == "draft", Ballot.opens_at > now),
        select(func.min(Ballot.closes_at)).where(Ballot.status == "open", Ballot.closes_at > now),
        select(func.min(PollWave.due_at)).where(
            PollWave.status == "pending", PollWave.due_at > now
        ),
        select(func.min(PollWave.closes_at)).where(
            PollWave.status == "open", PollWave.closes_at > now
        ),
        select(func.min(Invitation.remind_at)).where(
            Invitation.status.in_(AWAITING_REPLY),
            Invitation.reminded_at.is_(None),
            Invitation.remind_at > now,
        ),
        select(func.min(Invitation.lapse_at)).where(
            Invitation.status.in_(AWAITING_REPLY), Invitation.lapse_at > now
        ),
        select(func.min(OutboxMessage.next_attempt_at)).where(
            OutboxMessage.status == OutboxStatus.QUEUED, OutboxMessage.next_attempt_at > now
        ),
    ]
    async with world.relay.sessions() as session:
        row = (await session.execute(select(*(q.scalar_subquery() for q in firsts)))).one()
        reminders = await _poll_reminders(session, now)
    candidates = [*(_utc(c) for c in row), *reminders]
    return min((c for c in candidates if c is not None), default=None)


def _utc(moment: datetime | None) -> datetime | None:
    """Subqueries come back as they are stored (naive on SQLite): read them as UTC."""
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


async def _poll_reminders(session, now: datetime) -> list[datetime]:
    """When each open poll wave's next reminder is due: `reminder_hours` after the
    earliest ask of someone not reminded who has not finished."""
    due = []
    waves = await session.execute(
        select(PollWave.poll_id, PollWave.wave_id, Poll.definition)
        .join(Poll, Poll.id == PollWave.poll_id)
        .where(PollWave.status == "open")
    )
    for poll_id, wave_id, definition in waves.all():
        hours = definition.get("reminder_hours")
        first = await session.scalar(
            select(func.min(PollRoll.asked_at)).where(
                PollRoll.poll_id == poll_id,
                PollRoll.wave_id == wave_id,
                PollRoll.asked.is_(True),
                PollRoll.finished.is_(False),
                PollRoll.reminded == 0,
            )
        )
        if hours and first is not None:
            at = _utc(first) + timedelta(hours=hours)
            due.append(max(at, now + timedelta(minutes=1)))
    return due
