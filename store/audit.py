"""The audit trail: an append-only hash chain anyone can recompute.

Each event's hash is sha256 over the previous hash and the event's canonical JSON
(sorted keys, no spaces, UTF-8). Events carry pseudonymous participant ids only.

Like a transparency log, writing and linking are apart: an event is inserted in the
transaction of the change it records, and `sequence` (a background task in the service,
bot/audit_sequencer.py) links committed events into the chain in batches.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from store.models import AuditEvent, AuditHead, utcnow

GENESIS = "0" * 64


def canonical(
    seq: int, at: datetime, kind: str, participant_id: str | None, data: dict[str, Any]
) -> bytes:
    body = {
        "seq": seq,
        "at": at.isoformat(timespec="microseconds"),
        "kind": kind,
        "participant": participant_id,
        "data": data,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def link_hash(prev_hash: str, body: bytes) -> str:
    return hashlib.sha256(prev_hash.encode() + body).hexdigest()


async def append(
    session: AsyncSession,
    kind: str,
    data: dict[str, Any] | None = None,
    *,
    participant_id: str | None = None,
    at: datetime | None = None,
    linked: bool = False,
) -> AuditEvent:
    """Insert one event inside the caller's transaction (it commits with the change),
    unlinked: no shared row is touched, so concurrent transactions do not queue on the
    chain's head. `linked=True` links it (and every committed event before it) at once, so
    its seq is known before commit; that holds the head row until commit, for rare events
    whose seq is recorded elsewhere (a draw)."""
    data = json.loads(json.dumps(data or {}, sort_keys=True))  # what the JSON column returns
    event = AuditEvent(at=at or utcnow(), kind=kind, participant_id=participant_id, data=data)
    session.add(event)  # inserted with the caller's next flush, in the order added
    if linked:
        await session.flush()
        await _link(session, await _locked_head(session), None)
    return event


async def append_many(
    session: AsyncSession,
    events: Iterable[tuple[str, dict[str, Any], str | None]],
    at: datetime,
    moments: Iterable[datetime] | None = None,
) -> None:
    """Insert many unlinked events (kind, data, participant id) in one statement, in order:
    they are linked exactly as if appended one by one. `moments`: each event's own time,
    in the same order, instead of `at` for all."""
    rows = [
        {
            "at": at,
            "kind": kind,
            "participant_id": pid,
            "data": json.loads(json.dumps(data, sort_keys=True)),
        }
        for kind, data, pid in events
    ]
    for row, moment in zip(rows, moments or (), strict=False):
        row["at"] = moment
    if rows:
        await (await session.connection()).execute(AuditEvent.__table__.insert(), rows)


async def sequence(session: AsyncSession, *, limit: int = 5000, wait: bool = True) -> int:
    """Link unlinked events into the chain in the caller's transaction; how many were linked.

    The rule, safe with several instances on one database: link every event the transaction
    can see that has no seq yet, in insertion-id order, after the head row is locked. Ids
    are taken at insert and commit in another order (and rolled-back inserts leave gaps),
    so an event committed after this pass may have a lower id than one linked now: it is
    never skipped, because the next pass selects by "no seq yet", not by "id above the last
    linked". Its place in the chain is then after the events linked before it was visible,
    that is in the order of commits the sequencer sees. The head lock makes passes run one
    at a time (`wait=False`: on PostgreSQL, return 0 at once if another instance holds it).
    """
    head = await _locked_head(session, wait=wait)
    if head is None:
        return 0
    return await _link(session, head, limit)


async def _link(session: AsyncSession, head: AuditHead, limit: int | None) -> int:
    query = (
        select(
            AuditEvent.id,
            AuditEvent.at,
            AuditEvent.kind,
            AuditEvent.participant_id,
            AuditEvent.data,
        )
        .where(AuditEvent.seq.is_(None))
        .order_by(AuditEvent.id)
    )
    rows = (await session.execute(query if limit is None else query.limit(limit))).all()
    if not rows:
        return 0
    seq, prev, links = head.seq, head.hash, []
    for row in rows:
        seq += 1
        digest = link_hash(prev, canonical(seq, row.at, row.kind, row.participant_id, row.data))
        links.append({"b_id": row.id, "b_seq": seq, "b_prev": prev, "b_hash": digest})
        prev = digest
    table = AuditEvent.__table__
    await (await session.connection()).execute(
        table.update()
        .where(table.c.id == bindparam("b_id"))
        .values(seq=bindparam("b_seq"), prev_hash=bindparam("b_prev"), hash=bindparam("b_hash")),
        links,
    )
    head.seq, head.hash = seq, prev
    await session.flush()
    # Events this session holds (an append with linked=True) show their new links.
    by_id = {link["b_id"]: link for link in links}
    for obj in list(session.identity_map.values()):
        if isinstance(obj, AuditEvent) and obj.id in by_id:
            link = by_id[obj.id]
            set_committed_value(obj, "seq", link["b_seq"])
            set_committed_value(obj, "prev_hash", link["b_prev"])
            set_committed_value(obj, "hash", link["b_hash"])
    return len(rows)


async def sequence_all(sessions: async_sessionmaker[AsyncSession] | AsyncEngine) -> int:
    """Link everything committed so far, in transactions of its own; how many were linked."""
    if isinstance(sessions, AsyncEngine):
        sessions = async_sessionmaker(sessions, expire_on_commit=False)
    total = 0
    while True:
        async with sessions.begin() as session:
            linked = await sequence(session)
        total += linked
        if linked == 0:
            return total


async def pending(session: AsyncSession) -> int:
    """Events committed but not linked yet."""
    return (
        await session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.seq.is_(None))
        )
        or 0
    )


async def _locked_head(session: AsyncSession, wait: bool = True) -> AuditHead | None:
    """The head row, locked; created on first use without racing another first link (a
    plain insert would fail one of two transactions that both found no head). With
    `wait=False` on PostgreSQL, None when another transaction holds it."""
    postgres = session.get_bind().dialect.name == "postgresql"
    locked = (
        select(AuditHead)
        .where(AuditHead.id == 1)
        .with_for_update(skip_locked=postgres and not wait)
    )
    head = (await session.execute(locked)).scalar_one_or_none()
    if head is None:
        insert = pg_insert if postgres else sqlite_insert
        created = await session.execute(
            insert(AuditHead)
            .values(id=1, seq=0, hash=GENESIS)
            .on_conflict_do_nothing(index_elements=["id"])
        )
        if created.rowcount == 0 and not wait:
            return None
        head = (await session.execute(locked)).scalar_one_or_none()
    return head


@dataclass
class Verification:
    checked: int
    ok: bool
    first_bad_seq: int | None = None
    reason: str | None = None
    head_hash: str = GENESIS
    pending: int = 0  # committed events not linked yet (not part of what was checked)


async def verify(session: AsyncSession, batch: int = 5000) -> Verification:
    """Recompute the chain from the start; name the first event that does not match.

    A session not in a transaction yet first links everything committed (on a connection
    of its own); otherwise events still waiting are counted in `pending`."""
    if not session.in_transaction() and isinstance(session.bind, AsyncEngine):
        await sequence_all(session.bind)
    result = await _verify(session, batch)
    result.pending = await pending(session)
    return result


async def _verify(session: AsyncSession, batch: int) -> Verification:
    prev, expected_seq, checked, last_seq = GENESIS, 1, 0, 0
    while True:
        rows = (
            (
                await session.execute(
                    select(AuditEvent)
                    .where(AuditEvent.seq > last_seq)
                    .order_by(AuditEvent.seq)
                    .limit(batch)
                )
            )
            .scalars()
            .all()
        )
        if not rows:
            break
        for event in rows:
            if event.seq != expected_seq:
                return Verification(checked, False, expected_seq, "event missing", prev)
            if event.prev_hash != prev:
                return Verification(checked, False, event.seq, "previous hash differs", prev)
            body = canonical(event.seq, event.at, event.kind, event.participant_id, event.data)
            if link_hash(prev, body) != event.hash:
                return Verification(checked, False, event.seq, "content altered", prev)
            prev, last_seq, checked = event.hash, event.seq, checked + 1
            expected_seq = event.seq + 1
        session.expunge_all()
    return Verification(checked, True, head_hash=prev)
