"""Recruitment operations: pool import, invitations, reminders, the draw's outcome, status.

Flows stay pure: this module gives them facts (provide_facts), turns their events into
rows (on_event), binds Telegram invitation links (before_inbound), and does the bulk work
the organiser commands start. Large jobs run in chunks, one transaction each, with bulk
inserts, so a run that stops can be started again and carries on where it stopped.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import ValidationError
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.addresses import BadAddress, is_simulated, normalise_phone
from bot.channels.render import render
from bot.relay import Relay
from bot.services import invite_codes
from bot.services import turns as service
from bot.settings import Settings
from flows import events
from flows.assembly import Assembly
from flows.catalog import build_engine
from flows.engine import Engine
from flows.facts import Facts, RecruitmentFacts, SelectionFacts
from flows.model import Context, Event, State
from scheduler import timers
from scheduler.config import Schedule
from scheduler.plan import after_quiet_hours
from store import audit
from store import contacts as contact_choice
from store import outbox as outbox_writer
from store.models import (
    AuditEvent,
    Contact,
    InboundMessage,
    Participant,
    new_participant_id,
    utcnow,
)
from store.recruitment import (
    AWAITING_REPLY,
    CONFIRMED,
    CONSENTED,
    DECLINED,
    FAILED,
    INVITATION_STATUSES,
    INVITED,
    LAPSED,
    NOT_INTERESTED,
    REGISTERED,
    REMINDED,
    RESERVE,
    RESPONDED,
    SELECTED,
    SELECTION_STATUSES,
    WITHDRAWN,
    Consent,
    Invitation,
    PoolEntry,
    RegistrationAnswer,
    Selection,
    hash_code,
)

log = logging.getLogger(__name__)

RECRUITMENT_FLOWS = ("invitation", "consent", "registration", "confirmation")
PLACEHOLDER_BOT = "ConcorderSimulatorBot"  # links made without a real bot point here
CHUNK = 10000

# ---------------------------------------------------------------------------- assembly


async def check_one_assembly(session: AsyncSession, assembly: Assembly) -> None:
    """One assembly per database: refuse work for another one than the first recorded."""
    recorded = (
        await session.execute(
            select(AuditEvent.data)
            .where(AuditEvent.kind == "recruitment.assembly")
            .order_by(AuditEvent.id)
            .limit(1)
        )
    ).scalar_one_or_none()
    if recorded is None:
        await audit.append(session, "recruitment.assembly", {"name": assembly.name})
    elif recorded.get("name") != assembly.name:
        raise RecruitmentError(
            f"this database belongs to the assembly {recorded.get('name')!r}, not "
            f"{assembly.name!r}: use a database of its own for each assembly"
        )


class RecruitmentError(RuntimeError):
    """An organiser command cannot go ahead; the message says why and what to do."""


# ------------------------------------------------------------------- facts for flows


async def recruitment_facts(
    assembly: Assembly, timezone: Callable[[], str], session: AsyncSession, participant: Participant
) -> dict[str, Any]:
    """What the recruitment flows know: the assembly's questions, this person's
    invitation, answers and place in the draw; deadlines in the assembly's `timezone()`."""
    facts = assembly.facts()
    invitation = (
        await session.execute(select(Invitation).where(Invitation.participant_id == participant.id))
    ).scalar_one_or_none()
    entry = (
        await session.execute(
            select(PoolEntry.attributes).where(PoolEntry.participant_id == participant.id)
        )
    ).scalar_one_or_none()
    selection = (
        await session.execute(select(Selection).where(Selection.participant_id == participant.id))
    ).scalar_one_or_none()
    question_ids = {q["id"] for q in facts["questions"]}
    facts["known"] = {k: v for k, v in (entry or {}).items() if k in question_ids}
    facts["invitation_status"] = invitation.status if invitation else None
    if selection is not None:
        facts["selection"] = SelectionFacts(selection.status, selection.confirm_by)
    facts["outcome"] = _outcome(invitation, selection)
    facts["timezone"] = participant.timezone or timezone()
    result: dict[str, Any] = {
        "assembly_name": assembly.name,
        "recruitment": RecruitmentFacts(**facts),
    }
    default = _default_flow(invitation, selection)
    if default:
        result["default_flow"] = default
    return result


def _outcome(invitation: Invitation | None, selection: Selection | None) -> str | None:
    """What the draw decided for this person, once they have been told."""
    if selection is not None:
        return selection.status
    if invitation is not None and invitation.outcome_sent_at is not None:
        return "not_selected"
    return None


def _default_flow(invitation: Invitation | None, selection: Selection | None) -> str | None:
    """Where a message lands when no question is waiting for an answer."""
    if selection is not None and selection.status == SELECTED and selection.responded_at is None:
        return "confirmation"
    if invitation is not None and invitation.status == WITHDRAWN:
        return None
    if _outcome(invitation, selection) is not None:
        return "outcome"
    if invitation is None:
        return None
    if invitation.status in (*AWAITING_REPLY, LAPSED):
        return "invitation"
    if invitation.status == RESPONDED:
        return "consent"
    if invitation.status in (CONSENTED, REGISTERED):
        return "registration"
    return None


# ------------------------------------------------------- flow events become rows


async def _invitation_of(session: AsyncSession, participant_id: str) -> Invitation | None:
    return (
        await session.execute(
            select(Invitation).where(Invitation.participant_id == participant_id).with_for_update()
        )
    ).scalar_one_or_none()


async def _accepted(session, participant, event: Event, now: datetime) -> None:
    invitation = await _invitation_of(session, participant.id)
    if invitation is not None:
        invitation.responded_at = invitation.responded_at or now
        invitation.status = RESPONDED


async def _close(session, participant, now: datetime, status: str) -> None:
    invitation = await _invitation_of(session, participant.id)
    if invitation is not None:
        invitation.responded_at = invitation.responded_at or now
        invitation.status, invitation.closed_at = status, now


async def _declined(session, participant, event: Event, now: datetime) -> None:
    await _close(session, participant, now, NOT_INTERESTED)


async def _consent_refused(session, participant, event: Event, now: datetime) -> None:
    await _close(session, participant, now, NOT_INTERESTED)


async def _consent_given(session, participant, event: Event, now: datetime) -> None:
    session.add(
        Consent(
            participant_id=participant.id,
            text_version=str(event.data.get("version", "")),
            language=str(event.data.get("language", participant.language)),
            channel=str(event.data.get("channel", "")),
            given_at=now,
        )
    )
    invitation = await _invitation_of(session, participant.id)
    if invitation is not None:
        invitation.responded_at = invitation.responded_at or now
        invitation.consented_at, invitation.status = now, CONSENTED


async def _registered(session, participant, event: Event, now: datetime) -> None:
    state = dict(participant.state)
    data = dict(state.get("data") or {})
    progress = data.pop("registration", None) or {}
    # The answers move from the conversation state to their table, and only there.
    state["data"] = data
    participant.state = state
    await session.execute(
        RegistrationAnswer.__table__.delete().where(
            RegistrationAnswer.participant_id == participant.id
        )
    )
    for question_id, answer in (progress.get("answers") or {}).items():
        session.add(
            RegistrationAnswer(
                participant_id=participant.id,
                question_id=question_id,
                answer=answer,
                answered_at=now,
            )
        )
    invitation = await _invitation_of(session, participant.id)
    if invitation is not None:
        invitation.registered_at, invitation.status = now, REGISTERED


async def _withdrew(session, participant, event: Event, now: datetime) -> None:
    """WITHDRAW or STOP: stop everything and mark the person's data for erasure."""
    invitation = await _invitation_of(session, participant.id)
    entry = (
        await session.execute(
            select(PoolEntry.id).where(PoolEntry.participant_id == participant.id)
        )
    ).scalar_one_or_none()
    if invitation is None and entry is None:
        return
    participant.erase_requested_at = participant.erase_requested_at or now
    if invitation is not None and invitation.status != WITHDRAWN:
        invitation.status, invitation.closed_at = WITHDRAWN, now
    await session.execute(
        update(Consent)
        .where(Consent.participant_id == participant.id, Consent.withdrawn_at.is_(None))
        .values(withdrawn_at=now)
    )
    await session.execute(
        update(Selection)
        .where(Selection.participant_id == participant.id, Selection.status != DECLINED)
        .values(status=DECLINED, reason="withdrawn", responded_at=now)
    )


async def _answer_selection(session, participant, now: datetime, status: str) -> None:
    selection = (
        await session.execute(
            select(Selection).where(Selection.participant_id == participant.id).with_for_update()
        )
    ).scalar_one_or_none()
    if selection is not None:
        selection.status, selection.responded_at = status, now
        selection.reason = "declined" if status == DECLINED else None


async def _confirmed(session, participant, event: Event, now: datetime) -> None:
    await _answer_selection(session, participant, now, CONFIRMED)


async def _selection_declined(session, participant, event: Event, now: datetime) -> None:
    await _answer_selection(session, participant, now, DECLINED)


# ----------------------------------------------------- Telegram invitation links

STORED_START = "/start [code not kept]"
_START = re.compile(r"^/start(?:@\w+)?\s+([A-Za-z0-9_-]{1,64})\s*$")


async def bind_invitation_link(
    session: AsyncSession, *, channel: str, address: str, text: str, language: str, now: datetime
) -> None:
    """'/start <code>' from a Telegram chat binds that chat to the invited person, once."""
    # A simulated chat never takes over an invited person, whatever code it types.
    real_chat = channel == "telegram" and not is_simulated(address)
    match = _START.match(text.strip()) if real_chat else None
    if match is None:
        return
    # The stored inbound message keeps the command, not the code: a code refused here (this
    # chat speaks for someone else) stays unbound, and usable by whoever reads it.
    await session.execute(
        update(InboundMessage)
        .where(
            InboundMessage.channel == "telegram",
            InboundMessage.contact_id.is_(None),
            InboundMessage.text == text,
        )
        .values(text=STORED_START)
    )
    invitation = (
        await session.execute(
            select(Invitation)
            .where(Invitation.code_hash == hash_code(match.group(1)))
            .with_for_update()
        )
    ).scalar_one_or_none()
    contact = (
        await session.execute(
            select(Contact).where(Contact.channel == "telegram", Contact.address == address)
        )
    ).scalar_one_or_none()
    # The chat's contact is written before the audit chain's head is locked, as every
    # inbound message does: two writers taking them in opposite orders would deadlock.
    if invitation is None or invitation.status in (LAPSED, WITHDRAWN, FAILED):
        await _mark_refused(session, contact, address, language, "invalid")
        await audit.append(
            session, "invitation.code_invalid", {"known": invitation is not None}, at=now
        )
        return
    if invitation.bound_contact_id is not None:
        if contact is not None and contact.id == invitation.bound_contact_id:
            return  # the same account opening its link again
        await _mark_refused(session, contact, address, language, "used")
        await audit.append(
            session,
            "invitation.code_refused",
            {"reason": "used by another account"},
            participant_id=invitation.participant_id,
            at=now,
        )
        return
    if contact is None:
        try:
            async with session.begin_nested():
                contact = Contact(
                    participant_id=invitation.participant_id, channel="telegram", address=address
                )
                session.add(contact)
                await session.flush()
        except IntegrityError:
            # The chat's other message, sent at the same moment, created it first.
            contact = await service.contact_at(session, "telegram", address)
            if contact is None:
                raise
    if contact.participant_id != invitation.participant_id:
        if await _is_recruited(session, contact.participant_id):
            # One account, one person: it already speaks for someone of the pool.
            await audit.append(
                session,
                "invitation.code_refused",
                {"reason": "account linked to another person"},
                participant_id=invitation.participant_id,
                at=now,
            )
            await _mark_refused(session, contact, address, language, "other")
            return
        # This chat wrote before opening its link: it belongs to the invited person now.
        await audit.append(
            session,
            "contact.moved",
            {"from": contact.participant_id},
            participant_id=invitation.participant_id,
            at=now,
        )
        contact.participant_id = invitation.participant_id
    invitation.bound_contact_id, invitation.bound_at = contact.id, now
    # Opening the link is an answer (no reminder, no lapse); the invitation question
    # itself is asked next, in the chat.
    invitation.responded_at = invitation.responded_at or now
    await audit.append(
        session,
        "invitation.link_opened",
        {"channel": invitation.channel},
        participant_id=invitation.participant_id,
        at=now,
    )


async def _is_recruited(session: AsyncSession, participant_id: str) -> bool:
    found = await session.scalar(
        select(PoolEntry.id).where(PoolEntry.participant_id == participant_id)
    )
    return found is not None


async def _mark_refused(
    session: AsyncSession, contact: Contact | None, address: str, language: str, reason: str
) -> None:
    """Let the invitation flow tell this chat why its link did not work."""
    if contact is None:
        contact = await service.find_or_create_contact(session, "telegram", address, language)
    participant = await service.lock_participant(session, contact.participant_id)
    state = State.from_json(participant.state, language=participant.language)
    if state.flow not in RECRUITMENT_FLOWS or state.step is None:
        state.flow, state.step, state.offered = "invitation", None, []
    # Else the person is in the middle of their own recruitment: the flow says why the
    # link was refused and asks its current question again.
    state.data["invitation_refused"] = reason
    participant.state = state.to_json()


# -------------------------------------------------------------------- pool import

HEADER_ALIASES = {
    "phone": "phone",
    "mobile": "phone",
    "phone_number": "phone",
    "telegram": "telegram",
    "telegram_handle": "telegram",
    "handle": "telegram",
    "language": "language",
    "lang": "language",
    "household": "household",
    "household_id": "household",
    "id": "external_id",
    "external_id": "external_id",
    "ref": "external_id",
}
_HANDLE = re.compile(r"^[A-Za-z][A-Za-z0-9_]{4,31}$")


@dataclass
class PoolRow:
    lines: list[int]
    phone: str | None = None
    telegram: str | None = None
    language: str | None = None
    household: str | None = None
    external_id: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)

    def keys(self) -> list[tuple[str, str]]:
        return [
            (kind, value)
            for kind, value in (
                ("phone", self.phone),
                ("telegram", self.telegram),
                ("external_id", self.external_id),
            )
            if value
        ]


@dataclass
class BadRow:
    line: int
    reason: str


@dataclass
class PoolParse:
    rows: list[PoolRow]
    bad: list[BadRow]
    read: int
    merged: int


def parse_pool(
    path: str | Path,
    assembly: Assembly,
    default_region: str = "GB",
    progress: Callable[[int], None] | None = None,
) -> PoolParse:
    """Read and check a pool CSV. Bad rows are reported with their line and reason;
    rows naming the same phone, handle or id are merged into one person."""
    with open(path, newline="", encoding="utf-8-sig") as fp:
        reader = csv.reader(fp)
        try:
            header = next(reader)
        except StopIteration:
            raise RecruitmentError(f"{path}: the file is empty") from None
        columns = [HEADER_ALIASES.get(h.strip().lower(), h.strip()) for h in header]
        if "phone" not in columns and "telegram" not in columns:
            raise RecruitmentError(f"{path}: line 1 needs a 'phone' or 'telegram' column")
        dupes = [c for c, n in Counter(columns).items() if n > 1]
        if dupes:
            raise RecruitmentError(f"{path}: line 1 repeats the column {dupes[0]!r}")
        options = {q.id: {o.key for o in q.options} for q in assembly.questions}
        rows: list[PoolRow] = []
        bad: list[BadRow] = []
        read = 0
        for values in reader:
            read += 1
            line = reader.line_num
            if progress and read % 5000 == 0:
                progress(read)
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(columns):
                bad.append(
                    BadRow(line, f"{len(values)} fields where the header has {len(columns)}")
                )
                continue
            try:
                rows.append(
                    _check_row(
                        dict(zip(columns, values, strict=True)),
                        line,
                        assembly,
                        options,
                        default_region,
                    )
                )
            except ValueError as exc:
                bad.append(BadRow(line, str(exc)))
    if progress:
        progress(read)
    merged, conflicts = _merge(rows)
    bad.extend(conflicts)
    bad.sort(key=lambda b: b.line)
    return PoolParse(merged, bad, read, len(rows) - len(merged) - len(conflicts))


# Ofcom's numbers for drama (07700 900000-900999) are never given to anyone: examples and
# rehearsals use them, so they are accepted although no numbering plan lists them.
_FICTIONAL = re.compile(r"^\+447700900\d{3}$")


def pool_phone(number: str, region: str) -> str:
    try:
        return normalise_phone(number, region)
    except BadAddress:
        digits = re.sub(r"[\s().-]", "", number)
        e164 = "+44" + digits[1:] if digits.startswith("0") and region == "GB" else digits
        if _FICTIONAL.match(e164):
            return e164
        raise


def _check_row(
    raw: dict[str, str], line: int, assembly: Assembly, options: dict[str, set[str]], region: str
) -> PoolRow:
    row = PoolRow(lines=[line])
    phone = raw.pop("phone", "").strip()
    if phone:
        try:
            row.phone = pool_phone(phone, region)
        except BadAddress as exc:
            raise ValueError(f"phone: {exc}") from None
    handle = raw.pop("telegram", "").strip().removeprefix("@")
    if handle:
        if not _HANDLE.match(handle):
            raise ValueError(
                "telegram: a handle is 5 to 32 letters, digits or _, starting with a letter"
            )
        row.telegram = handle.lower()
    if not row.phone and not row.telegram:
        raise ValueError("no phone number and no Telegram handle: nobody to invite")
    language = raw.pop("language", "").strip().lower()
    if language and language not in assembly.languages:
        raise ValueError(
            f"language: {language!r} is not one of the assembly's ({', '.join(assembly.languages)})"
        )
    row.language = language or None
    row.household = raw.pop("household", "").strip()[:64] or None
    row.external_id = raw.pop("external_id", "").strip()[:64] or None
    for name, value in raw.items():
        value = value.strip()
        if not value:
            continue
        if name in options and value not in options[name]:
            raise ValueError(f"{name}: {value!r} is not one of {', '.join(sorted(options[name]))}")
        row.attributes[name] = value
    return row


def _merge(rows: list[PoolRow]) -> tuple[list[PoolRow], list[BadRow]]:
    """One person per phone, handle or id. Blanks are filled in; a row that says something
    different about the same person (another household...) is reported, not guessed."""
    people: list[PoolRow] = []
    owner: dict[tuple[str, str], int] = {}
    conflicts: list[BadRow] = []
    for row in rows:
        found = sorted({owner[k] for k in row.keys() if k in owner})
        if not found:
            index = len(people)
            people.append(row)
        else:
            index = found[0]
            problem = _conflict(people[index], row) or next(
                (
                    f"joins two different people (lines {people[index].lines[0]} and "
                    f"{people[other].lines[0]})"
                    for other in found[1:]
                ),
                None,
            )
            if problem:
                conflicts.append(BadRow(row.lines[0], problem))
                continue
            _absorb(people[index], row)
        for key in row.keys():
            owner[key] = index
    return people, conflicts


def _conflict(person: PoolRow, row: PoolRow) -> str | None:
    first = person.lines[0]
    for name in ("phone", "telegram", "language", "household", "external_id"):
        mine, theirs = getattr(person, name), getattr(row, name)
        if mine and theirs and mine != theirs:
            return f"duplicate of line {first} with a different {name.replace('_', ' ')}"
    for name, value in row.attributes.items():
        if person.attributes.get(name, value) != value:
            return f"duplicate of line {first} with a different {name}"
    return None


def _absorb(person: PoolRow, row: PoolRow) -> None:
    for name in ("phone", "telegram", "language", "household", "external_id"):
        if not getattr(person, name):
            setattr(person, name, getattr(row, name))
    person.attributes.update(row.attributes)
    person.lines.extend(row.lines)


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0


async def import_pool(
    sessions: async_sessionmaker[AsyncSession],
    assembly: Assembly,
    rows: list[PoolRow],
    *,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
    chunk: int = 5000,
) -> ImportResult:
    """Write checked rows in one transaction (all or nothing). A person already in the
    pool (same phone, handle or id) is updated, so importing a file twice changes nothing."""
    now = now or utcnow()
    result = ImportResult()
    async with sessions.begin() as session:
        await check_one_assembly(session, assembly)
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            created, updated = await _import_chunk(session, assembly, part, now)
            result.created += created
            result.updated += updated
            if progress:
                progress(len(part))
        await audit.append(
            session,
            "pool.imported",
            {"people": len(rows), "created": result.created, "updated": result.updated},
            at=now,
        )
    return result


async def _import_chunk(
    session: AsyncSession, assembly: Assembly, rows: list[PoolRow], now: datetime
) -> tuple[int, int]:
    phones = [r.phone for r in rows if r.phone]
    handles = [r.telegram for r in rows if r.telegram]
    ids = [r.external_id for r in rows if r.external_id]
    by_key: dict[tuple[str, str], str] = {}
    if phones:
        for address, pid in await session.execute(
            select(Contact.address, Contact.participant_id).where(
                Contact.channel == "sms", Contact.address.in_(phones)
            )
        ):
            by_key[("phone", address)] = pid
    if handles or ids:
        query = select(PoolEntry.telegram_handle, PoolEntry.external_id, PoolEntry.participant_id)
        for handle, ext, pid in await session.execute(
            query.where(PoolEntry.telegram_handle.in_(handles) | PoolEntry.external_id.in_(ids))
        ):
            if handle:
                by_key[("telegram", handle)] = pid
            if ext:
                by_key[("external_id", ext)] = pid
    new_participants, new_contacts, new_entries = [], [], []
    updated = 0
    for row in rows:
        pid = next((by_key[k] for k in row.keys() if k in by_key), None)
        language = row.language or assembly.assembly.default_language
        if pid is None:
            pid = new_participant_id()
            new_participants.append(
                {
                    "id": pid,
                    "language": language,
                    "opted_out": False,
                    "state": State(language=language).to_json(),
                    "created_at": now,
                    "updated_at": now,
                }
            )
            new_entries.append(
                {
                    "participant_id": pid,
                    "external_id": row.external_id,
                    "telegram_handle": row.telegram,
                    "language": language,
                    "household_id": row.household,
                    "attributes": row.attributes,
                    "source_line": row.lines[0],
                    "imported_at": now,
                }
            )
            if row.phone:
                # Being on the organiser's list is what allows the invitation by SMS.
                new_contacts.append(
                    {
                        "participant_id": pid,
                        "channel": "sms",
                        "address": row.phone,
                        "sms_consent": True,
                        "created_at": now,
                        "next_seq": 1,
                    }
                )
            continue
        updated += await _update_entry(session, pid, row, now, new_contacts)
    conn = await session.connection()
    if new_participants:
        await conn.execute(Participant.__table__.insert(), new_participants)
        await conn.execute(PoolEntry.__table__.insert(), new_entries)
    if new_contacts:
        await conn.execute(Contact.__table__.insert(), new_contacts)
    return len(new_participants), updated


async def _update_entry(
    session: AsyncSession, pid: str, row: PoolRow, now: datetime, new_contacts: list[dict[str, Any]]
) -> int:
    entry = (
        await session.execute(select(PoolEntry).where(PoolEntry.participant_id == pid))
    ).scalar_one_or_none()
    if entry is None:  # someone who wrote in by SMS before being on the list
        entry = PoolEntry(
            participant_id=pid,
            language=row.language or "en",
            attributes={},
            imported_at=now,
            source_line=row.lines[0],
        )
        session.add(entry)
    entry.telegram_handle = entry.telegram_handle or row.telegram
    entry.external_id = entry.external_id or row.external_id
    entry.household_id = row.household or entry.household_id
    entry.language = row.language or entry.language
    entry.attributes = {**(entry.attributes or {}), **row.attributes}
    if row.phone:
        exists = (
            await session.execute(
                select(Contact.id).where(Contact.channel == "sms", Contact.address == row.phone)
            )
        ).first()
        if exists is None:
            new_contacts.append(
                {
                    "participant_id": pid,
                    "channel": "sms",
                    "address": row.phone,
                    "sms_consent": True,
                    "created_at": now,
                    "next_seq": 1,
                }
            )
    await session.flush()
    return 1


# -------------------------------------------------------------------- invitations


def invite_link(bot_username: str, code: str) -> str:
    return f"https://t.me/{bot_username}?start={code}"


async def resolve_bot_username(
    settings: Settings, assembly: Assembly | None, given: str | None = None
) -> tuple[str, str]:
    """The bot's username for links, and where it came from: the option, Telegram's
    getMe, the assembly file, or a placeholder (simulator only: such links go nowhere)."""
    if given:
        return given.lstrip("@"), "option"
    if settings.telegram_enabled:
        from bot.channels.telegram import close_bot, make_bot

        bot = make_bot(settings)
        try:
            me = await bot.get_me()
        finally:
            await close_bot(bot)
        return me.username, "telegram"
    if assembly is not None and assembly.recruitment.telegram_bot_username:
        return assembly.recruitment.telegram_bot_username, "assembly file"
    return PLACEHOLDER_BOT, "placeholder"


def _pending_query(limit: int | None, after_id: int = 0):
    """Pool entries with no invitation yet, of people who have not opted out (in pool
    order, after `after_id`: a run does not scan again what it has just invited)."""
    query = (
        select(
            PoolEntry.id,
            PoolEntry.participant_id,
            PoolEntry.language,
            PoolEntry.telegram_handle,
            Participant.state,
        )
        .join(Participant, Participant.id == PoolEntry.participant_id)
        .outerjoin(Invitation, Invitation.participant_id == PoolEntry.participant_id)
        .where(
            Invitation.id.is_(None),
            Participant.opted_out.is_(False),
            Participant.erase_requested_at.is_(None),
            PoolEntry.id > after_id,
        )
        .order_by(PoolEntry.id)
    )
    return query.limit(limit) if limit else query


async def _contacts_of(session: AsyncSession, pids: list[str]) -> dict[str, list[Any]]:
    return await contact_choice.contacts_of(session, pids)


def _channel_for(contacts: list[Any], handle: str | None) -> tuple[str, Any | None]:
    """The one contact choice; failing it, a Telegram handle with no chat yet is invited
    by a link on a letter."""
    contact = contact_choice.choose(contacts)
    if contact is not None:
        return contact.channel, contact
    return ("letter", None) if handle else (FAILED, None)


@dataclass
class InvitePlan:
    """What an invitation run would do: people per channel and language, SMS cost."""

    by_channel_language: Counter = field(default_factory=Counter)
    sms_segments: int = 0
    sms_messages: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_channel_language.values())

    def cost(self, per_segment: float) -> float:
        return self.sms_segments * per_segment


def _facts(assembly: Assembly, link: str | None) -> Facts:
    facts = assembly.facts()
    facts["invite_link"] = link
    facts["invitation_status"] = INVITED
    return Facts(assembly_name=assembly.name, recruitment=RecruitmentFacts(**facts))


async def plan_invitations(
    session: AsyncSession,
    settings: Settings,
    assembly: Assembly,
    bot_username: str,
    limit: int | None = None,
    *,
    engine: Engine | None = None,
) -> InvitePlan:
    """Count without writing anything: who would be invited, how, and the SMS bill.
    `engine`: the service's conversations (the standard ones when not given)."""
    engine = engine or build_engine()
    plan = InvitePlan()
    sample_link = invite_link(bot_username, "x" * invite_codes.CODE_LENGTH)  # all as long
    segments_by_language: dict[str, int] = {}
    result = await session.stream(_pending_query(limit).execution_options(yield_per=CHUNK))
    async for batch in result.partitions(CHUNK):
        contacts = await _contacts_of(session, [r.participant_id for r in batch])
        for row in batch:
            channel, _contact = _channel_for(
                contacts.get(row.participant_id, []), row.telegram_handle
            )
            language = State.from_json(row.state, language=row.language).language
            plan.by_channel_language[(channel, language)] += 1
            if channel == "sms":
                if language not in segments_by_language:
                    segments_by_language[language] = _sms_size(
                        settings, assembly, language, sample_link, engine
                    )
                plan.sms_segments += segments_by_language[language]
                plan.sms_messages += 1
    return plan


def _sms_size(
    settings: Settings, assembly: Assembly, language: str, link: str, engine: Engine
) -> int:
    ctx = Context(now=utcnow(), participant_id="P0", channel="sms", facts=_facts(assembly, link))
    turn = engine.start(State(language=language), "invitation", ctx)
    return sum(
        part.segments
        for message in turn.outbound
        for part in render(
            message, "sms", language, turn.state.prompt_id, settings.sms_max_segments
        )
    )


@dataclass
class InviteResult:
    invited: Counter = field(default_factory=Counter)  # by channel
    messages: int = 0
    letters: int = 0

    @property
    def total(self) -> int:
        return sum(self.invited.values())


async def send_invitations(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    assembly: Assembly,
    bot_username: str,
    *,
    limit: int | None = None,
    letters_path: str | Path | None = None,
    now: datetime | None = None,
    chunk: int = CHUNK,
    progress: Callable[[int], None] | None = None,
    engine: Engine | None = None,
) -> InviteResult:
    """Invite everyone in the pool not invited yet (at most `limit`), chunk by chunk.

    Each chunk is one transaction: the invitations, the participants' new conversation
    state, the outbox rows and the audit events commit together, so a stopped run resumes
    without inviting anyone twice. Letter links (handle only) are appended to
    `letters_path` and flushed to disk before their chunk commits.
    """
    now = now or utcnow()
    engine = engine or build_engine()
    result = InviteResult()
    async with sessions.begin() as session:
        await check_one_assembly(session, assembly)
    letters = None
    last_id = 0
    try:
        while limit is None or result.total < limit:
            size = chunk if limit is None else min(chunk, limit - result.total)
            async with sessions.begin() as session:
                await _roomy_cache(session)
                rows = (await session.execute(_pending_query(size, last_id))).all()
                if not rows:
                    break
                last_id = rows[-1].id
                if letters is None and letters_path and any(r.telegram_handle for r in rows):
                    letters = _open_letters(letters_path)
                done = await _invite_chunk(
                    session, settings, engine, assembly, bot_username, rows, now, letters, result
                )
                if letters is not None:
                    letters.flush()
                    os.fsync(letters.fileno())
            if progress:
                progress(done)
    finally:
        if letters is not None:
            letters.close()
    return result


async def _roomy_cache(session: AsyncSession) -> None:
    """Random keys (codes, hashes, pseudonyms) touch pages all over the indexes: SQLite's
    default 2 MB page cache would read them from the file again and again."""
    conn = await session.connection()
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql("PRAGMA cache_size=-65536")  # 64 MB, this connection


def _open_letters(path: str | Path):
    path = Path(path)
    new = not path.exists() or path.stat().st_size == 0
    # Its links open invitations: readable by the organiser only, like the key.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    fp = os.fdopen(fd, "a", newline="", encoding="utf-8")
    if new:
        csv.writer(fp).writerow(["participant_id", "telegram_handle", "language", "link"])
    return fp


_CODE_MARK = "Q" * invite_codes.CODE_LENGTH  # where the code goes in a rendered invitation


def _rendered_invitation(
    settings: Settings,
    engine: Engine,
    assembly: Assembly,
    bot_username: str,
    state: State,
    channel: str,
    now: datetime,
):
    """The invitation turn for one person, rendered: the new state, the events, and the
    parts with _CODE_MARK where the person's code goes."""
    ctx = Context(
        now=now,
        participant_id="P0",
        channel=channel,
        facts=_facts(assembly, invite_link(bot_username, _CODE_MARK)),
    )
    turn = engine.start(state, "invitation", ctx)
    messages = [
        (
            message,
            render(
                message,
                channel,
                turn.state.language,
                turn.state.prompt_id,
                settings.sms_max_segments,
            ),
        )
        for message in turn.outbound
    ]
    return turn.state.to_json(), turn.events, messages


def quiet_hours_end(assembly: Assembly | None, now: datetime) -> datetime:
    """When an invitation written at `now` may go: after the quiet hours of the assembly's
    [schedule], in its time zone, as the calendar's own messages wait; `now` without one."""
    if assembly is None or assembly.schedule is None:
        return now
    try:
        schedule = Schedule.model_validate(assembly.schedule)
    except ValidationError as exc:
        raise RecruitmentError(f"the [schedule] table cannot be used: {exc}") from None
    return after_quiet_hours(now, ZoneInfo(schedule.timezone), schedule.quiet_hours)


async def _invite_chunk(
    session: AsyncSession,
    settings: Settings,
    engine: Engine,
    assembly: Assembly,
    bot_username: str,
    rows: list,
    now: datetime,
    letters,
    result: InviteResult,
) -> int:
    recruitment = assembly.recruitment
    contacts = await _contacts_of(session, [r.participant_id for r in rows])
    invitations, outbox, states, events = [], [], [], []
    writer = csv.writer(letters) if letters is not None else None
    # People who never wrote have the same fresh state: their invitation differs only by
    # the code, so it is rendered once per channel and language and the code filled in.
    fresh: dict[tuple[str, str], Any] = {}
    secret = invite_codes.server_key(settings)
    remind_at = now + recruitment.remind_after
    lapse_at = remind_at + recruitment.lapse_after
    not_before = quiet_hours_end(assembly, now)
    for row in rows:
        pid = row.participant_id
        channel, contact = _channel_for(contacts.get(pid, []), row.telegram_handle)
        # The outbox keeps only the nonce; the code is made again as the message leaves.
        nonce = invite_codes.new_nonce()
        code = invite_codes.code_for(nonce, secret)
        code_marker = invite_codes.marker(nonce)
        state = State.from_json(row.state, language=row.language)
        if contact is not None:
            pristine = state.flow is None and not state.data
            key = (channel, state.language)
            if pristine and key in fresh:
                new_state, turn_events, messages = fresh[key]
            else:
                new_state, turn_events, messages = _rendered_invitation(
                    settings, engine, assembly, bot_username, state, channel, now
                )
                if pristine:
                    fresh[key] = (new_state, turn_events, messages)
            for message, parts in messages:
                for number, part in enumerate(parts, start=1):
                    outbox.append(
                        outbox_writer.Message(
                            contact,
                            part.text.replace(_CODE_MARK, code_marker),
                            buttons=part.buttons,
                            markdown=message.markdown,
                            kind="invitation",
                            part=number,
                            parts=len(parts),
                            segments=part.segments,
                            encoding=part.encoding,
                            not_before=not_before,
                        )
                    )
            states.append({"b_id": pid, "b_state": new_state, "b_at": now})
            events.extend((e.kind, e.data, pid) for e in turn_events)
        elif channel == "letter" and writer is not None:
            writer.writerow(
                [pid, row.telegram_handle, state.language, invite_link(bot_username, code)]
            )
            result.letters += 1
        failed = channel == FAILED
        invitations.append(
            {
                "participant_id": pid,
                "code_hash": hash_code(code),
                "channel": channel,
                "language": state.language,
                "status": FAILED if failed else INVITED,
                "sent_at": now,
                "remind_at": remind_at if contact is not None else None,
                "lapse_at": None if failed else lapse_at,
                "closed_at": now if failed else None,
            }
        )
        events.append(
            (
                "invitation.unreachable" if failed else "invitation.sent",
                {"channel": channel, "language": state.language},
                pid,
            )
        )
        result.invited[channel] += 1
    # Core statements: one executemany each, no ORM objects for a quarter million rows.
    conn = await session.connection()
    await conn.execute(Invitation.__table__.insert(), invitations)
    if outbox:
        await outbox_writer.write(session, outbox, now=now)
        participant_table = Participant.__table__
        await conn.execute(
            participant_table.update()
            .where(participant_table.c.id == bindparam("b_id"))
            .values(state=bindparam("b_state"), updated_at=bindparam("b_at")),
            states,
        )
    await audit.append_many(session, events, now)
    result.messages += len(outbox)
    return len(rows)


# ------------------------------------------------------------- reminders, lapsing


async def due_invitation_reminders(
    session: AsyncSession, now: datetime, limit: int | None = None
) -> list[Invitation]:
    """Invitations sent by message with no reply, whose one reminder is due."""
    query = (
        select(Invitation)
        .where(
            Invitation.status == INVITED,
            Invitation.responded_at.is_(None),
            Invitation.reminded_at.is_(None),
            Invitation.remind_at <= now,
        )
        .order_by(Invitation.remind_at, Invitation.id)
    )
    return list((await session.execute(query.limit(limit) if limit else query)).scalars())


async def send_invitation_reminders(
    relay: Relay, now: datetime | None = None, chunk: int = 500
) -> int:
    """Send every due reminder (one per invitation, ever), a chunk per transaction."""
    now = now or utcnow()
    not_before = quiet_hours_end(relay.assembly, now)
    sent = 0
    while True:
        async with relay.sessions.begin() as session:
            due = await due_invitation_reminders(session, now, chunk)
            for invitation in due:
                participant = await service.lock_participant(session, invitation.participant_id)
                invitation.reminded_at, invitation.status = now, REMINDED
                if participant.opted_out or participant.erase_requested_at:
                    continue
                await service.start_flow(
                    session,
                    relay,
                    participant,
                    "invitation",
                    step="reminder",
                    now=now,
                    not_before=not_before,
                )
                await audit.append(
                    session, "invitation.reminded", {}, participant_id=participant.id, at=now
                )
                sent += 1
        if len(due) < chunk:
            return sent


async def lapse_invitations(session: AsyncSession, now: datetime) -> int:
    """Close the invitations nobody answered, even after the reminder. Returns how many."""
    ids = list(
        (
            await session.execute(
                select(Invitation.id, Invitation.participant_id).where(
                    Invitation.status.in_(AWAITING_REPLY),
                    Invitation.responded_at.is_(None),
                    Invitation.lapse_at <= now,
                )
            )
        ).all()
    )
    if not ids:
        return 0
    for start in range(0, len(ids), 5000):
        part = ids[start : start + 5000]
        await session.execute(
            update(Invitation)
            .where(Invitation.id.in_([i for i, _ in part]))
            .values(status=LAPSED, closed_at=now)
        )
        await audit.append_many(session, [("invitation.lapsed", {}, pid) for _, pid in part], now)
    return len(ids)


# ------------------------------------------------------------ the draw's outcome


async def notify_draw_outcome(
    relay: Relay, assembly: Assembly, now: datetime | None = None
) -> Counter:
    """Tell people what the draw wrote: the selected are asked to CONFIRM by a deadline,
    reserves hear they are reserves, everyone else registered is thanked. Each person is
    told once; rows the draw adds later (a reserve promoted to selected) are told then."""
    now = now or utcnow()
    told: Counter = Counter()
    async with relay.sessions.begin() as session:
        await expire_selections(session, now)
        selections = (
            (
                await session.execute(
                    # Not told yet, or a reserve promoted to selected (no deadline yet).
                    select(Selection)
                    .where(
                        (
                            Selection.notified_at.is_(None)
                            & Selection.status.in_((SELECTED, RESERVE))
                        )
                        | ((Selection.status == SELECTED) & Selection.confirm_by.is_(None))
                    )
                    .order_by(Selection.id)
                    .with_for_update()
                )
            )
            .scalars()
            .all()
        )
        for selection in selections:
            if selection.status == SELECTED and selection.confirm_by is None:
                selection.confirm_by = now + assembly.recruitment.confirm_within
            selection.notified_at = now
            participant = await service.lock_participant(session, selection.participant_id)
            step = "confirm" if selection.status == SELECTED else "reserve"
            await service.start_flow(
                session, relay, participant, "confirmation", step=step, now=now
            )
            await audit.append(
                session,
                "selection.notified",
                {"status": selection.status},
                participant_id=participant.id,
                at=now,
            )
            told[selection.status] += 1
        drawn = (await session.execute(select(func.count(Selection.id)))).scalar_one()
        if drawn:
            others = (
                (
                    await session.execute(
                        select(Invitation)
                        .outerjoin(Selection, Selection.participant_id == Invitation.participant_id)
                        .where(
                            Invitation.status == REGISTERED,
                            Invitation.outcome_sent_at.is_(None),
                            Selection.id.is_(None),
                        )
                        .with_for_update(of=Invitation)
                    )
                )
                .scalars()
                .all()
            )
            for invitation in others:
                invitation.outcome_sent_at = now
                participant = await service.lock_participant(session, invitation.participant_id)
                await service.start_flow(
                    session, relay, participant, "confirmation", step="thanks", now=now
                )
                told["not selected"] += 1
            if others:
                await audit.append(session, "selection.thanked", {"people": len(others)}, at=now)
    return told


async def expire_selections(session: AsyncSession, now: datetime) -> int:
    """The selected who did not answer by their deadline lose their place (the draw
    engineer's reserve promotion then fills it)."""
    late = (
        await session.execute(
            select(Selection.id, Selection.participant_id).where(
                Selection.status == SELECTED,
                Selection.confirm_by < now,
                Selection.responded_at.is_(None),
            )
        )
    ).all()
    if late:
        await session.execute(
            update(Selection)
            .where(Selection.id.in_([i for i, _ in late]))
            .values(status=DECLINED, reason="no_reply")
        )
        await audit.append_many(session, [("selection.expired", {}, pid) for _, pid in late], now)
    return len(late)


# -------------------------------------------------------------------------- status


@dataclass
class Funnel:
    pool: int
    pool_by_reach: Counter
    invitations: Counter  # status -> count
    invitations_by_channel: Counter
    consents: int
    selections: Counter
    not_invited: int

    @property
    def invited(self) -> int:
        return sum(self.invitations.values())


async def funnel(session: AsyncSession) -> Funnel:
    pool = (await session.execute(select(func.count(PoolEntry.id)))).scalar_one()
    with_phone = (
        await session.execute(
            select(func.count(func.distinct(Contact.participant_id)))
            .join(PoolEntry, PoolEntry.participant_id == Contact.participant_id)
            .where(Contact.channel == "sms")
        )
    ).scalar_one()
    with_handle = (
        await session.execute(
            select(func.count(PoolEntry.id)).where(PoolEntry.telegram_handle.is_not(None))
        )
    ).scalar_one()
    statuses = Counter(
        {
            s: n
            for s, n in await session.execute(
                select(Invitation.status, func.count()).group_by(Invitation.status)
            )
        }
    )
    channels = Counter(
        {
            c: n
            for c, n in await session.execute(
                select(Invitation.channel, func.count()).group_by(Invitation.channel)
            )
        }
    )
    consents = (
        await session.execute(select(func.count(Consent.id)).where(Consent.withdrawn_at.is_(None)))
    ).scalar_one()
    selections = Counter(
        {
            s: n
            for s, n in await session.execute(
                select(Selection.status, func.count()).group_by(Selection.status)
            )
        }
    )
    not_invited = (
        await session.execute(
            select(func.count(PoolEntry.id))
            .outerjoin(Invitation, Invitation.participant_id == PoolEntry.participant_id)
            .where(Invitation.id.is_(None))
        )
    ).scalar_one()
    return Funnel(
        pool,
        Counter({"phone": with_phone, "telegram handle": with_handle}),
        statuses,
        channels,
        consents,
        selections,
        not_invited,
    )


NO_VALUE = "(no answer)"


@dataclass
class CategoryFunnel:
    """One category of the draw: how many people are registered, selected (holding a
    place: not answered yet, or confirmed) and confirmed, per value."""

    category: str
    values: list[str]  # the assembly's order, then any other value met, NO_VALUE last
    registered: Counter
    selected: Counter
    confirmed: Counter


def funnel_categories(assembly: Assembly) -> dict[str, list[str]]:
    """The categories the status shows, with their values in the assembly's order: the
    quota categories of [selection], else every registration question."""
    if assembly.selection is not None and assembly.selection.quotas:
        return {category: list(values) for category, values in assembly.selection.quotas.items()}
    return {q.id: [o.key for o in q.options] for q in assembly.questions}


async def funnel_by_category(session: AsyncSession, assembly: Assembly) -> list[CategoryFunnel]:
    """The funnel per category value. A person's value is their registration answer, else
    what the pool file said; people withdrawn or erased count nowhere."""
    categories = funnel_categories(assembly)
    people = {
        pid: dict(attributes or {})
        for pid, attributes in await session.execute(
            select(PoolEntry.participant_id, PoolEntry.attributes)
            .join(Invitation, Invitation.participant_id == PoolEntry.participant_id)
            .where(Invitation.status == REGISTERED)
        )
    }
    for pid, question, answer in await session.execute(
        select(
            RegistrationAnswer.participant_id,
            RegistrationAnswer.question_id,
            RegistrationAnswer.answer,
        )
        .join(Invitation, Invitation.participant_id == RegistrationAnswer.participant_id)
        .where(Invitation.status == REGISTERED)
    ):
        people.setdefault(pid, {})[question] = answer
    drawn = dict(
        (
            await session.execute(
                select(Selection.participant_id, Selection.status).where(
                    Selection.status.in_((SELECTED, CONFIRMED))
                )
            )
        ).all()
    )
    result = []
    for category, values in categories.items():
        counts = CategoryFunnel(category, list(values), Counter(), Counter(), Counter())
        for pid, features in people.items():
            value = str(features.get(category) or NO_VALUE)
            counts.registered[value] += 1
            if pid in drawn:
                counts.selected[value] += 1
                if drawn[pid] == CONFIRMED:
                    counts.confirmed[value] += 1
        others = sorted(v for v in counts.registered if v not in values and v != NO_VALUE)
        counts.values += others + ([NO_VALUE] if NO_VALUE in counts.registered else [])
        result.append(counts)
    return result


__all__ = [
    "INVITATION_STATUSES",
    "SELECTION_STATUSES",
    "CategoryFunnel",
    "Funnel",
    "InvitePlan",
    "InviteResult",
    "RecruitmentError",
    "due_invitation_reminders",
    "funnel",
    "funnel_by_category",
    "import_pool",
    "lapse_invitations",
    "notify_draw_outcome",
    "parse_pool",
    "plan_invitations",
    "send_invitation_reminders",
    "send_invitations",
]


# ------------------------------------------------------------ in the running service

TICK_SECONDS = 600


async def recruitment_tick(relay: Relay, now: datetime | None = None) -> dict[str, int]:
    """The timed work of recruitment: due reminders, lapsed invitations, expired places.
    The service runs it every TICK_SECONDS; a scheduler may call it instead."""
    now = now or utcnow()
    reminded = await send_invitation_reminders(relay, now)
    async with relay.sessions.begin() as session:
        lapsed = await lapse_invitations(session, now)
        expired = await expire_selections(session, now)
    return {"reminded": reminded, "lapsed": lapsed, "expired": expired}


def register(relay: Relay) -> None:
    """Join the conversations: invitation links first, then facts, then what events mean."""
    hooks = relay.hooks
    hooks.before_inbound(bind_invitation_link)
    if relay.assembly is not None:

        def zone() -> str:  # the calendar's, which may be reloaded while the service runs
            return relay.calendar.schedule.timezone if relay.calendar is not None else "UTC"

        hooks.provide_facts(partial(recruitment_facts, relay.assembly, zone))
    hooks.on_event(events.INVITATION_ACCEPTED, _accepted)
    hooks.on_event(events.INVITATION_DECLINED, _declined)
    hooks.on_event(events.CONSENT_REFUSED, _consent_refused)
    hooks.on_event(events.CONSENT_GIVEN, _consent_given)
    hooks.on_event(events.REGISTRATION_COMPLETED, _registered)
    hooks.on_event(events.WITHDREW, _withdrew)
    hooks.on_event(events.OPTED_OUT, _withdrew)
    hooks.on_event(events.SELECTION_CONFIRMED, _confirmed)
    hooks.on_event(events.SELECTION_DECLINED, _selection_declined)


def install(app: web.Application, relay: Relay, dispatch: bool) -> None:
    """Reminders and lapsing on a timer, while the service dispatches."""
    if relay.assembly is None or not dispatch:
        return

    async def tick() -> None:
        done = await recruitment_tick(relay)
        if done["reminded"]:
            relay.outbox_signal.set()
        if any(done.values()):
            log.info("recruitment: %s", done)

    timers.add(app, "recruitment: reminders and lapsing", TICK_SECONDS, tick)
