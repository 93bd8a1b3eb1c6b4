"""The rehearsal's report: per phase the messages out, SMS segments and cost, virtual and
wall time; the funnel; the messages that got no answer and those never delivered.

Everything is read from the scratch database after the run, so the report says what the
service did, not what the simulated people meant to do. Participants appear by pseudonym.
Only virtual times and counts go into `data()`: wall times are shown but left out of it, so
the same seed gives the same data.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from bot.services.rehearsal.conductor import Run
from store.ballots import BallotRoll
from store.groups import GroupSeat
from store.models import AuditEvent, Contact, InboundMessage, OutboxMessage, OutboxStatus
from store.recruitment import RESERVE, Selection

FUNNEL = (
    "invited",
    "replied",
    "consented",
    "registered",
    "drawn",
    "confirmed",
    "seated",
    "spoke",
    "voted",
)
SHOWN = (OutboxStatus.SENT, OutboxStatus.DELIVERED)


@dataclass
class PhaseRow:
    name: str
    messages: dict[str, int]  # by channel
    sms_segments: int
    cost: float
    virtual: timedelta
    wall: float


@dataclass
class Report:
    assembly: str
    people: int
    seed: str
    price: float
    start: str
    end: str
    phases: list[PhaseRow]
    funnel: list[tuple[str, int]]
    unanswered: list[dict[str, str]]
    undelivered: list[dict[str, Any]]
    problems: list[str]
    people_sent: int
    wall: float = 0.0

    def data(self) -> dict[str, Any]:
        """The report as plain data (what --format json writes), without wall times."""
        return {
            "assembly": self.assembly,
            "people": self.people,
            "seed": self.seed,
            "price_per_segment": self.price,
            "virtual_start": self.start,
            "virtual_end": self.end,
            "messages_from_people": self.people_sent,
            "phases": [
                {
                    "phase": p.name,
                    "messages": dict(sorted(p.messages.items())),
                    "sms_segments": p.sms_segments,
                    "sms_cost": round(p.cost, 4),
                    "virtual_time": _duration(p.virtual),
                }
                for p in self.phases
            ],
            "funnel": [
                {"step": step, "people": n, "dropped": prev - n}
                for (step, n), prev in zip(self.funnel, _previous(self.funnel), strict=True)
            ],
            "never_answered": self.unanswered,
            "never_delivered": self.undelivered,
            "problems": self.problems,
        }

    @property
    def total_cost(self) -> float:
        return sum(p.cost for p in self.phases)

    @property
    def total_segments(self) -> int:
        return sum(p.sms_segments for p in self.phases)


def _previous(funnel: list[tuple[str, int]]) -> list[int]:
    return [funnel[0][1] if funnel else 0, *(n for _, n in funnel[:-1])]


def _duration(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    return f"{days}d {hours:02d}h{minutes:02d}" if days else f"{hours}h{minutes:02d}"


async def build_report(run: Run) -> Report:
    world = run.world
    world.finish()
    price = world.settings.sms_cost_per_segment
    async with world.relay.sessions() as session:
        rows = (
            await session.execute(
                select(
                    OutboxMessage.id,
                    OutboxMessage.channel,
                    OutboxMessage.segments,
                    OutboxMessage.status,
                    OutboxMessage.kind,
                    OutboxMessage.participant_id,
                )
            )
        ).all()
        funnel = await _funnel(session)
    counts: dict[str, Counter] = defaultdict(Counter)
    segments: Counter = Counter()
    undelivered: Counter = Counter()
    who: dict[tuple, list[str]] = defaultdict(list)
    for row in rows:
        phase = world.phase_of(row.id)
        counts[phase][row.channel] += 1
        if row.channel == "sms" and row.status in SHOWN:
            segments[phase] += row.segments
        if row.status not in SHOWN:
            key = (phase, row.status, row.kind, row.channel)
            undelivered[key] += 1
            who[key].append(row.participant_id)
    phases = [
        PhaseRow(
            p.name,
            dict(counts[p.name]),
            segments[p.name],
            segments[p.name] * price,
            p.virtual,
            p.wall,
        )
        for p in world.phases.values()
    ]
    return Report(
        assembly=world.assembly.name,
        people=len(run.people),
        seed=run.seed,
        price=price,
        start=world.started.isoformat(),
        end=world.now.isoformat(),
        phases=phases,
        funnel=funnel,
        unanswered=[
            {
                "participant": u.participant,
                "step": u.step,
                "channel": u.channel,
                "sent": u.what,
                "at": u.at.isoformat(),
            }
            for u in run.replies.unanswered
        ],
        undelivered=[
            {
                "phase": phase,
                "status": status,
                "kind": kind,
                "channel": channel,
                "messages": n,
                "participants": sorted(set(who[(phase, status, kind, channel)]))[:5],
            }
            for (phase, status, kind, channel), n in sorted(undelivered.items())
        ],
        problems=list(run.problems),
        people_sent=run.replies.sent,
        wall=sum(p.wall for p in world.phases.values()),
    )


async def _ids(session, query) -> set[str]:
    return {pid for pid in (await session.execute(query)).scalars() if pid}


async def _events(session, kind: str) -> set[str]:
    return await _ids(session, select(AuditEvent.participant_id).where(AuditEvent.kind == kind))


async def _funnel(session) -> list[tuple[str, int]]:
    """People at each step who also passed every step before it."""
    sets = {
        "invited": await _events(session, "invitation.sent"),
        "replied": await _ids(
            session,
            select(Contact.participant_id).join(
                InboundMessage, InboundMessage.contact_id == Contact.id
            ),
        ),
        "consented": await _events(session, "consent.given"),
        "registered": await _events(session, "registration.completed"),
        "drawn": await _ids(
            session, select(Selection.participant_id).where(Selection.status != RESERVE)
        ),
        "confirmed": await _events(session, "selection.confirmed"),
        "seated": await _ids(session, select(GroupSeat.participant_id)),
        "spoke": await _events(session, "deliberation.contributed"),
        "voted": await _ids(
            session, select(BallotRoll.participant_id).where(BallotRoll.voted.is_(True))
        ),
    }
    funnel, passed = [], None
    for step in FUNNEL:
        passed = sets[step] if passed is None else passed & sets[step]
        funnel.append((step, len(passed)))
    return funnel
