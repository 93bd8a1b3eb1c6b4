"""Telling each member their seat: their own letter and table and their table-mates'
letters, in their language, through the outbox; nothing else about the others.

An explicit step (`concorder groups notify`), like telling the draw's outcome: each seat
is told once (a move makes it due again), and the messages, the seats marked told and one
audit event per round commit together.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from babel.lists import format_list
from sqlalchemy import select

from bot.relay import Relay
from bot.services.groups.records import GroupsError
from bot.services.outgoing import enqueue
from bot.services.people import lock_participant, preferred_contact
from flows.i18n import Translator, translator
from flows.model import Outbound
from store import audit
from store.groups import GroupSeat, current_run, seats_of
from store.models import utcnow
from store.recruitment import CONFIRMED, Selection

KIND = "groups"


def seat_message(t: Translator, round_no: int, table: int, letter: str, others: list[str]) -> str:
    """'Round 1: you are Member C in table 4 with A, B, D, E and F.'"""
    if not others:
        return t.gettext(
            "Round {round}: you are Member {letter} in table {table}, on your own for now.",
            round=round_no,
            letter=letter,
            table=table,
        )
    return t.gettext(
        "Round {round}: you are Member {letter} in table {table} with {others}.",
        round=round_no,
        letter=letter,
        table=table,
        others=format_list(sorted(others), locale=t.locale),
    )


@dataclass
class Told:
    run_id: str
    told: Counter = field(default_factory=Counter)  # (round, channel, language) -> people
    not_reachable: list[str] = field(default_factory=list)  # "P…/round"
    opted_out: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)  # no longer a confirmed panel member
    samples: dict[str, str] = field(default_factory=dict)  # language -> one message

    @property
    def people(self) -> int:
        return sum(self.told.values())


def _mates(seats: list[GroupSeat]) -> dict[tuple[int, int], list[str]]:
    tables: dict[tuple[int, int], list[str]] = {}
    for seat in seats:
        tables.setdefault((seat.round, seat.table_no), []).append(seat.letter)
    return tables


async def notify_seats(
    relay: Relay,
    round_no: int | None = None,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
) -> Told:
    """Queue each untold seat's message (of `round_no`, or every round); a dry run
    writes nothing and says what would go."""
    now = now or utcnow()
    async with relay.sessions() as session, session.begin():
        run = await current_run(session)
        if run is None:
            raise GroupsError("No tables are allocated yet: run `concorder groups assign` first.")
        if round_no is not None and not 1 <= round_no <= run.payload["rounds"]:
            raise GroupsError(
                f"Round {round_no}? This allocation has rounds 1-{run.payload['rounds']}."
            )
        seats = await seats_of(session, run.run_id, round_no, lock=not dry_run)
        tables = _mates(seats)
        confirmed = set(
            (
                await session.execute(
                    select(Selection.participant_id).where(Selection.status == CONFIRMED)
                )
            ).scalars()
        )
        told = Told(run.run_id)
        per_round: Counter = Counter()
        for seat in seats:
            if seat.notified_at is not None:
                continue
            if seat.participant_id not in confirmed:  # withdrew, or erased, since
                told.left.append(f"{seat.participant_id}/{seat.round}")
                continue
            participant = await lock_participant(session, seat.participant_id)
            if participant.opted_out or (participant.state or {}).get("opted_out"):
                told.opted_out.append(f"{participant.id}/{seat.round}")
                continue
            contact = await preferred_contact(session, participant)
            if contact is None:
                told.not_reachable.append(f"{participant.id}/{seat.round}")
                continue
            others = [x for x in tables[(seat.round, seat.table_no)] if x != seat.letter]
            t = translator(participant.language)
            text = seat_message(t, seat.round, seat.table_no, seat.letter, others)
            told.samples.setdefault(participant.language, text)
            told.told[(seat.round, contact.channel, participant.language)] += 1
            per_round[seat.round] += 1
            if dry_run:
                continue
            await enqueue(
                session,
                relay.settings,
                participant,
                contact,
                [Outbound(text=text, kind=KIND)],
                prompt_id=None,
                now=now,
            )
            seat.notified_at = now
        if dry_run:
            return told
        for r, people in sorted(per_round.items()):
            await audit.append(
                session,
                "groups.notified",
                {"run": run.run_id, "round": r, "people": people},
                at=now,
            )
    if told.people:
        relay.outbox_signal.set()
    return told
