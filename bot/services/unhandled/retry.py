"""Trying kept messages again: the oldest due message of each person, through the same turn
as a webhook's (`turns.handle_stored`), one transaction each.

The row is claimed with FOR UPDATE SKIP LOCKED (PostgreSQL; SQLite has one writer), and
only while no earlier message of the same person is still to be handled, so several
instances never handle one message twice nor a person's two out of order. The turn runs in
a savepoint: when it fails, the claim is still held while the failure is written down (the
next try later, or, after the last, the organisers told with the message's id only, and
an invitation link's code forgotten).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.metrics import INBOUND_UNHANDLED, MESSAGES_IN
from bot.relay import Relay
from bot.services import turns
from bot.services.notices import tell_organisers
from bot.services.recruitment import links
from bot.services.unhandled.timing import gives_up, next_try
from flows.i18n import Translator
from store.models import Contact, InboundMessage, utcnow
from store.unhandled import UnhandledInbound

log = logging.getLogger(__name__)

UNHANDLED = UnhandledInbound.__table__
INBOUND = InboundMessage.__table__
BATCH_LIMIT = 200  # messages tried per run at most: the next run goes on

_earlier = aliased(UnhandledInbound, name="earlier")
CLAIM = (
    select(
        UNHANDLED.c.id,
        UNHANDLED.c.channel,
        UNHANDLED.c.address,
        UNHANDLED.c.language_hint,
        UNHANDLED.c.failures,
        INBOUND.c.provider_id,
        INBOUND.c.text,
        INBOUND.c.button,
        INBOUND.c.media,
        INBOUND.c.contact_id,
    )
    .join(INBOUND, INBOUND.c.id == UNHANDLED.c.id)
    .where(
        UNHANDLED.c.gave_up_at.is_(None),
        UNHANDLED.c.next_at <= bindparam("now"),
        ~select(_earlier.id)
        .where(
            _earlier.channel == UNHANDLED.c.channel,
            _earlier.address == UNHANDLED.c.address,
            _earlier.gave_up_at.is_(None),
            _earlier.id < UNHANDLED.c.id,
        )
        .exists(),
    )
    .order_by(UNHANDLED.c.id)
    .limit(1)
    .with_for_update(skip_locked=True, of=UNHANDLED)
)


@dataclass
class Tried:
    """What one run did: message ids by outcome."""

    handled: list[int]
    failed: list[int]
    gave_up: list[int]


async def retry_due(relay: Relay, *, now: datetime | None = None) -> Tried:
    """Try every message that is due, each person's in order (one handled makes their next
    one due at once); the job the service runs on a timer, and `concorder inbound retry`."""
    tried = Tried([], [], [])
    for _ in range(BATCH_LIMIT):
        outcome = await _try_one(relay, now or utcnow())
        if outcome is None:
            break
        kind, record_id = outcome
        getattr(tried, kind).append(record_id)
    return tried


async def _try_one(relay: Relay, now: datetime) -> tuple[str, int] | None:
    queued = 0
    async with relay.write_turn(), relay.sessions.begin() as session:
        claimed = (await session.execute(CLAIM, {"now": now})).first()
        if claimed is None:
            return None
        try:
            async with session.begin_nested():
                # Handled now, on the person's state as it is now: a ballot closed or a
                # question moved on since it arrived is seen as the turn would see it.
                message = turns.Incoming(
                    claimed.channel,
                    claimed.address,
                    claimed.provider_id,
                    claimed.text,  # stored as cleaned
                    claimed.button,
                    claimed.language_hint,
                    now,
                    claimed.media,
                )
                record = (claimed.id, claimed.contact_id)
                received = await turns.handle_stored(session, relay, record, message)
                await session.execute(delete(UNHANDLED).where(UNHANDLED.c.id == claimed.id))
                if claimed.contact_id is None:
                    await _file_waiting(session, claimed.channel, claimed.address)
            queued = received.queued
            outcome = "handled"
        except Exception as exc:  # noqa: BLE001 -- written down, tried again later
            # What the failed turn left in the session must not reach what follows: rows
            # made by INSERT ... RETURNING stay in the identity map after the savepoint's
            # rollback (SQLite then hands their ids out again), and the hooks' notes.
            session.expunge_all()
            session.info.clear()
            outcome, queued = await _failed(session, relay, claimed, exc, now)
    if queued:
        relay.outbox_signal.set()
    INBOUND_UNHANDLED.labels(outcome).inc()
    if outcome == "handled":
        MESSAGES_IN.labels(claimed.channel, "handled").inc()
    return outcome, claimed.id


async def _file_waiting(session: AsyncSession, channel: str, address: str) -> None:
    """A new person's first message made their contact: their messages waiting behind it
    are filed under it, so that erasing them finds those too."""
    contact_id = (
        select(Contact.id)
        .where(Contact.channel == channel, Contact.address == address)
        .scalar_subquery()
    )
    mine = (
        UNHANDLED.c.channel == channel,
        UNHANDLED.c.address == address,
        UNHANDLED.c.contact_id.is_(None),
    )
    await session.execute(
        INBOUND.update()
        .where(INBOUND.c.id.in_(select(UNHANDLED.c.id).where(*mine)))
        .values(contact_id=contact_id)
    )
    await session.execute(UNHANDLED.update().where(*mine).values(contact_id=contact_id))


async def _failed(
    session: AsyncSession, relay: Relay, claimed: Any, exc: Exception, now: datetime
) -> tuple[str, int]:
    failures = claimed.failures + 1
    values: dict[str, Any] = {"failures": failures, "failure": type(exc).__name__[:64]}
    queued = 0
    if gives_up(failures):
        values["gave_up_at"] = now
        await links.forget_code(session, claimed.id)
        queued = await _tell_organisers(session, relay, claimed.id, failures, now)
        outcome = "gave_up"
    else:
        values["next_at"] = now + next_try(failures)
        outcome = "failed"
    await session.execute(update(UNHANDLED).where(UNHANDLED.c.id == claimed.id).values(**values))
    log.warning(
        "inbound message %d failed again (%d times, %s)%s",
        claimed.id,
        failures,
        type(exc).__name__,
        ": no more tries, the organisers are told" if outcome == "gave_up" else "",
        exc_info=exc,
    )
    return outcome, queued


async def _tell_organisers(
    session: AsyncSession, relay: Relay, record_id: int, failures: int, now: datetime
) -> int:
    """The message's id only: not who sent it, nor what it says."""

    def compose(t: Translator) -> str:
        return t.gettext(
            "Inbound message {id} could not be handled: it failed {tries} times in about an "
            "hour and is no longer tried. `concorder inbound show` lists such messages; "
            "`concorder inbound retry {id}` tries this one again.",
            id=record_id,
            tries=failures,
        )

    try:
        async with session.begin_nested():
            return await tell_organisers(
                session, relay.settings, compose, kind="inbound.unhandled", now=now
            )
    except Exception:  # noqa: BLE001 -- the give-up itself must still be written
        log.exception("the organisers could not be told of inbound message %d", record_id)
        return 0
