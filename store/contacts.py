"""Which contact reaches a person: Telegram when it still works, else SMS they agreed to.

`choose` is the rule, over anything with the contact's columns (ORM objects or rows):
`id`, `channel`, `sms_consent`, `unreachable_at`, `opted_out_at`. The rest loads contacts
for it, one person or many at once (broadcasts and invitations choose for thousands).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Contact

TELEGRAM, SMS = "telegram", "sms"
PREFERENCE = (TELEGRAM, SMS)  # the first usable channel in this order is the one used

# What bulk loads read of each contact: the rule's columns and what a writer needs.
COLUMNS = (
    Contact.id,
    Contact.participant_id,
    Contact.channel,
    Contact.address,
    Contact.next_seq,
    Contact.unreachable_at,
    Contact.opted_out_at,
    Contact.sms_consent,
)


class ContactLike(Protocol):
    id: Any
    channel: str
    sms_consent: bool
    unreachable_at: Any
    opted_out_at: Any


C = TypeVar("C", bound=ContactLike)


def works(contact: ContactLike) -> bool:
    """Neither the channel (a blocked bot) nor the carrier (an opt-out) shut it."""
    return contact.unreachable_at is None and contact.opted_out_at is None


def usable(contact: ContactLike) -> bool:
    """It works, and an SMS number is one the person agreed to be texted on."""
    return works(contact) and (contact.channel != SMS or bool(contact.sms_consent))


def choose(contacts: Iterable[C], channels: Sequence[str] = PREFERENCE) -> C | None:
    """Telegram when it still works, else SMS the person agreed to; None if unreachable.
    Contacts come in the order they were made: the oldest usable one of a channel wins."""
    contacts = list(contacts)
    for channel in channels:
        for contact in contacts:
            if contact.channel == channel and usable(contact):
                return contact
    return None


async def preferred_contact(
    session: AsyncSession, participant_id: str, channels: Sequence[str] = PREFERENCE
) -> Contact | None:
    """The contact `choose` picks for one person, as an ORM object."""
    contacts = (
        (
            await session.execute(
                select(Contact).where(Contact.participant_id == participant_id).order_by(Contact.id)
            )
        )
        .scalars()
        .all()
    )
    return choose(contacts, channels)


async def contact_on(session: AsyncSession, participant_id: str, channel: str) -> Contact | None:
    """A person's contact on `channel`, whatever its state (a reply goes where it asks)."""
    return (
        (
            await session.execute(
                select(Contact).where(
                    Contact.participant_id == participant_id, Contact.channel == channel
                )
            )
        )
        .scalars()
        .first()
    )


async def contacts_of(
    session: AsyncSession, participant_ids: Iterable[str] | Select, *, lock: bool = False
) -> dict[str, list[Any]]:
    """Plain rows (COLUMNS) of many people's contacts, oldest first, by participant. With
    `lock` they are locked (PostgreSQL), so the sequence numbers read stay ours to give."""
    if not isinstance(participant_ids, Select):
        participant_ids = list(participant_ids)
    query = select(*COLUMNS).where(Contact.participant_id.in_(participant_ids)).order_by(Contact.id)
    if lock:
        query = query.with_for_update(of=Contact)
    found: dict[str, list[Any]] = {}
    for row in await session.execute(query):
        found.setdefault(row.participant_id, []).append(row)
    return found


async def preferred_contacts(
    session: AsyncSession, participant_ids: Iterable[str] | Select, *, lock: bool = False
) -> dict[str, Any]:
    """The chosen contact (a plain row) of each of many people; the unreachable are left out."""
    chosen = {}
    for pid, contacts in (await contacts_of(session, participant_ids, lock=lock)).items():
        contact = choose(contacts)
        if contact is not None:
            chosen[pid] = contact
    return chosen
