"""The conductor: the whole assembly in the calendar's order on a virtual clock, with
simulated people replying to what the service delivered to them.

The clock jumps from one moment to the next: an organiser's step (bot/services/rehearsal/
steps.py), the service's next timed work or queued message (world.next_due), or the
next reply a person has in mind. At each moment the service's timers run, the outbox is
handed to the simulator, and people read and answer.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from bot.bootstrap import read_assembly_file
from bot.relay import Relay
from bot.services.rehearsal import steps
from bot.services.rehearsal.people import Person, make_people
from bot.services.rehearsal.replies import Replies
from bot.services.rehearsal.world import (
    World,
    close_world,
    next_due,
    open_world,
    set_time,
    timed_work,
)
from bot.settings import Settings


@dataclass
class Run:
    """What the conductor leaves for the report."""

    world: World
    people: list[Person]
    replies: Replies
    problems: list[str] = field(default_factory=list)  # steps that could not be done
    seed: str = ""


Progress = Callable[[str, float], None]


async def rehearse(
    assembly_path: str | Path,
    people_count: int,
    seed: str,
    *,
    base: Settings | None = None,
    keep: Path | None = None,
    progress: Progress | None = None,
    prepare: Callable[[Relay], None] | None = None,
    report=None,
):
    """Run the whole assembly on a scratch database and return `report(run)` (by default
    the report of bot/services/rehearsal/report.py). `keep`: the directory to leave the
    scratch database in; otherwise a temporary one, removed after."""
    from bot.services.rehearsal.report import build_report

    report = report or build_report
    base = base or Settings(_env_file=None)
    assembly, calendar = read_assembly_file(str(assembly_path))
    plan = steps.timeline(assembly, calendar)
    directory = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="concorder-rehearsal-"))
    directory.mkdir(parents=True, exist_ok=True)
    world = await open_world(directory, base, seed, assembly, calendar, plan.start, prepare)
    pool = steps.scratch_pool_rows(Path(assembly_path).parent / "pool.csv")
    people = make_people(assembly, people_count, seed, pool, base.default_region)
    run = Run(world, people, Replies(world, people), seed=seed)
    conductor = Conductor(run, plan, seed, progress or (lambda _label, _done: None))
    try:
        await conductor.play()
        return await report(run)
    finally:
        await close_world(world)
        if keep is None:
            shutil.rmtree(directory, ignore_errors=True)


class Conductor:
    def __init__(self, run: Run, plan: steps.Timeline, seed: str, progress: Progress):
        self.run = run
        self.world = run.world
        self.plan = plan
        self.seed = seed
        self.progress = progress
        self.replies = run.replies

    def tell(self, label: str) -> None:
        span = (self.plan.end - self.plan.start).total_seconds()
        self.progress(label, min(1.0, (self.world.now - self.plan.start).total_seconds() / span))

    async def play(self) -> None:
        w, people = self.world, self.run.people
        await w.enter("pool and invitations")
        self.tell("invitations")
        await steps.import_pool(w, people, self.seed)
        self.replies.known()
        await steps.invite(w, people)
        for person in people:
            if person.phone is None and person.code and person.behaviour.timing != "silent":
                person.due = w.now + timedelta(hours=person.rng.randint(2, 48))  # the post
        await self.settle()
        await self.advance(self.plan.draw)
        await w.enter("draw")
        self.tell("draw")
        problem = await steps.draw(w, self.seed)
        if problem:
            self.run.problems.append(f"draw: {problem}")
            return
        await self.advance(self.plan.notify)
        await w.enter("notification and confirmations")
        await steps.notify_draw(w)
        await self.settle()
        await self.advance(self.plan.confirmed_by)
        await w.enter("replacements and confirmations")
        added, problem = await steps.replace(w, self.seed)
        if problem:
            self.run.problems.append(f"replace: {problem}")
        await self.settle()
        await self.advance(self.plan.replaced_by)
        await self.advance(self.plan.groups)
        await w.enter("groups")
        self.tell("groups")
        problem = await steps.seat_groups(w, self.seed)
        if problem:
            self.run.problems.append(f"groups: {problem}")
        await self.tick()
        await self.settle()
        await self.advance(self.plan.end)
        self.tell("done")

    # ------------------------------------------------------------------ the clock

    async def advance(self, until: datetime) -> None:
        """Move the clock on, moment by moment, up to `until`."""
        while True:
            service_due = await next_due(self.world)
            people_due = min((p.due for p in self.run.people if p.due), default=None)
            moments = [t for t in (service_due, people_due) if t is not None]
            at = min(moments, default=None)
            if at is None or at > until:
                set_time(self.world, max(until, self.world.now))
                await self.tick()
                await self.settle()
                return
            set_time(self.world, max(at, self.world.now))
            if service_due is not None and at >= service_due:
                await self.tick()
                await self.settle()
            if await self.replies.act():
                await self.settle()

    async def tick(self) -> None:
        """The service's timers at this moment; the phase is named after what they did."""
        done = await timed_work(self.world)
        names = []
        for entry in done["ballots"]:
            names.append(f"ballot {entry.split(' ', 1)[1]}")
        for entry in done["polls"]:
            if entry.startswith("opened "):
                names.append(f"poll {entry.split(' ', 1)[1]}")
        if done["deliberation"]:
            names.append("table prompts")
        if done.get("calendar"):
            names.append("briefings and reminders")
        if done["recruitment"] and self.world.current == "pool and invitations":
            names.append("registration window")
        if names:
            await self.world.enter(names[0])
            self.tell(names[0])

    async def settle(self) -> None:
        """Deliver what is due and let people read it."""
        await self.world.deliver()
        await self.replies.read()
