"""Who sits at a table now, and how each can be reached: read at every relay, so a seat
moved with `groups move` is followed from the next message on."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.deliberation.types import DeliberationError
from flows.deliberation import MODE_KEY, relay_mode
from store.contacts import choose
from store.deliberation import CLOSED, TablePrompt
from store.groups import GroupRun, GroupSeat, current_run
from store.models import Contact, Participant
from store.recruitment import CONFIRMED, PoolEntry, Selection


@dataclass
class Seated:
    """One seat at a table: the member, the contact that reaches them (None: cannot be
    reached, or they left the panel or opted out), and how they get the table's messages."""

    participant: Participant
    letter: str
    contact: Contact | None

    @property
    def active(self) -> bool:
        return self.contact is not None

    @property
    def mode(self) -> str:
        chosen = (self.participant.state or {}).get("data", {}).get(MODE_KEY)
        return relay_mode(chosen, self.contact.channel if self.contact else "sms")


@dataclass
class Table:
    seats: list[Seated]
    # Every address the service knows of the table's members: never relayed.
    known: list[str] = field(default_factory=list)

    @property
    def active(self) -> list[Seated]:
        return [s for s in self.seats if s.active]

    def seat_of(self, participant_id: str | None) -> Seated | None:
        return next((s for s in self.seats if s.participant.id == participant_id), None)


async def seated(
    session: AsyncSession, run_id: str, round_no: int, table_no: int, *, lock: bool = False
) -> Table:
    """The table's seats in letter order. With `lock`, the members' contacts are locked in
    id order (as writing to their outbox would), so fan-outs never deadlock."""
    # One read for the seats, whether each is still on the panel, and their pool handle.
    rows = (
        await session.execute(
            select(GroupSeat.letter, Participant, Selection.status, PoolEntry.telegram_handle)
            .join(Participant, Participant.id == GroupSeat.participant_id)
            .outerjoin(Selection, Selection.participant_id == GroupSeat.participant_id)
            .outerjoin(PoolEntry, PoolEntry.participant_id == GroupSeat.participant_id)
            .where(
                GroupSeat.run_id == run_id,
                GroupSeat.round == round_no,
                GroupSeat.table_no == table_no,
            )
            .order_by(GroupSeat.letter)
        )
    ).all()
    ids = [p.id for _, p, _, _ in rows]
    contacts_query = select(Contact).where(Contact.participant_id.in_(ids)).order_by(Contact.id)
    if lock:
        contacts_query = contacts_query.with_for_update(key_share=True)
    contacts: dict[str, list[Contact]] = {}
    for contact in (await session.execute(contacts_query)).scalars():
        contacts.setdefault(contact.participant_id, []).append(contact)
    seats = []
    for letter, participant, status, _handle in rows:
        gone = participant.opted_out or status != CONFIRMED
        contact = None if gone else choose(contacts.get(participant.id, []))
        seats.append(Seated(participant, letter, contact))
    known = [c.address for cs in contacts.values() for c in cs]
    known += [handle for _, _, _, handle in rows if handle]
    return Table(seats, known)


async def the_run(session: AsyncSession) -> GroupRun:
    run = await current_run(session)
    if run is None:
        raise DeliberationError("No tables are allocated yet: run `concorder groups assign` first.")
    return run


async def tables_of_round(session: AsyncSession, run: GroupRun, round_no: int) -> list[int]:
    rounds = run.payload["rounds"]
    if not 1 <= round_no <= rounds:
        raise DeliberationError(f"Round {round_no}? This allocation has rounds 1-{rounds}.")
    return list(
        (
            await session.execute(
                select(GroupSeat.table_no)
                .where(GroupSeat.run_id == run.run_id, GroupSeat.round == round_no)
                .distinct()
                .order_by(GroupSeat.table_no)
            )
        ).scalars()
    )


def pick_tables(tables: list[int], table: int | None, round_no: int) -> list[int]:
    if table is None:
        return tables
    if table not in tables:
        last = max(tables) if tables else 0
        raise DeliberationError(f"Table {table}? Round {round_no} has tables 1-{last}.")
    return [table]


async def live_prompts(
    session: AsyncSession, run_id: str, round_no: int, tables: list[int], *, lock: bool = True
) -> dict[int, TablePrompt]:
    """The prompt open or paused at each of `tables` (locked, FOR NO KEY UPDATE: every
    transaction of a table takes its prompt first, then contacts)."""
    query = (
        select(TablePrompt)
        .where(
            TablePrompt.run_id == run_id,
            TablePrompt.round == round_no,
            TablePrompt.table_no.in_(tables),
            TablePrompt.status != CLOSED,
        )
        .order_by(TablePrompt.table_no, TablePrompt.id)
    )
    if lock:
        query = query.with_for_update(key_share=True)
    return {tp.table_no: tp for tp in (await session.execute(query)).scalars()}


async def lock_prompt(session: AsyncSession, table_prompt_id: int) -> TablePrompt | None:
    return (
        await session.execute(
            select(TablePrompt)
            .where(TablePrompt.id == table_prompt_id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
