"""The simulated people's side of a rehearsal: reading what the service delivered to them,
deciding what to answer (bot/services/rehearsal/people.py) and when, sending it through
the service's own inbound turn, and noting every message that got nothing back."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from bot.services import invite_codes
from bot.services.deliberation import timing as deliberation_timing
from bot.services.rehearsal.answers import Reply, decide, delay, labels_of, late_by, saying
from bot.services.rehearsal.people import CODE, Person
from bot.services.rehearsal.world import World
from flows.model import State
from store.models import OutboxMessage, OutboxStatus, Participant

RECEIPT = re.compile(r"\b[2-9A-Z]{4}-[2-9A-Z]{4}\b")
LATE_STEPS = {"invitation", "consent", "registration", "confirmation"}
SHOWN = (OutboxStatus.SENT, OutboxStatus.DELIVERED)
WAITING = (OutboxStatus.QUEUED, OutboxStatus.SENDING)


@dataclass
class Unanswered:
    """A message a person sent that got nothing back, and was not meant to."""

    participant: str
    step: str
    channel: str
    what: str
    at: datetime


class Replies:
    """The people of one rehearsal, as the service sees them: by pseudonym."""

    def __init__(self, world: World, people: list[Person]):
        self.world = world
        self.people = people
        self.by_pid: dict[str, Person] = {}
        self.labels = labels_of(world.assembly)
        self.prompts = {text: p.id for p in world.assembly.prompts for text in p.text.values()}
        self.language: dict[str, str] = {}  # participant -> their conversation's language
        self.unanswered: list[Unanswered] = []
        self.sent = 0
        self.floor = 0  # every outbox row up to here is read or will never arrive
        self.seen: set[int] = set()  # rows above the floor already read

    def known(self) -> None:
        """Once the pool is imported: who is who."""
        self.by_pid = {p.participant_id: p for p in self.people if p.participant_id}

    async def read(self) -> None:
        """Every message delivered since the last look, to the person it was for."""
        key = self.world.relay.invite_key
        async with self.world.relay.sessions() as session:
            rows = (
                await session.execute(
                    select(OutboxMessage)
                    .where(OutboxMessage.id > self.floor, OutboxMessage.status.in_(SHOWN))
                    .order_by(OutboxMessage.id)
                )
            ).scalars()
            rows = [row for row in rows if row.id not in self.seen]
            waiting = await session.scalar(
                select(func.min(OutboxMessage.id)).where(OutboxMessage.status.in_(WAITING))
            )
        for row in rows:
            self.seen.add(row.id)
            person = self.by_pid.get(row.participant_id)
            if person is not None:
                self._take(person, row, invite_codes.reveal(row.text, row.kind, key))
        top = max(self.seen, default=self.floor)
        self.floor = min(top, waiting - 1) if waiting is not None else top
        self.seen = {n for n in self.seen if n > self.floor}
        for person in self.people:
            if person.read:
                self._plan(person)

    @staticmethod
    def _take(person: Person, row: OutboxMessage, text: str) -> None:
        if row.part > 1 and person.read:
            person.read[-1]["text"] += text
            return
        person.read.append({"text": text, "buttons": row.buttons, "channel": row.channel})
        if found := CODE.search(text):
            person.code = person.code or found[1]

    def _plan(self, person: Person) -> None:
        person.last = person.read[-1]
        for message in person.read:
            prompt = next((pid for t, pid in self.prompts.items() if t in message["text"]), None)
            if prompt and prompt not in person.contributed:
                person.prompt = prompt  # kept until they speak to it, whatever comes next
        person.read = []
        if person.behaviour.timing == "silent" or person.stopped or person.due:
            return
        person.due = self.world.now + delay(person)

    async def act(self) -> bool:
        """Everyone whose reply is due sends it, in a fixed order. True if anyone was due."""
        now = self.world.now
        due = sorted((p for p in self.people if p.due and p.due <= now), key=_order)
        where = await self._where([p.participant_id for p in due]) if due else {}
        sending = []
        for person in due:
            person.due = None
            flow, step = where.get(person.participant_id, (None, None))
            if person.behaviour.timing == "late" and flow in LATE_STEPS:
                if flow not in person.waited:
                    person.waited.add(flow)
                    reminder = self.world.assembly.recruitment.remind_after
                    person.due = now + late_by(person, reminder if flow == "invitation" else None)
                    continue
            reply = self._reply(person, flow, step)
            if reply is not None:
                sending.append((person, reply, flow or "-"))
        if sending:
            await self.send(sending)
        if due:  # the service relays a table's messages as soon as their turn commits
            await deliberation_timing.relay_waiting(self.world.relay, now=now)
        return bool(due)

    def _reply(self, person: Person, flow: str | None, step: str | None) -> Reply | None:
        if person.phone is None and person.code and not person.switched:
            person.switched = True  # their letter: its link opens the chat
            return Reply("telegram", f"/start {person.code}", why="opened the letter's link")
        message = person.last or {}
        prompt, person.prompt = person.prompt, None
        if prompt and not person.dropped:
            if not person.behaviour.speaks_at_table:
                return None
            person.contributed.add(prompt)
            language = self.language.get(person.participant_id, person.language)
            return Reply(
                person.channel,
                saying(person, language),
                why="spoke at table",
                silence_expected=True,  # read by the table, not answered
            )
        if RECEIPT.search(message.get("text", "")) and person.behaviour.vote == "revote":
            person.voted += 1
            if person.voted == 1:
                return Reply(person.channel, "VOTE", why="asked to vote again")
            return None
        if step is None:  # the service is not waiting for an answer
            return None
        return decide(person, flow, step, self.labels)

    async def _where(self, pids: list[str | None]) -> dict[str, tuple[str | None, str | None]]:
        """Where each one's conversation waits (to name the step; what they answer comes
        from the message). Only their own turns change it, so one look serves a moment."""
        async with self.world.relay.sessions() as session:
            rows = await session.execute(
                select(Participant.id, Participant.state, Participant.language).where(
                    Participant.id.in_([pid for pid in pids if pid])
                )
            )
        found = {}
        for pid, raw, language in rows:
            state = State.from_json(raw, language=language)
            self.language[pid] = state.language
            found[pid] = (state.flow, state.step)
        return found

    async def send(self, sending: list[tuple[Person, Reply, str]]) -> None:
        """The messages of one moment, as webhooks arriving together: through the service's
        inbound batcher (one transaction per group, the same turns). Whoever got nothing
        back is noted (each person sends at most one message a moment)."""
        relay = self.world.relay
        async with relay.sessions() as session:
            before = await session.scalar(select(func.max(OutboxMessage.id))) or 0
        await asyncio.gather(
            *(
                self.world.batcher.receive(
                    channel=reply.channel,
                    address=person.chat if reply.channel == "telegram" else (person.phone or ""),
                    text=reply.text,
                    button=reply.button,
                    provider_id=f"rehearsal-{uuid.uuid4().hex}",
                    language_hint=person.language,
                    now=self.world.now,
                )
                for person, reply, _ in sending
            )
        )
        self.sent += len(sending)
        async with relay.sessions() as session:
            answered = set(
                (
                    await session.execute(
                        select(OutboxMessage.participant_id).where(OutboxMessage.id > before)
                    )
                ).scalars()
            )
        for person, reply, step in sending:
            # A message at a table is read by the table; after STOP, silence is the promise.
            if person.participant_id not in answered and not reply.silence_expected:
                self.unanswered.append(
                    Unanswered(
                        person.participant_id or person.label,
                        step,
                        reply.channel,
                        reply.why,
                        self.world.now,
                    )
                )


def _order(person: Person) -> tuple:
    return (person.due, person.label)
