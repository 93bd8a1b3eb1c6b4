"""What the organiser page shows, read in one session from the services' own queries: the
same figures as `concorder status`, `outbox status`, `broadcast status`, `groups stats`
and `ballot status` (turnout only)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from bot.delivery.queue import by_channel, opted_out_by_channel
from bot.services import broadcast, recruitment
from bot.services.ballots.records import with_turnout
from bot.services.facilitation.facts import round_under_way, spoken_in_prompts
from scheduler.config import Calendar
from scheduler.events import read_counts
from store.ballots import OPEN, Ballot
from store.deliberation import CLOSED, PAUSED
from store.groups import current_run, seats_of
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
    messages: int  # in the table's latest prompt


@dataclass
class TableRow:
    number: int
    prompt: str | None
    state: str  # open | paused | closed | none
    seats: list[Seat] = field(default_factory=list)

    @property
    def silent(self) -> list[str]:
        return [s.letter for s in self.seats if not s.messages]


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


async def tables(session: AsyncSession) -> tuple[int | None, list[TableRow]]:
    """The round under way: per table its members and who has written in its prompt."""
    run = await current_run(session)
    if run is None:
        return None, []
    round_no = await round_under_way(session, run.run_id)
    spoken = await spoken_in_prompts(session, run.run_id, round_no)
    rows: dict[int, TableRow] = {}
    for seat in await seats_of(session, run.run_id, round_no):
        row = rows.get(seat.table_no)
        if row is None:
            prompt, _ = spoken.get(seat.table_no, (None, {}))
            state = "none" if prompt is None else prompt.status
            if state not in (CLOSED, PAUSED, "none"):
                state = "open"
            row = rows[seat.table_no] = TableRow(
                seat.table_no, prompt.prompt_key if prompt else None, state
            )
        said = spoken.get(seat.table_no, (None, {}))[1]
        row.seats.append(
            Seat(f"{seat.letter} {seat.participant_id}", seat.letter, said.get(seat.letter, 0))
        )
    return round_no, [rows[n] for n in sorted(rows)]


async def briefings(
    session: AsyncSession, calendar: Calendar | None, language: str
) -> list[BriefingRow]:
    from scheduler.config import pick

    counts = await read_counts(session)
    titles = {b.id: pick(b.title, language) for b in (calendar.briefings if calendar else [])}
    order = [*titles, *sorted(set(counts) - set(titles))]
    return [BriefingRow(b, titles.get(b, b), *counts.get(b, (0, 0))) for b in order]


async def gather(session: AsyncSession, calendar: Calendar | None, language: str) -> Figures:
    recent = await broadcast.recent(session, limit=10)
    round_no, seated = await tables(session)
    return Figures(
        funnel=await recruitment.funnel(session),
        delivery=await delivery(session),
        broadcasts=[(b, await broadcast.status(session, b.id)) for b in recent],
        round=round_no,
        tables=seated,
        briefings=await briefings(session, calendar, language),
        ballots=await with_turnout(session, OPEN),
    )
