"""Who a message is from: the contact at an address and its participant, found or created,
locked for the turn that changes them, and the contact a message to them goes to."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from bot.addresses import can_receive_sms
from flows.model import State
from store import audit, contacts
from store.db import dialect_insert
from store.models import Contact, Participant, utcnow


async def contact_at(session: AsyncSession, channel: str, address: str) -> Contact | None:
    return (
        await session.execute(
            select(Contact).where(Contact.channel == channel, Contact.address == address)
        )
    ).scalar_one_or_none()


def locking_lookup(columns: dict[str, Any] | None = None) -> Any:
    """The contact at an address with its participant, both locked as an update of the
    contact's next seq would lock it (FOR NO KEY UPDATE: rows that refer to the contact, as
    the inbound message does, hold a key-share lock on it), read as they are once the lock
    is held; with `columns` (`Hooks.person_columns`) read beside them."""
    return (
        select(Contact, Participant, *(c.label(name) for name, c in (columns or {}).items()))
        .join(Participant, Participant.id == Contact.participant_id)
        .where(Contact.channel == bindparam("channel"), Contact.address == bindparam("address"))
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )


_LOCKED_AT = locking_lookup()
# Where an inbound turn puts its lookup (with the hooks' columns) for `locked_contact_at`,
# and where that leaves what the columns read: {"participant_id", "contact_id", name: value}.
PERSON_LOOKUP = "person_lookup"
READ_WITH_PERSON = "read_with_person"


async def locked_contact_at(session: AsyncSession, channel: str, address: str) -> Contact | None:
    """The contact at this address, and its participant (in the session), both locked."""
    lookup = session.info.get(PERSON_LOOKUP, _LOCKED_AT)
    row = (await session.execute(lookup, {"channel": channel, "address": address})).first()
    if row is None:
        return None
    contact, participant, *_ = row
    _hold(contact, participant)
    if lookup is not _LOCKED_AT:
        read = row._asdict()
        read.update(participant_id=participant.id, contact_id=contact.id)
        session.info[READ_WITH_PERSON] = read
    return contact


def read_with_person(session: AsyncSession, participant_id: str, contact_id: int | None) -> dict:
    """What the hooks' person columns read for this participant and contact in this turn;
    empty when they were not read with them (a new person, a flow started elsewhere)."""
    read = session.info.get(READ_WITH_PERSON) or {}
    if read.get("participant_id") != participant_id or read.get("contact_id") != contact_id:
        return {}
    return read


def _hold(contact: Contact, participant: Participant) -> None:
    """The session keeps unchanged objects only while something refers to them: the
    contact does, so `session.get(Participant, ...)` finds the participant without a query."""
    set_committed_value(contact, "participant", participant)


async def find_or_create_contact(
    session: AsyncSession, channel: str, address: str, language: str
) -> Contact:
    """The contact at this address, or a new one with a new participant: insert-or-get, so
    two first messages from one address at once (two instances, say) both go through.
    Either way the contact and its participant are locked and held by the session (a new
    one is this transaction's own until it commits)."""
    contact = await locked_contact_at(session, channel, address)
    if contact is not None:
        return contact
    participant = Participant(language=language, state=State(language=language).to_json())
    session.add(participant)
    await session.flush()
    # A short code or sender name texted us: it can never be answered by SMS.
    silent = channel == "sms" and not can_receive_sms(address)
    contact = (
        await session.scalars(
            dialect_insert(session, Contact)
            .values(
                participant_id=participant.id,
                channel=channel,
                address=address,
                sms_consent=channel == "sms" and not silent,
                unreachable_at=utcnow() if silent else None,
            )
            .on_conflict_do_nothing(index_elements=["channel", "address"])
            .returning(Contact)
        )
    ).first()
    if contact is None:
        # Another transaction created it and has committed (ours waited for it): use it,
        # or, if it has gone again meanwhile, start over.
        await session.delete(participant)
        return await find_or_create_contact(session, channel, address, language)
    _hold(contact, participant)
    await audit.append(
        session, "participant.created", {"channel": channel}, participant_id=participant.id
    )
    return contact


async def lock_participant(
    session: AsyncSession, participant_id: str, contact: Contact | None = None
) -> Participant:
    """The participant, locked; with `contact`, that contact is read again in the same
    statement, locked as an update of its next seq would (FOR NO KEY UPDATE: rows that
    refer to the contact, as the inbound message now does, hold a key-share lock on it)."""
    if contact is None:
        return (
            await session.execute(
                select(Participant).where(Participant.id == participant_id).with_for_update()
            )
        ).scalar_one()
    return (
        await session.execute(
            select(Participant, Contact)
            .join(Contact, Contact.participant_id == Participant.id)
            .where(Participant.id == participant_id, Contact.id == contact.id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
    ).one()[0]


async def contact_on(
    session: AsyncSession, participant: Participant, channel: str
) -> Contact | None:
    return await contacts.contact_on(session, participant.id, channel)


async def preferred_contact(session: AsyncSession, participant: Participant) -> Contact | None:
    """Telegram when it still works, else SMS the person agreed to; None if unreachable."""
    return await contacts.preferred_contact(session, participant.id)
