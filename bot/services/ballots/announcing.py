"""The results told to everyone on a ballot's roll, voted or not, in their language, in the
close's own transaction: the ballot is closed with its messages queued, or neither.

The close takes the voters' rows (and their contacts, whose sequence numbers the outbox
moves on) before the ballot's: a turn holds its person and then waits on the ballot, so
taking them in the same order means one waits for the other and neither for ever.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.outgoing import enqueue
from bot.settings import Settings
from flows.ballot_results import KIND, results_message
from flows.i18n import translator
from flows.model import Outbound
from store import audit
from store.ballots import BallotRoll
from store.contacts import choose
from store.models import Contact, Participant

TOLD = "ballot.results_sent"


@dataclass
class Roll:
    """The people on a ballot's roll, locked, with their contacts."""

    people: dict[str, Participant] = field(default_factory=dict)
    contacts: dict[str, list[Contact]] = field(default_factory=dict)


async def lock_roll(session: AsyncSession, ballot_id: str) -> Roll:
    """Everyone on the roll who has a contact, and their contacts, locked in participant
    order (someone with no contact can be told nothing)."""
    on_roll = select(BallotRoll.participant_id).where(BallotRoll.ballot_id == ballot_id)
    rows = await session.execute(
        select(Participant, Contact)
        .join(Contact, Contact.participant_id == Participant.id)
        .where(Participant.id.in_(on_roll))
        .order_by(Participant.id, Contact.id)
        .with_for_update(key_share=True)
    )
    roll = Roll()
    for participant, contact in rows:
        roll.people[participant.id] = participant
        roll.contacts.setdefault(participant.id, []).append(contact)
    return roll


async def tell_results(
    session: AsyncSession,
    settings: Settings,
    roll: Roll,
    ballot_id: str,
    definition: dict[str, Any],
    results: dict[str, Any],
    now: datetime,
) -> int:
    """Queue the results to each person still on the roll who can be reached; people told."""
    rows = await session.execute(
        select(BallotRoll.participant_id, BallotRoll.voted)
        .where(BallotRoll.ballot_id == ballot_id, BallotRoll.withdrawn.is_(False))
        .order_by(BallotRoll.participant_id)
    )
    told = 0
    for participant_id, voted in rows:
        participant = roll.people.get(participant_id)
        if participant is None or participant.opted_out or participant.erased_at is not None:
            continue
        contact = choose(roll.contacts.get(participant_id, []))
        if contact is None:
            continue
        text = results_message(definition, results, translator(participant.language), voted=voted)
        await enqueue(
            session,
            settings,
            participant,
            contact,
            [Outbound(text=text, kind=KIND)],
            prompt_id=None,
            now=now,
        )
        told += 1
    await audit.append(session, TOLD, {"ballot": ballot_id, "people": told}, at=now)
    return told
