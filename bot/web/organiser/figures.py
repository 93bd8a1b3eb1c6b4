"""What the organiser page shows, read through the services' own queries: the same
figures as `concorder status`, `outbox status`, `broadcast status`, `groups stats`,
`ballot status` (turnout only) and `inbound show` (counts only)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from bot.delivery.queue import by_channel, opted_out_by_channel
from bot.relay import Relay
from bot.services import broadcast, deliberation, recruitment
from bot.services.ballots.records import with_turnout
from bot.services.deliberation import PromptState
from bot.services.facilitation.facts import round_under_way
from bot.services.unhandled import records as unhandled
from scheduler.config import Calendar
from scheduler.events import read_counts
from store.ballots import OPEN, Ballot
from store.groups import GroupSeat, current_run, seats_of
from store.models import OutboxStatus
from store.organisers import Broadcast

CHANNELS = ("telegram", "sms")
S = OutboxStatus
# The page's delivery columns, from the states an outbox row is stored in.
DELIVERY = {
    S.QUEUED: "queued",
    S.SENDING: "queued",
    S.SENT: "sent",
    S.DELIVERED: "sent",
    S.FAILED: "failed",
    S.UNDELIVERABLE: "failed",
}


@dataclass
class Delivery:
    channel: str
    queued: int = 0
    sent: int = 0  # sent or delivered
    failed: int = 0  # failed or undeliverable
    opted_out: int = 0  # contacts on this channel that may not be sent to


@dataclass
class Seat:
    name: str  # "A P1A2B3C4D5E6", as `groups show` names them
    letter: str
    spoken: bool | None  # wrote or passed in the open prompt; None: no prompt open


@dataclass
class TableRow:
    number: int
    prompt: PromptState | None  # the prompt open (or paused) at this table
    seats: list[Seat] = field(default_factory=list)


@dataclass
class BriefingRow:
    id: str
    title: str
    sent: int
    read: int


@dataclass
class Figures:
    funnel: recruitment.Funnel
    delivery: list[Delivery]
    broadcasts: list[tuple[Broadcast, broadcast.Status]]
    round: int | None
    tables: list[TableRow]
    briefings: list[BriefingRow]
    ballots: list[tuple[Ballot, int, int]]  # a ballot open now, its roll, how many voted
    # Messages received whose turn failed: still being tried, and given up on.
    unhandled: tuple[int, int] = (0, 0)


async def delivery(session: AsyncSession) -> list[Delivery]:
    counts, opted_out = await by_channel(session), await opted_out_by_channel(session)
    rows = []
    for channel in (*CHANNELS, *sorted(set(counts) - set(CHANNELS))):
        row = Delivery(channel, opted_out=opted_out[channel])
        for state, n in counts.get(channel, Counter()).items():
            column = DELIVERY.get(state)
            if column:
                setattr(row, column, getattr(row, column) + n)
        rows.append(row)
    return rows


async def seating(session: AsyncSession) -> tuple[int | None, list[GroupSeat]]:
    """The round under way and its seats (none before an allocation)."""
    run = await current_run(session)
    if run is None:
        return None, []
    round_no = await round_under_way(session, run.run_id)
    return round_no, await seats_of(session, run.run_id, round_no)


async def tables(relay: Relay, round_no: int | None, seats: list[GroupSeat]) -> list[TableRow]:
    """Per table its members and who has spoken in its open prompt (the answered and
    waiting letters facilitators see; read in a session of its own)."""
    if round_no is None:
        return []
    prompts = {p.table: p for p in await deliberation.open_prompts(relay, round_no)}
    rows: dict[int, TableRow] = {}
    for seat in seats:
        prompt = prompts.get(seat.table_no)
        row = rows.setdefault(seat.table_no, TableRow(seat.table_no, prompt))
        spoken = None if prompt is None else seat.letter in prompt.answered
        row.seats.append(Seat(f"{seat.letter} {seat.participant_id}", seat.letter, spoken))
    return [rows[n] for n in sorted(rows)]


async def briefings(
    session: AsyncSession, calendar: Calendar | None, language: str
) -> list[BriefingRow]:
    from scheduler.config import pick

    counts = await read_counts(session)
    titles = {b.id: pick(b.title, language) for b in (calendar.briefings if calendar else [])}
    order = [*titles, *sorted(set(counts) - set(titles))]
    return [BriefingRow(b, titles.get(b, b), *counts.get(b, (0, 0))) for b in order]


async def gather(relay: Relay, language: str) -> Figures:
    """Everything the page shows. SQLite allows one transaction at a time: the open
    prompts are read once this session has ended."""
    async with relay.sessions() as session:
        recent = await broadcast.recent(session, limit=10)
        round_no, seats = await seating(session)
        figures = Figures(
            funnel=await recruitment.funnel(session),
            delivery=await delivery(session),
            broadcasts=[(b, await broadcast.status(session, b.id)) for b in recent],
            round=round_no,
            tables=[],
            briefings=await briefings(session, relay.calendar, language),
            ballots=await with_turnout(session, OPEN),
            unhandled=await unhandled.counts(session),
        )
    figures.tables = await tables(relay, round_no, seats)
    return figures
