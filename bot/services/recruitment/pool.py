"""The recruitment pool: the CSV read and checked, duplicates merged, imported in chunks."""

from __future__ import annotations

import csv
import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.addresses import BadAddress, normalise_phone
from bot.services.recruitment.common import RecruitmentError, check_one_assembly
from flows.assembly import Assembly
from flows.model import State
from store import audit
from store.models import (
    Contact,
    Participant,
    new_participant_id,
    utcnow,
)
from store.personal_data import OptOutMark, opt_out_digest
from store.recruitment import (
    PoolEntry,
)

log = logging.getLogger(__name__)


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
    key: bytes | None = None,
    new_id: Callable[[], str] = new_participant_id,
) -> ImportResult:
    """Write checked rows in one transaction (all or nothing). A person already in the
    pool (same phone, handle or id) is updated, so importing a file twice changes nothing.
    With the server `key`, a number that opted out before its data was erased comes in
    opted out: it is never invited. `new_id` makes the new people's pseudonyms (a rehearsal
    passes a seeded one, so that the same seed draws the same people)."""
    now = now or utcnow()
    result = ImportResult()
    async with sessions.begin() as session:
        await check_one_assembly(session, assembly)
        for start in range(0, len(rows), chunk):
            part = rows[start : start + chunk]
            created, updated = await _import_chunk(session, assembly, part, now, key, new_id)
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
    session: AsyncSession,
    assembly: Assembly,
    rows: list[PoolRow],
    now: datetime,
    key: bytes | None,
    new_id: Callable[[], str],
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
            pid = new_id()
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
        await _keep_stops(session, new_contacts, key, now)
        await conn.execute(Contact.__table__.insert(), new_contacts)
    return len(new_participants), updated


async def _keep_stops(
    session: AsyncSession, contacts: list[dict[str, Any]], key: bytes | None, now: datetime
) -> None:
    """A number that opted out and was then erased comes back opted out."""
    for contact in contacts:
        contact.setdefault("opted_out_at", None)  # one shape for the bulk insert
    if key is None:
        return
    digests = {opt_out_digest(key, "sms", c["address"]): c for c in contacts}
    marked = await session.execute(
        select(OptOutMark.digest).where(OptOutMark.digest.in_(list(digests)))
    )
    for digest in marked.scalars():
        digests[digest]["opted_out_at"] = now


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
