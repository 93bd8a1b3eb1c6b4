"""The one way rows enter the outbox: in order per contact, in bulk, in a known state.

Every row takes its contact's next sequence number (the dispatcher sends a contact's rows
in `seq` order), and the contact's `next_seq` moves past them in the same transaction. The
caller holds the lock that makes those numbers its own: the participant's row for a turn,
the contacts' rows for a broadcast, a chunk's fresh people for invitations.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from store.models import PENDING_SQL, PENDING_STATUSES, Contact, OutboxMessage, OutboxStatus

__all__ = ["PENDING_SQL", "PENDING_STATUSES", "Message", "OutboxStatus", "write"]

OUTBOX = OutboxMessage.__table__
CONTACTS = Contact.__table__
_NEXT_SEQ = (
    CONTACTS.update().where(CONTACTS.c.id == bindparam("b_id")).values(next_seq=bindparam("b_seq"))
)
# The columns `write` gives each row (the rest keep their defaults).
_ROW = (
    "participant_id", "contact_id", "seq", "channel", "address", "text", "buttons", "markdown",
    "compliance", "kind", "broadcast_id", "part", "parts", "segments", "encoding", "status",
    "error", "attempts", "faults", "not_before", "next_attempt_at", "expires_at", "created_at",
)  # fmt: skip


# Up to a few rows to one contact (a turn's replies): on PostgreSQL the contact's next_seq
# moves in the statement that inserts them, one round trip instead of two. Parameters are
# named apart from every column: a name that is a column's would join the UPDATE's SET.
def _inserting_moving_seq(count: int) -> Any:
    rows = [
        {name: bindparam(f"o{n}_{name}", type_=OUTBOX.c[name].type) for name in _ROW}
        for n in range(count)
    ]
    return OUTBOX.insert().values(rows).add_cte(_NEXT_SEQ.cte("moved"))


_MOVING_SEQ = {count: _inserting_moving_seq(count) for count in range(1, 5)}


@dataclass(slots=True)
class Message:
    """One outbox row to write, already rendered (one part of a message).

    `contact` is a Contact or a row with its `id`, `participant_id`, `channel`, `address`
    and `next_seq`; the row goes to that address, after what the contact already has."""

    contact: Any
    text: str
    buttons: list[dict[str, str]] | None = None
    markdown: bool = False
    compliance: bool = False
    kind: str = "reply"
    broadcast_id: int | None = None
    part: int = 1
    parts: int = 1
    segments: int = 1
    encoding: str | None = None
    not_before: datetime | None = None  # default: now
    expires_at: datetime | None = None
    status: OutboxStatus = OutboxStatus.QUEUED
    error: str | None = None
    created_at: datetime | None = None  # default: now


async def write(session: AsyncSession, messages: Iterable[Message], *, now: datetime) -> int:
    """Insert `messages` in the order given (one statement, executed many), each taking its
    contact's next sequence number; then move every touched contact's `next_seq` on, in
    the database and on the Contact objects this session holds. Returns rows written."""
    # Pending ORM changes first: a contact made in this transaction needs its id.
    await session.flush()
    seqs: dict[int, int] = {}
    rows = []
    for m in messages:
        contact = m.contact
        seq = seqs[contact.id] if contact.id in seqs else contact.next_seq
        seqs[contact.id] = seq + 1
        due = m.not_before or now
        rows.append(
            {
                "participant_id": contact.participant_id,
                "contact_id": contact.id,
                "seq": seq,
                "channel": contact.channel,
                "address": contact.address,
                "text": m.text,
                "buttons": m.buttons,
                "markdown": m.markdown,
                "compliance": m.compliance,
                "kind": m.kind,
                "broadcast_id": m.broadcast_id,
                "part": m.part,
                "parts": m.parts,
                "segments": m.segments,
                "encoding": m.encoding,
                "status": str(m.status),
                "error": m.error,
                "attempts": 0,
                "faults": 0,
                "not_before": due,
                "next_attempt_at": due,
                "expires_at": m.expires_at,
                "created_at": m.created_at or now,
            }
        )
    if not rows:
        return 0
    connection = await session.connection()
    if len(seqs) == 1 and len(rows) in _MOVING_SEQ and connection.dialect.name == "postgresql":
        ((cid, seq),) = seqs.items()
        params = {"b_id": cid, "b_seq": seq}
        for n, row in enumerate(rows):
            params.update({f"o{n}_{name}": value for name, value in row.items()})
        await connection.execute(_MOVING_SEQ[len(rows)], params)
    else:
        await connection.execute(OUTBOX.insert(), rows)
        await connection.execute(
            _NEXT_SEQ, [{"b_id": cid, "b_seq": seq} for cid, seq in seqs.items()]
        )
    _keep_loaded(session, seqs)
    return len(rows)


def _keep_loaded(session: AsyncSession, seqs: dict[int, int]) -> None:
    """Contacts this session holds take the numbers written, as if loaded again: the next
    message to them (a reply in the same turn, say) continues the sequence."""
    identities = session.sync_session.identity_map
    for cid, seq in seqs.items():
        contact = identities.get(session.sync_session.identity_key(Contact, cid))
        if contact is not None:
            set_committed_value(contact, "next_seq", seq)
