"""The conductor: the whole assembly in the calendar's order on a virtual clock, with
simulated people replying to what the service delivered to them.

The clock jumps from one moment to the next: an organiser's step (bot/services/rehearsal/
steps.py), the service's next timed work or queued message (world.next_due), or the
next reply a person has in mind. At each moment the service's timers run, the outbox is
handed to the simulator, and people read and answer.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from bot.bootstrap import read_assembly_file
from bot.relay import Relay
from bot.services import invite_codes
from bot.services import turns as service
from bot.services.deliberation import timing as deliberation_timing
from bot.services.rehearsal import steps
from bot.services.rehearsal.people import (
    CODE,
    Person,
    Reply,
    decide,
    delay,
    labels_of,
    late_by,
    make_people,
    saying,
)
from bot.services.rehearsal.world import (
    World,
    close_world,
    next_due,
    open_world,
    set_time,
    timed_work,
)
from bot.settings import Settings
from flows.model import State
from store.models import OutboxMessage, OutboxStatus, Participant
from store.polls import PollWave

RECEIPT = re.compile(r"\b[2-9A-Z]{4}-[2-9A-Z]{4}\b")
LATE_STEPS = {"invitation", "consent", "registration", "confirmation"}
POLL_TICK = timedelta(hours=3)  # while a poll wave is open: its reminders come due


@dataclass
class Unanswered:
    """A message a person sent that got nothing back, and was not meant to."""

    participant: str
    step: str
    channel: str
    what: str
    at: datetime


@dataclass
class Run:
    """What the conductor leaves for the report."""

    world: World
    people: list[Person]
    unanswered: list[Unanswered] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # steps that could not be done
    sent: int = 0  # messages people sent
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
    run = Run(world, people, seed=seed)
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
        self.labels = labels_of(self.world.assembly)
        self.by_pid: dict[str, Person] = {}
        self.read_upto = 0
        self.prompts = {text: p.id for p in self.world.assembly.prompts for text in p.text.values()}
        self.wall = time.monotonic()

    def tell(self, label: str) -> None:
        span = (self.plan.end - self.plan.start).total_seconds()
        self.progress(label, min(1.0, (self.world.now - self.plan.start).total_seconds() / span))

    async def play(self) -> None:
        w, people = self.world, self.run.people
        await w.enter("pool and invitations")
        self.tell("invitations")
        await steps.import_pool(w, people, self.seed)
        self.by_pid = {p.participant_id: p for p in people if p.participant_id}
        await steps.invite(w, people)
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
            if service_due is None and await self._poll_open():
                service_due = self.world.now + POLL_TICK
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
            await self.act()

    async def _poll_open(self) -> bool:
        async with self.world.relay.sessions() as session:
            return bool(await session.scalar(select(func.count()).where(PollWave.status == "open")))

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
            names.append("invitation reminders")
        if names:
            await self.world.enter(names[0])
            self.tell(names[0])

    async def settle(self) -> None:
        """Deliver what is due and let people read it."""
        await self.world.deliver()
        await self.read()

    # ------------------------------------------------------------------ people

    async def read(self) -> None:
        """Every message delivered since the last look, to the person it was for."""
        key = self.world.relay.invite_key
        async with self.world.relay.sessions() as session:
            rows = (
                await session.execute(
                    select(OutboxMessage)
                    .where(
                        OutboxMessage.id > self.read_upto,
                        OutboxMessage.status.in_((OutboxStatus.SENT, OutboxStatus.DELIVERED)),
                    )
                    .order_by(OutboxMessage.id)
                )
            ).scalars()
            rows = list(rows)
            pending = await session.scalar(
                select(func.min(OutboxMessage.id)).where(
                    OutboxMessage.status.in_((OutboxStatus.QUEUED, OutboxStatus.SENDING))
                )
            )
        for row in rows:
            if pending is not None and row.id > pending:
                break  # read in order: what waits (quiet hours) is read when it arrives
            self.read_upto = row.id
            person = self.by_pid.get(row.participant_id)
            if person is None:
                continue
            text = invite_codes.reveal(row.text, row.kind, key)
            if row.part > 1 and person.read:
                person.read[-1]["text"] += text
                continue
            person.read.append({"text": text, "buttons": row.buttons, "channel": row.channel})
            if found := CODE.search(text):
                person.code = person.code or found[1]
        for person in self.run.people:
            if person.read:
                self._plan_reply(person)

    def _plan_reply(self, person: Person) -> None:
        person.last = person.read[-1]
        for message in person.read:
            prompt = next((pid for t, pid in self.prompts.items() if t in message["text"]), None)
            if prompt and prompt not in person.contributed:
                person.prompt = prompt  # kept until they speak to it, whatever comes next
        person.read = []
        if person.behaviour.timing == "silent" or person.stopped or person.due:
            return
        person.due = self.world.now + delay(person)

    async def act(self) -> None:
        """Everyone whose reply is due sends it, in a fixed order."""
        now = self.world.now
        due = sorted((p for p in self.run.people if p.due and p.due <= now), key=_order)
        for person in due:
            person.due = None
            flow, step = await self._where(person)
            if person.behaviour.timing == "late" and flow in LATE_STEPS:
                if flow not in person.waited:
                    person.waited.add(flow)
                    reminder = self.world.assembly.recruitment.remind_after
                    person.due = now + late_by(person, reminder if flow == "invitation" else None)
                    continue
            reply = self._reply(person, flow, step)
            if reply is not None:
                await self.send(person, reply, flow or "-")
        if due:
            await deliberation_timing.relay_waiting(self.world.relay, now=now)
            await self.settle()

    def _reply(self, person: Person, flow: str | None, step: str | None) -> Reply | None:
        message = person.last or {}
        prompt, person.prompt = person.prompt, None
        if prompt and not person.dropped:
            if person.behaviour.speaks_at_table:
                person.contributed.add(prompt)
                language = self._language.get(person.participant_id, person.language)
                return Reply(
                    person.channel,
                    saying(person, language),
                    why="spoke at table",
                    silence_expected=True,
                )
            return None
        if RECEIPT.search(message.get("text", "")) and person.behaviour.vote == "revote":
            person.voted += 1
            if person.voted == 1:
                return Reply(person.channel, "VOTE", why="asked to vote again")
            return None
        if step is None:
            return None
        return decide(person, flow, step, self.labels)

    _language: dict[str, str] = {}

    async def _where(self, person: Person) -> tuple[str | None, str | None]:
        async with self.world.relay.sessions() as session:
            raw = await session.scalar(
                select(Participant.state).where(Participant.id == person.participant_id)
            )
        state = State.from_json(raw, language=person.language)
        self._language[person.participant_id] = state.language
        return state.flow, state.step

    async def send(self, person: Person, reply: Reply, step: str) -> None:
        relay = self.world.relay
        pid = person.participant_id
        async with relay.sessions() as session:
            before = await session.scalar(
                select(func.max(OutboxMessage.id)).where(OutboxMessage.participant_id == pid)
            )
        address = person.chat if reply.channel == "telegram" else (person.phone or "")
        await service.receive(
            relay,
            channel=reply.channel,
            address=address,
            text=reply.text,
            button=reply.button,
            provider_id=f"rehearsal-{uuid.uuid4().hex}",
            language_hint=person.language,
            now=self.world.now,
        )
        self.run.sent += 1
        async with relay.sessions() as session:
            answers = await session.scalar(
                select(func.count()).where(
                    OutboxMessage.participant_id == pid, OutboxMessage.id > (before or 0)
                )
            )
        if not answers and not reply.silence_expected and reply.why not in ("STOP",):
            self.run.unanswered.append(
                Unanswered(pid or person.label, step, reply.channel, reply.why, self.world.now)
            )


def _order(person: Person) -> tuple:
    return (person.due, person.label)
