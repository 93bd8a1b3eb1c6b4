"""Who the organisers are, how a message is recognised as coming from one, and the audit
of everything they do. Organisers are known by a Telegram user id and/or an E.164 phone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.addresses import BadAddress, normalise
from bot.services.people import find_or_create_contact
from store import audit
from store.models import Contact, Participant, utcnow
from store.organiser_signin import OrganiserSession, OrganiserSignin
from store.organisers import Organiser


class OrganiserError(ValueError):
    """An organiser command that cannot be done; the message says why."""


@dataclass(frozen=True)
class OrganiserInfo:
    """What the rest of the service needs about an organiser (no ORM object)."""

    id: int
    name: str | None
    telegram_id: str | None
    phone: str | None

    @classmethod
    def of(cls, row: Organiser) -> OrganiserInfo:
        return cls(row.id, row.name, row.telegram_id, row.phone)

    @property
    def channels(self) -> list[str]:
        return [c for c, a in (("telegram", self.telegram_id), ("sms", self.phone)) if a]


async def record(session: AsyncSession, action: str, organiser_id: int | None, **data: Any) -> None:
    """Audit one organiser action ('organiser.added', 'broadcast.queued', ...).

    `organiser_id` None means the command line. Data holds ids and counts, never text,
    names or numbers."""
    await audit.append(session, action, {"organiser": organiser_id, **data})


def normalised_addresses(
    telegram_id: str | None, phone: str | None, default_region: str
) -> tuple[str | None, str | None]:
    if not telegram_id and not phone:
        raise OrganiserError("give --telegram-id or --phone (or both)")
    try:
        tg = normalise("telegram", telegram_id) if telegram_id else None
        if tg is not None and int(tg) <= 0:
            raise BadAddress("a Telegram user id is a positive number")
        number = normalise("sms", phone, default_region) if phone else None
    except BadAddress as exc:
        raise OrganiserError(str(exc)) from None
    return tg, number


async def add_organiser(
    session: AsyncSession,
    *,
    telegram_id: str | None = None,
    phone: str | None = None,
    name: str | None = None,
    default_region: str = "GB",
    now: datetime | None = None,
) -> OrganiserInfo:
    tg, number = normalised_addresses(telegram_id, phone, default_region)
    clash = (
        (
            await session.execute(
                select(Organiser).where(
                    or_(
                        Organiser.telegram_id == tg if tg else False,
                        Organiser.phone == number if number else False,
                    )
                )
            )
        )
        .scalars()
        .first()
    )
    if clash is not None:
        raise OrganiserError(
            f"organiser {clash.id} already has this "
            f"{'Telegram id' if tg and clash.telegram_id == tg else 'phone'}"
        )
    name = (name or "").strip()[:120] or None
    row = Organiser(name=name, telegram_id=tg, phone=number, created_at=now or utcnow())
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        raise OrganiserError("another organiser was just added with this address") from None
    info = OrganiserInfo.of(row)
    await record(session, "organiser.added", None, added=row.id, channels=info.channels)
    return info


async def find_organiser(
    session: AsyncSession, ref: str, default_region: str = "GB"
) -> Organiser | None:
    """An organiser by id ('3'), Telegram id or phone number."""
    ref = (ref or "").strip()
    if ref.isdigit():
        found = await session.get(Organiser, int(ref))
        if found is not None:
            return found
    clauses = []
    if ref.lstrip("-").isdigit():
        clauses.append(Organiser.telegram_id == str(int(ref)))
    try:
        clauses.append(Organiser.phone == normalise("sms", ref, default_region))
    except BadAddress:
        pass
    if not clauses:
        return None
    return (await session.execute(select(Organiser).where(or_(*clauses)))).scalars().first()


async def remove_organiser(
    session: AsyncSession, ref: str, default_region: str = "GB"
) -> OrganiserInfo:
    row = await find_organiser(session, ref, default_region)
    if row is None:
        raise OrganiserError("no organiser with that id, Telegram id or phone number")
    info = OrganiserInfo.of(row)
    # Their organiser page sessions end and their sign-in tokens and links stop working
    # (deleted here too: SQLite does not cascade unless asked).
    for table in (OrganiserSession, OrganiserSignin):
        await session.execute(delete(table).where(table.organiser_id == info.id))
    await session.delete(row)
    await session.flush()
    await record(session, "organiser.removed", None, removed=info.id)
    return info


async def list_organisers(session: AsyncSession) -> list[OrganiserInfo]:
    rows = (await session.execute(select(Organiser).order_by(Organiser.id))).scalars().all()
    return [OrganiserInfo.of(r) for r in rows]


async def organiser_of(session: AsyncSession, contact: Contact | None) -> OrganiserInfo | None:
    """The organiser whose Telegram id or phone is this very contact, if any.

    Rights follow the address a message came in on, never the participant it belongs to:
    an invitation link can move an organiser's chat to someone else, and a pool import can
    give that person a phone of their own."""
    if contact is None:
        return None
    if contact.channel == "telegram":
        found = Organiser.telegram_id == contact.address
    elif contact.channel == "sms":
        found = Organiser.phone == contact.address
    else:
        return None
    row = (await session.execute(select(Organiser).where(found))).scalars().first()
    return OrganiserInfo.of(row) if row else None


async def organiser_contacts(
    session: AsyncSession, default_language: str
) -> list[tuple[OrganiserInfo, Participant, Contact]]:
    """How to write to each organiser: Telegram when they have it, else SMS.

    An organiser who never wrote to the bot gets a contact (and a pseudonymous participant)
    now, so messages to them go through the outbox like any other."""
    found = []
    for info in await list_organisers(session):
        channel, address = (
            ("telegram", info.telegram_id) if info.telegram_id else ("sms", info.phone)
        )
        contact = await find_or_create_contact(session, channel, address, default_language)
        participant = await session.get(Participant, contact.participant_id)
        if participant is None or participant.opted_out or contact.opted_out_at:
            continue
        if channel == "sms":
            contact.sms_consent = True  # an organiser registered this number to be told
        found.append((info, participant, contact))
    return found
