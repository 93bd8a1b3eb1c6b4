"""Erasing one person: every place of the inventory (store/personal_data.py), in one
transaction with its audit event.

What stays is the pseudonym and what names only it (consents, selections, the draw's
record, the audit chain), so the draw and the chain still check and counts stay right.
Messages still queued for the person are cancelled first, so nothing goes out to them.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store import audit
from store.ballots import leave_open_rolls
from store.calendar import CANCELLED as JOB_CANCELLED
from store.calendar import PENDING as JOB_PENDING
from store.calendar import CalendarJob
from store.models import PENDING_STATUSES, Contact, OutboxMessage, OutboxStatus, Participant
from store.personal_data import (
    BLANK,
    BY_CONTACT,
    DELETE,
    INVENTORY,
    OptOutMark,
    Place,
    opt_out_digest,
)

ERASED = "participant.erased"
ERASED_ERROR = "erased"


async def erase_person(
    session: AsyncSession, participant_id: str, *, reason: str, key: bytes, now: datetime
) -> Counter[str] | None:
    """Erase one person inside the caller's transaction; the rows touched per table, or
    None when there is no such person or they were erased before."""
    participant = (
        await session.execute(
            select(Participant).where(Participant.id == participant_id).with_for_update()
        )
    ).scalar_one_or_none()
    if participant is None or participant.erased_at is not None:
        return None
    contacts = (
        await session.execute(
            select(Contact).where(Contact.participant_id == participant_id).with_for_update()
        )
    ).scalars()
    contacts = list(contacts)
    await _remember_opt_outs(session, participant, contacts, key, now)
    touched: Counter[str] = Counter()
    contact_ids = [c.id for c in contacts]
    for place in INVENTORY:
        touched[place.name] += await _erase_place(session, place, participant_id, contact_ids)
    touched["outbox cancelled"] = await _cancel_pending(session, participant_id, now)
    # Off the roll of any ballot still open: erased, they can neither vote nor be told.
    touched["ballot rolls left"] = await leave_open_rolls(session, participant_id)
    # No broadcast or briefing chooses an erased contact again.
    await session.execute(
        update(Contact)
        .where(Contact.participant_id == participant_id)
        .values(unreachable_at=now, sms_consent=False)
    )
    participant.erased_at = now
    participant.updated_at = now
    counts = {name: n for name, n in sorted(touched.items()) if n}
    await audit.append(
        session, ERASED, {"reason": reason, "rows": counts}, participant_id=participant_id, at=now
    )
    await session.flush()
    session.expire_all()  # the ORM copies hold what was erased
    return touched


async def _erase_place(
    session: AsyncSession, place: Place, participant_id: str, contact_ids: list[int]
) -> int:
    table = place.table
    if place.by == BY_CONTACT:
        if not contact_ids:
            return 0
        where = table.c.contact_id.in_(contact_ids)
    else:
        column = table.c.id if place.name == "participants" else table.c.participant_id
        where = column == participant_id
    if place.action == DELETE:
        result = await session.execute(delete(table).where(where))
    elif place.action == BLANK:
        result = await session.execute(update(table).where(where).values(**place.values()))
    else:
        return 0
    return result.rowcount or 0


async def _cancel_pending(session: AsyncSession, participant_id: str, now: datetime) -> int:
    """Messages still waiting to go to the person, and their due briefings and reminders."""
    result = await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.participant_id == participant_id,
            OutboxMessage.status.in_([str(s) for s in PENDING_STATUSES]),
        )
        .values(status=str(OutboxStatus.CANCELLED), error=ERASED_ERROR, lease_until=None)
    )
    await session.execute(
        update(CalendarJob)
        .where(CalendarJob.participant_id == participant_id, CalendarJob.status == JOB_PENDING)
        .values(status=JOB_CANCELLED, result=ERASED_ERROR, updated_at=now)
    )
    return result.rowcount or 0


async def _remember_opt_outs(
    session: AsyncSession,
    participant: Participant,
    contacts: list[Contact],
    key: bytes,
    now: datetime,
) -> None:
    """A STOP must outlive erasure: keep a keyed hash of each address that had opted out."""
    for contact in contacts:
        if participant.opted_out or contact.opted_out_at is not None:
            digest = opt_out_digest(key, contact.channel, contact.address)
            if await session.get(OptOutMark, digest) is None:
                session.add(OptOutMark(digest=digest, at=now))
    await session.flush()
