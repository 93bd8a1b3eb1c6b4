"""The audit trail: an append-only hash chain anyone can recompute.

Each event's hash is sha256 over the previous hash and the event's canonical JSON
(sorted keys, no spaces, UTF-8). Events carry pseudonymous participant ids only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import AuditEvent, AuditHead, utcnow

GENESIS = "0" * 64


def canonical(seq: int, at: datetime, kind: str, participant_id: str | None,
              data: dict[str, Any]) -> bytes:
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


async def append(session: AsyncSession, kind: str, data: dict[str, Any] | None = None, *,
                 participant_id: str | None = None, at: datetime | None = None) -> AuditEvent:
    """Append one event inside the caller's transaction (it commits with the change)."""
    data = json.loads(json.dumps(data or {}, sort_keys=True))  # what the JSON column returns
    at = at or utcnow()
    head = await _locked_head(session)
    seq = head.seq + 1
    digest = link_hash(head.hash, canonical(seq, at, kind, participant_id, data))
    event = AuditEvent(seq=seq, at=at, kind=kind, participant_id=participant_id, data=data,
                       prev_hash=head.hash, hash=digest)
    session.add(event)
    head.seq, head.hash = seq, digest
    await session.flush()
    return event


async def _locked_head(session: AsyncSession) -> AuditHead:
    """The head row, locked; created on first use without racing another first append
    (a plain insert would fail one of two transactions that both found no head)."""
    locked = select(AuditHead).where(AuditHead.id == 1).with_for_update()
    head = (await session.execute(locked)).scalar_one_or_none()
    if head is None:
        dialect = session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        await session.execute(insert(AuditHead).values(id=1, seq=0, hash=GENESIS)
                              .on_conflict_do_nothing(index_elements=["id"]))
        head = (await session.execute(locked)).scalar_one()
    return head


@dataclass
class Verification:
    checked: int
    ok: bool
    first_bad_seq: int | None = None
    reason: str | None = None
    head_hash: str = GENESIS


async def verify(session: AsyncSession, batch: int = 5000) -> Verification:
    """Recompute the chain from the start; name the first event that does not match."""
    prev, expected_seq, checked, last_seq = GENESIS, 1, 0, 0
    while True:
        rows = (
            await session.execute(
                select(AuditEvent).where(AuditEvent.seq > last_seq)
                .order_by(AuditEvent.seq).limit(batch)
            )
        ).scalars().all()
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
