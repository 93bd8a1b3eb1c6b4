"""Who facilitates which table: organisers every table, and the facilitators organisers
name for one table (in one round or every round), known by the address they write from.

`report_recipients` is how a member's REPORT, and anything else meant for a table's
facilitators, finds them: that table's facilitators, else the organisers.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.addresses import BadAddress, inbound_sender, normalise
from bot.services.lookup import PersonNotFound, find_participant
from bot.services.organisers import organiser_contacts, organiser_of
from bot.services.people import find_or_create_contact, preferred_contact
from store import audit
from store.facilitation import EVERY_ROUND, FacilitatorRole
from store.groups import current_run, seats_of
from store.models import Contact, Participant


class FacilitationError(ValueError):
    """A facilitation command that cannot be done; the message says why."""


@dataclass(frozen=True)
class Role:
    id: int
    channel: str
    address: str
    table: int
    round: int  # 0: every round

    @classmethod
    def of(cls, row: FacilitatorRole) -> Role:
        return cls(row.id, row.channel, row.address, row.table_no, row.round)

    @property
    def rounds(self) -> str:
        return "every round" if self.round == EVERY_ROUND else f"round {self.round}"


@dataclass(frozen=True)
class Rights:
    """The tables one chat may act on: all of them (an organiser) or some, per round."""

    organiser_id: int | None = None
    tables: dict[int, frozenset[int]] | None = None  # round (0: every) -> tables

    @property
    def anyone(self) -> bool:
        return self.organiser_id is not None or bool(self.tables)

    def tables_in(self, round_no: int) -> frozenset[int] | None:
        """The tables of `round_no` this chat may act on; None means every table."""
        if self.organiser_id is not None:
            return None
        named = self.tables or {}
        return named.get(EVERY_ROUND, frozenset()) | named.get(round_no, frozenset())


async def address_of(session: AsyncSession, ref: str, region: str = "GB") -> tuple[str, str]:
    """(channel, address) from 'tg:123456789', '+447700900123', '07700 900123', or a
    participant id or known number (their preferred contact). A bare number that is no
    known Telegram chat is refused: it could be either."""
    ref = (ref or "").strip()
    kind, sep, rest = ref.partition(":")
    try:
        if sep and kind.casefold() in ("tg", "telegram"):
            return "telegram", normalise("telegram", rest)
        if sep and kind.casefold() == "sms":
            return "sms", inbound_sender(rest, region)
        if ref.startswith(("+", "0")):
            return "sms", inbound_sender(ref, region)
    except BadAddress as error:
        raise FacilitationError(str(error)) from None
    try:
        participant = await find_participant(session, ref, region)
    except PersonNotFound:
        raise FacilitationError(
            "Nobody known answers to that: give a phone number (+447700900123), a Telegram "
            "id as tg:123456789, or a participant id."
        ) from None
    contact = await preferred_contact(session, participant)
    if contact is None:
        raise FacilitationError(f"{participant.id} cannot be reached on any channel.")
    return contact.channel, contact.address


async def _check_table(session: AsyncSession, table: int, round_no: int) -> None:
    run = await current_run(session)
    if run is None:
        raise FacilitationError("No tables are allocated yet: run `concorder groups assign`.")
    rounds = run.payload["rounds"]
    if round_no != EVERY_ROUND and not 1 <= round_no <= rounds:
        raise FacilitationError(f"Round {round_no}? This allocation has rounds 1-{rounds}.")
    seats = await seats_of(session, run.run_id, round_no or None)
    tables = {s.table_no for s in seats}
    if table not in tables:
        where = f"round {round_no}" if round_no else "any round"
        raise FacilitationError(f"Table {table}? {where.capitalize()} has tables 1-{max(tables)}.")


async def name_facilitator(
    session: AsyncSession, ref: str, table: int, round_no: int = EVERY_ROUND, region: str = "GB"
) -> Role:
    """Name the person at `ref` facilitator of `table` (in `round_no`, 0: every round)."""
    await _check_table(session, table, round_no)
    channel, address = await address_of(session, ref, region)
    row = FacilitatorRole(channel=channel, address=address, table_no=table, round=round_no)
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        raise FacilitationError(
            f"That {channel} address already facilitates table {table} "
            f"{'in every round' if not round_no else f'in round {round_no}'}."
        ) from None
    await audit.append(
        session,
        "facilitator.named",
        {"role": row.id, "table": table, "round": round_no, "channel": channel},
    )
    return Role.of(row)


async def remove_facilitator(
    session: AsyncSession, ref: str, table: int, round_no: int = EVERY_ROUND, region: str = "GB"
) -> Role:
    channel, address = await address_of(session, ref, region)
    row = (
        await session.execute(
            select(FacilitatorRole).where(
                FacilitatorRole.channel == channel,
                FacilitatorRole.address == address,
                FacilitatorRole.table_no == table,
                FacilitatorRole.round == round_no,
            )
        )
    ).scalar_one_or_none()
    if row is None:
        raise FacilitationError(
            f"That address does not facilitate table {table} "
            f"{'in every round' if not round_no else f'in round {round_no}'}: see "
            "`concorder groups facilitators`."
        )
    role = Role.of(row)
    await session.execute(delete(FacilitatorRole).where(FacilitatorRole.id == row.id))
    await audit.append(
        session, "facilitator.removed", {"role": role.id, "table": table, "round": round_no}
    )
    return role


async def list_roles(session: AsyncSession) -> list[Role]:
    rows = await session.execute(
        select(FacilitatorRole).order_by(
            FacilitatorRole.table_no, FacilitatorRole.round, FacilitatorRole.id
        )
    )
    return [Role.of(r) for r in rows.scalars()]


async def rights_of(session: AsyncSession, contact: Contact | None) -> Rights:
    """What the chat or number `contact` may facilitate: rights follow the address."""
    if contact is None:
        return Rights()
    organiser = await organiser_of(session, contact)
    if organiser is not None:
        return Rights(organiser_id=organiser.id)
    rows = await session.execute(
        select(FacilitatorRole.round, FacilitatorRole.table_no).where(
            FacilitatorRole.channel == contact.channel,
            FacilitatorRole.address == contact.address,
        )
    )
    tables: dict[int, set[int]] = {}
    for round_no, table in rows:
        tables.setdefault(round_no, set()).add(table)
    return Rights(tables={r: frozenset(t) for r, t in tables.items()})


async def facilitator_contacts(
    session: AsyncSession, default_language: str, round_no: int, table: int
) -> list[tuple[Participant, Contact]]:
    """How to write to the facilitators of table `table` in round `round_no`, each on the
    chat or number they were named by. One who never wrote to the service gets a contact
    now, so the message goes through the outbox like any other; one who opted out is left
    out."""
    rows = await session.execute(
        select(FacilitatorRole.channel, FacilitatorRole.address)
        .where(
            FacilitatorRole.table_no == table,
            or_(FacilitatorRole.round == EVERY_ROUND, FacilitatorRole.round == round_no),
        )
        .order_by(FacilitatorRole.id)
    )
    found: list[tuple[Participant, Contact]] = []
    for channel, address in dict.fromkeys(tuple(r) for r in rows):
        contact = await find_or_create_contact(session, channel, address, default_language)
        participant = await session.get(Participant, contact.participant_id)
        if participant is None or participant.opted_out or contact.opted_out_at:
            continue
        if channel == "sms":
            contact.sms_consent = True  # the organisers named this number to be told
        found.append((participant, contact))
    return found


async def report_recipients(
    session: AsyncSession, default_language: str, round_no: int, table: int
) -> list[tuple[Participant, Contact]]:
    """Whom to tell about table `table` in round `round_no` (a member's REPORT): its
    facilitators, else every organiser."""
    found = await facilitator_contacts(session, default_language, round_no, table)
    if found:
        return found
    return [(p, c) for _, p, c in await organiser_contacts(session, default_language)]
