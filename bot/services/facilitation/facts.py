"""What a facilitator's command may know: the round under way and, for the tables the chat
may act on, their seats, who has spoken and the prompt under way.

Read only for a message shaped like a facilitator's command (the inbound hook marks it),
from a chat that may facilitate: anyone else's turn costs nothing here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.facilitation.roles import Rights, rights_of
from bot.services.turns import TURN_CONTACT
from flows.facilitation_facts import FacilitationFacts, LineFacts, TableFacts
from flows.facilitation_words import HIDE, MOVE, SHOW, Command, looks_like_command, parse
from store.deliberation import CLOSED, MESSAGE, PASS, PAUSED, Contribution, TablePrompt
from store.facilitation import FacilitatorRole
from store.groups import GroupSeat, current_run, seats_of
from store.models import Participant
from store.organisers import Organiser

# The command a turn's message was read as, from the inbound hook to the facts provider.
COMMAND = "facilitation_command"


async def mark_command(session: AsyncSession, *, text: str, **_: Any) -> None:
    """Before the turn: is this message shaped like a facilitator's command (or HELP)?"""
    session.info[COMMAND] = (parse(text) or True) if looks_like_command(text) else None


async def commands_in(session: AsyncSession, messages, known) -> set[int]:
    """For a batch of inbound messages: those shaped like a command (or HELP) from an address
    that may facilitate, an organiser's or a named facilitator's (one query, and none when
    no message has the shape): anyone else's HELP gets no facilitation facts either way."""
    shaped = {
        n: address for n, (_, address, text) in enumerate(messages) if looks_like_command(text)
    }
    if not shaped:
        return set()
    addresses = sorted(set(shaped.values()))  # whatever the channel: a few too many is safe
    may = union(
        select(FacilitatorRole.address).where(FacilitatorRole.address.in_(addresses)),
        select(Organiser.telegram_id).where(Organiser.telegram_id.in_(addresses)),
        select(Organiser.phone).where(Organiser.phone.in_(addresses)),
    )
    found = set((await session.execute(may)).scalars())
    return {n for n, address in shaped.items() if address in found}


async def round_under_way(session: AsyncSession, run_id: str) -> int:
    """The round of the prompts open or paused, else of the latest prompt, else round 1."""
    going = select(func.max(TablePrompt.round)).where(
        TablePrompt.run_id == run_id, TablePrompt.status != CLOSED
    )
    found = (await session.execute(going)).scalar()
    if found is None:
        latest = select(TablePrompt.round).where(TablePrompt.run_id == run_id)
        found = (await session.execute(latest.order_by(TablePrompt.id.desc()).limit(1))).scalar()
    return found or 1


def _by(rights: Rights) -> str:
    if rights.organiser_id is not None:
        return f"organiser:{rights.organiser_id}"
    return "facilitator"


async def facilitation_facts(session: AsyncSession, participant: Participant) -> dict[str, Any]:
    command = session.info.pop(COMMAND, None)
    if command is None:
        return {}
    rights = await rights_of(session, session.info.get(TURN_CONTACT))
    if not rights.anyone:
        return {}
    run = await current_run(session)
    if run is None:
        return {"facilitation": FacilitationFacts(round=None, by=_by(rights))}
    round_no = await round_under_way(session, run.run_id)
    seats = await seats_of(session, run.run_id, round_no)
    numbers = sorted({s.table_no for s in seats})
    mine = rights.tables_in(round_no)
    acting = set(numbers) if mine is None else set(numbers) & mine
    tables = await table_facts(session, run.run_id, round_no, seats, acting)
    extra: dict[str, Any] = {}
    if isinstance(command, Command):
        extra = await _command_facts(session, run.run_id, round_no, command, acting)
    facts = FacilitationFacts(
        round=round_no,
        by=_by(rights) if mine is None else f"facilitator:{participant.id}",
        table_numbers=numbers,
        mine=None if mine is None else sorted(mine),
        tables=tables,
        **extra,
    )
    return {"facilitation": facts}


async def table_facts(
    session: AsyncSession, run_id: str, round_no: int, seats: list[GroupSeat], acting: set[int]
) -> dict[int, TableFacts]:
    """Seats, messages and passes this round, and the prompt under way, per table."""
    letters: dict[int, list[str]] = {t: [] for t in sorted(acting)}
    for seat in seats:
        if seat.table_no in letters:
            letters[seat.table_no].append(seat.letter)
    spoken: dict[int, dict[str, int]] = {t: {} for t in letters}
    passed: dict[int, set[str]] = {t: set() for t in letters}
    counts = await session.execute(
        select(Contribution.table_no, Contribution.letter, Contribution.kind, func.count())
        .where(
            Contribution.run_id == run_id,
            Contribution.round == round_no,
            Contribution.hidden_at.is_(None),
            Contribution.kind.in_((MESSAGE, PASS)),
        )
        .group_by(Contribution.table_no, Contribution.letter, Contribution.kind)
    )
    for table, letter, kind, n in counts:
        if table not in letters:
            continue
        if kind == PASS:
            passed[table].add(letter)
        else:
            spoken[table][letter] = n
    prompts: dict[int, tuple[str, bool]] = {}
    going = await session.execute(
        select(TablePrompt.table_no, TablePrompt.prompt_key, TablePrompt.status)
        .where(
            TablePrompt.run_id == run_id,
            TablePrompt.round == round_no,
            TablePrompt.status != CLOSED,
        )
        .order_by(TablePrompt.id)
    )
    for table, key, status in going:
        prompts[table] = (key, status == PAUSED)
    return {
        t: TableFacts(
            number=t,
            letters=letters[t],
            spoken=spoken[t],
            passed=sorted(passed[t]),
            prompt=prompts[t][0] if t in prompts else None,
            paused=prompts.get(t, ("", False))[1],
        )
        for t in letters
    }


async def _command_facts(
    session: AsyncSession, run_id: str, round_no: int, command: Command, acting: set[int]
) -> dict[str, Any]:
    """What HIDE (the message's table), MOVE by id (the member's seat) and SHOW (the
    tables' last lines) need besides."""
    if command.action == SHOW:
        return {"lines": await last_lines(session, run_id, round_no, acting)}
    if command.action == HIDE and command.ref.isdigit():
        row = (
            await session.execute(
                select(Contribution.table_no, Contribution.hidden_at).where(
                    Contribution.id == int(command.ref),
                    Contribution.run_id == run_id,
                    Contribution.round == round_no,
                )
            )
        ).first()
        if row is None:
            return {}
        return {"hide_table": row[0], "hidden_before": row[1] is not None}
    if command.action == MOVE and command.member[:1] == "p" and len(command.member) > 2:
        seat = (
            await session.execute(
                select(GroupSeat.table_no, GroupSeat.letter).where(
                    GroupSeat.run_id == run_id,
                    GroupSeat.round == round_no,
                    GroupSeat.participant_id == command.member.upper(),
                )
            )
        ).first()
        return {"member_seat": tuple(seat)} if seat else {}
    return {}


SHOWN_LINES = 10


async def last_lines(
    session: AsyncSession, run_id: str, round_no: int, tables: set[int]
) -> dict[int, list[LineFacts]]:
    """The last lines (hidden ones left out) of each table's latest prompt this round."""
    latest = (
        select(TablePrompt.table_no, func.max(TablePrompt.id))
        .where(
            TablePrompt.run_id == run_id,
            TablePrompt.round == round_no,
            TablePrompt.table_no.in_(tables),
        )
        .group_by(TablePrompt.table_no)
    )
    found: dict[int, list[LineFacts]] = {}
    for table, prompt_id in (await session.execute(latest)).all():
        rows = await session.execute(
            select(Contribution)
            .where(Contribution.table_prompt_id == prompt_id, Contribution.hidden_at.is_(None))
            .order_by(Contribution.id.desc())
            .limit(SHOWN_LINES)
        )
        found[table] = [
            LineFacts(c.id, c.letter, c.kind, c.text or "", c.held)
            for c in reversed(list(rows.scalars()))
        ]
    return found


async def overview(
    session: AsyncSession, round_no: int | None = None, table: int | None = None
) -> tuple[int, dict[int, TableFacts]]:
    """The round (given, else under way) and its tables (or one) as facilitators see them;
    FacilitationError for no allocation, a round or a table that does not exist."""
    from bot.services.facilitation.roles import FacilitationError

    run = await current_run(session)
    if run is None:
        raise FacilitationError("No tables are allocated yet: run `concorder groups assign`.")
    rounds = run.payload["rounds"]
    if round_no is None:
        round_no = await round_under_way(session, run.run_id)
    elif not 1 <= round_no <= rounds:
        raise FacilitationError(f"Round {round_no}? This allocation has rounds 1-{rounds}.")
    seats = await seats_of(session, run.run_id, round_no)
    numbers = sorted({s.table_no for s in seats})
    if table is not None and table not in numbers:
        raise FacilitationError(
            f"Table {table}? Round {round_no} has tables 1-{max(numbers, default=0)}."
        )
    acting = set(numbers) if table is None else {table}
    return round_no, await table_facts(session, run.run_id, round_no, seats, acting)
