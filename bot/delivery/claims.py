"""The claim path: picking due rows, leasing them, and keeping each contact's order.

A claim marks rows "sending" under a lease (`lease_until`, `lease_owner`) in one short
transaction, with `FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite serialises writers with
BEGIN IMMEDIATE), so several dispatchers on one database never send a row twice. A row
whose lease ran out (its dispatcher died mid-send) is claimed again. A row is claimable
only while no earlier row of its contact is queued or sending: messages to one contact
leave in `seq` order. A row whose lease ran out `MAX_FAULTS` times in all (with the
attempts that failed before an outcome: bot/delivery/retry.py) is failed by the claim
itself instead: whatever keeps stopping it, even writing its outcome, it is not sent again.
Under a per-chat limit, whoever records a send also claims that contact's next message in
the same transaction (`claim_next`), so a busy chat never waits for anyone's next batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    case,
    literal,
    literal_column,
    null,
    select,
    union_all,
    update,
)

from bot.channels.transport import Outgoing
from bot.delivery.retry import MAX_FAULTS
from bot.services import invite_codes
from store.models import (
    PENDING_STATUSES,
    Contact,
    OutboxMessage,
    OutboxStatus,
    Participant,
    UTCDateTime,
)

log = logging.getLogger(__name__)
outbox = OutboxMessage.__table__
ABANDONED = (
    f"gave up after {MAX_FAULTS} attempts that failed before an outcome: "
    "the last one's lease ran out"
)
# What a claim reads back: the message and its schedule (fewer columns, less to convert).
CLAIMED_COLUMNS = (
    "id",
    "participant_id",
    "contact_id",
    "seq",
    "channel",
    "address",
    "text",
    "buttons",
    "markdown",
    "compliance",
    "kind",
    "broadcast_id",
    "part",
    "parts",
    "segments",
    "attempts",
    "faults",
    "next_attempt_at",
    "created_at",
    "not_before",
    "expires_at",
)


@dataclass(slots=True)
class Claimed:
    """A snapshot of one claimed row and the facts about its recipient checked before send."""

    id: int
    participant_id: str
    contact_id: int
    seq: int
    channel: str
    address: str
    text: str
    buttons: list[dict[str, str]] | None
    markdown: bool
    compliance: bool
    kind: str
    broadcast_id: int | None
    part: int
    parts: int
    segments: int
    attempts: int
    faults: int  # earlier attempts that ended with no outcome (this one's lease included)
    next_attempt_at: datetime
    created_at: datetime
    not_before: datetime  # when it first became due: retries are counted from here
    expires_at: datetime | None
    language: str
    participant_opted_out: bool
    contact_opted_out: bool
    contact_unreachable: bool
    # When the contact's previous message was sent (read only under a per-chat limit).
    previous_sent_at: datetime | None = None

    def outgoing(self, invite_key: bytes) -> Outgoing:
        return Outgoing(
            id=self.id,
            channel=self.channel,
            address=self.address,
            text=invite_codes.reveal(self.text, self.kind, invite_key),
            buttons=self.buttons,
            markdown=self.markdown,
            part=self.part,
            parts=self.parts,
            kind=self.kind,
        )


def _sql(value: str) -> Any:
    """A string written into the SQL itself, not bound."""
    return literal_column(f"'{value}'")


def pending(table: Any) -> Any:
    """`status IN ('queued', 'sending')`, as the partial indexes spell it (PENDING_SQL)."""
    return table.c.status.in_([_sql(status) for status in PENDING_STATUSES])


def _candidates() -> tuple[Any, Any, Any, Any, Any]:
    """What both claims share: their parameters, the candidate rows, and whether an earlier
    row of a candidate's contact is still pending (one probe of ix_outbox_pending_contact)."""
    candidate = outbox.alias("candidate")
    earlier = outbox.alias("earlier")
    blocked = (
        select(earlier.c.id)
        .where(
            pending(earlier),
            earlier.c.contact_id == candidate.c.contact_id,
            earlier.c.seq < candidate.c.seq,
            # A message held for later (the end of quiet hours) does not hold up an answer
            # meant for now; messages meant for the same moment keep their order.
            earlier.c.not_before <= candidate.c.not_before,
        )
        .exists()
    )
    now = bindparam("now", type_=UTCDateTime())
    return now, bindparam("limit"), bindparam("channels", expanding=True), candidate, blocked


class Claims:
    """Leases due rows to one dispatcher (`owner`), one UPDATE ... RETURNING a claim.

    `follow` reads, with each row, when its contact's previous message went: a per-chat
    limit then holds whichever instance sent it.
    """

    def __init__(
        self,
        *,
        owner: str,
        lease: timedelta,
        clock: Callable[[], datetime],
        postgres: bool,
        follow: bool,
    ):
        self.owner = owner
        self.lease = lease
        self.clock = clock
        self.postgres = postgres
        self.follow = follow
        # Channels of the rows the claims failed (ABANDONED), until the dispatcher takes them.
        self.abandoned: list[str] = []
        self._statement = self._build_statement(self._picked())
        self._next_statement = self._build_statement(self._next_of())

    def claim_in(self, connection: Connection, limit: int, channels: list[str]) -> list[Claimed]:
        """One UPDATE ... RETURNING: picks, leases and reads the rows in a single round trip."""
        return self._claim(connection, self._statement, limit=limit, channels=channels)

    def claim_next(
        self, connection: Connection, contacts: list[int], channels: list[str]
    ) -> list[Claimed]:
        """The next message of each of these contacts, if due: claimed by whoever recorded
        the previous one's outcome, in that same transaction, rather than waiting for any
        instance's next batch (a busy chat then gets its whole per-chat rate)."""
        if not contacts:
            return []
        return self._claim(
            connection,
            self._next_statement,
            limit=len(contacts),
            channels=channels,
            contacts=contacts,
        )

    def _claim(self, connection: Connection, statement: Any, **params: Any) -> list[Claimed]:
        now = self.clock()
        result = connection.execute(
            statement,
            {"now": now, "lease_until": now + self.lease, "owner": self.owner, **params},
        )
        rows = []
        for status, *row in result.all():
            if status == OutboxStatus.SENDING:
                rows.append(self._snapshot(row))
            else:  # only the id: the rest may be personal
                log.warning("gave up on outbox row %d (%s): %s", row[0], row[4], ABANDONED)
                self.abandoned.append(row[4])
        return sorted(rows, key=lambda row: (row.contact_id, row.seq))

    def _snapshot(self, row: Any) -> Claimed:
        # Positional: the RETURNING list is the status, CLAIMED_COLUMNS, then the
        # recipient's facts.
        previous = None
        if self.follow:
            *row, previous = row
        *columns, language, participant_out, contact_out, unreachable = row
        return Claimed(
            *columns,
            language,
            bool(participant_out),
            contact_out is not None,
            unreachable is not None,
            previous,
        )

    def _build_statement(self, picked: Any) -> Any:
        """The claim, built once: SQLAlchemy then reuses its compiled form on every call.

        SET reads the row as it was: "sending" there means its lease ran out, an attempt
        that ended with no outcome."""
        reclaimed = outbox.c.status == _sql(OutboxStatus.SENDING)
        abandoned = and_(reclaimed, outbox.c.faults + 1 >= MAX_FAULTS)
        return (
            update(outbox)
            .where(outbox.c.id.in_(picked))
            .values(
                status=case(
                    (abandoned, _sql(OutboxStatus.FAILED)), else_=_sql(OutboxStatus.SENDING)
                ),
                attempts=outbox.c.attempts + case((abandoned, 0), else_=1),
                faults=outbox.c.faults + case((reclaimed, 1), else_=0),
                lease_until=case(
                    (abandoned, null()), else_=bindparam("lease_until", type_=UTCDateTime())
                ),
                lease_owner=case((abandoned, null()), else_=bindparam("owner")),
                error=case((abandoned, literal(ABANDONED)), else_=outbox.c.error),
            )
            .returning(
                outbox.c.status,
                *(outbox.c[name] for name in CLAIMED_COLUMNS),
                *self._recipient_facts(),
            )
        )

    def _picked(self) -> Any:
        """The ids to lease.

        Two scans, each able to walk ix_outbox_due in order and stop at the limit: leases
        that ran out (rare), then queued rows by due time. A row is picked only while no
        earlier row of its contact is queued or sending (per-contact order), which one probe
        of ix_outbox_pending_contact tells. Statuses are written out, not bound, so that
        both databases see the partial indexes' own condition and use them. On PostgreSQL
        each scan locks what it picks and skips rows another dispatcher holds, in a CTE that
        runs once, so two dispatchers never lease the same row.
        """
        now, limit, channels, candidate, blocked = _candidates()
        expired_lease = (
            (candidate.c.status == _sql(OutboxStatus.SENDING), candidate.c.lease_until < now),
            candidate.c.lease_until,
        )
        due = (
            (
                candidate.c.status == _sql(OutboxStatus.QUEUED),
                candidate.c.next_attempt_at <= now,
                candidate.c.not_before <= now,
            ),
            candidate.c.next_attempt_at,
        )
        scans = []
        for where, order in (expired_lease, due):
            scan = (
                select(candidate.c.id)
                .where(pending(candidate), *where, candidate.c.channel.in_(channels), ~blocked)
                .order_by(order)
                .limit(limit)
            )
            if self.postgres:
                scan = scan.with_for_update(skip_locked=True)
            scans.append(select(scan.subquery().c.id))
        both = union_all(*scans).subquery()
        picked = select(both.c.id).limit(limit)
        if self.postgres:
            return select(picked.cte("picked").prefix_with("MATERIALIZED").c.id)
        return select(picked.subquery().c.id)

    def _next_of(self) -> Any:
        """The ids of the given contacts' next messages, when due: each contact's queued
        rows are found through ix_outbox_pending_contact, and only the first can be free of
        an earlier pending one. Locked and skipped as `_picked` does."""
        now, limit, channels, candidate, blocked = _candidates()
        scan = (
            select(candidate.c.id)
            .where(
                pending(candidate),
                candidate.c.contact_id.in_(bindparam("contacts", expanding=True)),
                candidate.c.status == _sql(OutboxStatus.QUEUED),
                candidate.c.next_attempt_at <= now,
                candidate.c.not_before <= now,
                candidate.c.channel.in_(channels),
                ~blocked,
            )
            .limit(limit)
        )
        if self.postgres:
            scan = scan.with_for_update(skip_locked=True)
            return select(scan.cte("picked").prefix_with("MATERIALIZED").c.id)
        return select(scan.subquery().c.id)

    def _recipient_facts(self) -> list[Any]:
        """The recipient's language, opt-outs and reachability (and, when following a
        per-chat limit, when the contact's previous message went)."""

        # Spelt out: SQLite's RETURNING drops table names, and a bare "id" would be ambiguous.
        # The CAST gives the key back the type SQLite's RETURNING loses, so the primary key
        # index is searched instead of the whole table being scanned for every row.
        def recipient(table: str, column: str, key: str, key_type: str) -> Any:
            return literal_column(
                f"(SELECT {column} FROM {table} AS recipient"
                f" WHERE recipient.id = CAST(outbox.{key} AS {key_type}))"
            ).label(column)

        person, contact = Participant.__tablename__, Contact.__tablename__
        facts = [
            recipient(person, "language", "participant_id", "TEXT"),
            recipient(person, "opted_out", "participant_id", "TEXT").label("p_out"),
            recipient(contact, "opted_out_at", "contact_id", "BIGINT"),
            recipient(contact, "unreachable_at", "contact_id", "BIGINT"),
        ]
        if self.follow:
            # One probe of uq_outbox_contact_seq.
            facts.append(
                literal_column(
                    "(SELECT previous.sent_at FROM outbox AS previous"
                    " WHERE previous.contact_id = outbox.contact_id AND previous.seq < outbox.seq"
                    " ORDER BY previous.seq DESC LIMIT 1)",
                    type_=UTCDateTime(),
                ).label("previous")
            )
        return facts
