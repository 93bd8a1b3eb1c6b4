"""Respondents registered outside the chat, written beside the chat's registrations.

Each becomes a participant with a pool entry (their answers are its attributes, so the
draw reads them as it reads anyone's), an invitation already at "registered" (on the
channel "outside": no code, nothing was sent) and the record of how they registered.
A phone number becomes an SMS contact; without one the service cannot message them and
the organisers are told to (`without_contact`). Importing the same file again changes
nothing: people are found again by the file's id.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services.recruitment.common import check_one_assembly
from bot.services.respondents.reading import OutsideRow, Problem
from flows.assembly import Assembly
from flows.model import State
from store import audit
from store.contacts import SMS
from store.models import Contact, Participant, new_participant_id, utcnow
from store.recruitment import REGISTERED, Consent, Invitation, PoolEntry
from store.respondents import OutsideRegistration, without_contact

OUTSIDE = "outside"  # the invitation channel of someone who registered outside the chat
CREATED, UPDATED, UNCHANGED, JOINED = "created", "updated", "unchanged", "from the pool"


class ImportRefused(RuntimeError):
    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(map(str, problems)))
        self.problems = problems


@dataclass
class ImportResult:
    counts: Counter = field(default_factory=Counter)
    without_contact: int = 0


async def import_respondents(
    sessions: async_sessionmaker[AsyncSession],
    assembly: Assembly,
    rows: list[OutsideRow],
    *,
    now: datetime | None = None,
    dry_run: bool = False,
) -> ImportResult:
    """Write every row in one transaction, or nothing (ImportRefused names the rows that
    clash with the database). With `dry_run` the same checks run and nothing is kept."""
    now = now or utcnow()
    result = ImportResult()
    async with sessions() as session:
        transaction = await session.begin()
        try:
            await check_one_assembly(session, assembly)
            problems: list[Problem] = []
            events = []
            for row in rows:
                outcome, pid = await _one(session, assembly, row, now, problems)
                if outcome is None:
                    continue
                result.counts[outcome] += 1
                if outcome != UNCHANGED:
                    data = {"source": row.source, "change": outcome}
                    events.append(("respondent.registered_outside", data, pid))
            if problems:
                raise ImportRefused(problems)
            result.without_contact = sum(1 for row in rows if not row.reachable)
            await audit.append_many(session, events, now)
            await audit.append(
                session,
                "respondents.imported",
                {"people": len(rows), **dict(result.counts)},
                at=now,
            )
        except BaseException:
            await transaction.rollback()
            raise
        if dry_run:
            await transaction.rollback()
        else:
            await transaction.commit()
    return result


async def _one(
    session: AsyncSession, assembly: Assembly, row: OutsideRow, now: datetime, problems: list
) -> tuple[str | None, str | None]:
    entry = (
        await session.execute(select(PoolEntry).where(PoolEntry.external_id == row.external_id))
    ).scalar_one_or_none()
    owner = await _phone_owner(session, row.phone)
    if entry is not None and owner is not None and owner != entry.participant_id:
        problems.append(Problem(row.line, "", "the phone number belongs to someone else"))
        return None, None
    if entry is None and owner is not None:
        entry = (
            await session.execute(select(PoolEntry).where(PoolEntry.participant_id == owner))
        ).scalar_one_or_none()
        if entry is not None and entry.external_id not in (None, row.external_id):
            problems.append(
                Problem(row.line, "", f"the phone number is the one of id {entry.external_id}")
            )
            return None, None
    pid = entry.participant_id if entry is not None else owner
    if pid is None:
        return CREATED, await _create(session, assembly, row, now)
    outside = (
        await session.execute(
            select(OutsideRegistration).where(OutsideRegistration.participant_id == pid)
        )
    ).scalar_one_or_none()
    invitation = (
        await session.execute(select(Invitation).where(Invitation.participant_id == pid))
    ).scalar_one_or_none()
    if outside is None and invitation is not None and invitation.status == REGISTERED:
        problems.append(
            Problem(row.line, "", f"already registered in the chat (participant {pid})")
        )
        return None, None
    if entry is None:
        entry = PoolEntry(participant_id=pid, language=row.language or "en", attributes={})
        session.add(entry)
    outcome = _update(entry, outside, row, now) if outside else JOINED
    if outside is None:
        session.add(_registration(pid, row, now))
        _register(session, invitation, pid, row, now)
        entry.external_id = row.external_id
        _update(entry, None, row, now)
    if row.phone and owner is None:
        session.add(_contact(pid, row.phone, now))
        outcome = UPDATED if outcome == UNCHANGED else outcome
    await session.flush()
    return outcome, pid


async def _phone_owner(session: AsyncSession, phone: str | None) -> str | None:
    if phone is None:
        return None
    return (
        await session.execute(
            select(Contact.participant_id).where(Contact.channel == SMS, Contact.address == phone)
        )
    ).scalar_one_or_none()


async def _create(session: AsyncSession, assembly: Assembly, row: OutsideRow, now: datetime) -> str:
    pid = new_participant_id()
    language = row.language or assembly.assembly.default_language
    session.add(
        Participant(
            id=pid,
            language=language,
            opted_out=False,
            state=State(language=language).to_json(),
            created_at=now,
            updated_at=now,
        )
    )
    await session.flush()
    session.add(
        PoolEntry(
            participant_id=pid,
            external_id=row.external_id,
            language=language,
            household_id=row.household,
            attributes=dict(row.answers),
            source_line=row.line,
            imported_at=now,
        )
    )
    session.add(_registration(pid, row, now))
    _register(session, None, pid, row, now)
    if row.phone:
        session.add(_contact(pid, row.phone, now))
    await session.flush()
    return pid


def _registration(pid: str, row: OutsideRow, now: datetime) -> OutsideRegistration:
    return OutsideRegistration(
        participant_id=pid,
        source=row.source,
        consent_ref=row.consent_ref,
        email=row.email,
        source_line=row.line,
        imported_at=now,
        updated_at=now,
    )


def _register(
    session: AsyncSession, invitation: Invitation | None, pid: str, row: OutsideRow, now: datetime
) -> None:
    """Registered as if through the chat, so the draw and the funnel count them; their
    consent recorded as the chat's is, with how it was given and its reference."""
    session.add(
        Consent(
            participant_id=pid,
            text_version=f"{row.source}:{row.consent_ref}"[:64],
            language=row.language or "en",
            channel=row.source,
            given_at=now,
        )
    )
    if invitation is None:
        invitation = Invitation(
            participant_id=pid,
            # No code was ever sent: a hash of nothing anyone holds, unique per person.
            code_hash=hashlib.sha256(f"outside:{pid}".encode()).hexdigest(),
            channel=OUTSIDE,
            language=row.language or "en",
            sent_at=now,
        )
        session.add(invitation)
    invitation.status = REGISTERED
    invitation.responded_at = invitation.responded_at or now
    invitation.consented_at = now
    invitation.registered_at = now
    invitation.closed_at = None


def _update(
    entry: PoolEntry, outside: OutsideRegistration | None, row: OutsideRow, now: datetime
) -> str:
    """The file's row over what was recorded; UNCHANGED when it says nothing new."""
    before = (entry.household_id, dict(entry.attributes or {}), entry.language)
    entry.household_id = row.household or entry.household_id
    entry.attributes = {**(entry.attributes or {}), **row.answers}
    entry.language = row.language or entry.language
    changed = before != (entry.household_id, dict(entry.attributes), entry.language)
    if outside is not None:
        new = (row.source, row.consent_ref, row.email or outside.email)
        if new != (outside.source, outside.consent_ref, outside.email):
            outside.source, outside.consent_ref, outside.email = new
            changed = True
        outside.source_line = row.line
        if changed:
            outside.updated_at = now
    return UPDATED if changed else UNCHANGED


def _contact(pid: str, phone: str, now: datetime) -> Contact:
    # The number was given with the registration: that allows the outcome by SMS.
    return Contact(
        participant_id=pid,
        channel=SMS,
        address=phone,
        sms_consent=True,
        created_at=now,
        next_seq=1,
    )


@dataclass(frozen=True)
class OrganisersToContact:
    participant_id: str
    external_id: str | None
    source: str | None
    email: str | None


async def to_contact(
    session: AsyncSession, participant_ids: list[str]
) -> list[OrganisersToContact]:
    """Who the organisers must reach themselves, with what they know of them."""
    pids = await without_contact(session, participant_ids)
    if not pids:
        return []
    rows = await session.execute(
        select(
            PoolEntry.participant_id,
            PoolEntry.external_id,
            OutsideRegistration.source,
            OutsideRegistration.email,
        )
        .outerjoin(
            OutsideRegistration,
            OutsideRegistration.participant_id == PoolEntry.participant_id,
        )
        .where(PoolEntry.participant_id.in_(pids))
    )
    found = {r.participant_id: r for r in rows}
    return [
        OrganisersToContact(
            pid,
            getattr(found.get(pid), "external_id", None),
            getattr(found.get(pid), "source", None),
            getattr(found.get(pid), "email", None),
        )
        for pid in pids
    ]
