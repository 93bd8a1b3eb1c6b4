"""The application layer: one inbound message or one flow start is one transaction.

The participant's new state, the messages it causes (outbox rows) and the audit events
commit together or not at all; the dispatcher sends the rows afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.metrics import MESSAGES_IN
from bot.relay import Relay
from bot.services.conflicts import retry_conflicts
from bot.services.outgoing import enqueue
from bot.services.people import PERSON_LOOKUP, find_or_create_contact, preferred_contact
from bot.services.unhandled import queue
from flows.facts import Facts
from flows.i18n import shipped_languages
from flows.model import Context, Inbound, State, Turn
from store import audit
from store.models import Contact, InboundMessage, Participant, utcnow

log = logging.getLogger(__name__)


# Where providers find the contact a turn came in on: rights that belong to an address and
# not to a person (an organiser's) are read from it, never from the participant's others.
TURN_CONTACT = "turn_contact"


async def facts_for(
    session: AsyncSession, relay: Relay, participant: Participant, contact: Contact | None = None
) -> Facts:
    facts: dict[str, Any] = {}
    session.info[TURN_CONTACT] = contact
    try:
        for provider in relay.hooks.facts:
            facts.update(await provider(session, participant) or {})
    finally:
        session.info.pop(TURN_CONTACT, None)
    return Facts(**facts)  # a field no flow declares is an error here


INBOUND = InboundMessage.__table__
CONTACTS = Contact.__table__


def _record(insert: Callable[..., Any]) -> Any:
    """Insert-or-nothing on (channel, provider_id), filed under the address's contact when
    it has one; returns the new row's id and contact id, or nothing for a message seen
    before. Built once per dialect: a turn only binds its values."""
    filed_under = (
        select(CONTACTS.c.id)
        .where(
            CONTACTS.c.channel == bindparam("channel", type_=CONTACTS.c.channel.type),
            CONTACTS.c.address == bindparam("address", type_=CONTACTS.c.address.type),
        )
        .scalar_subquery()
    )
    values = {
        name: bindparam(name, type_=INBOUND.c[name].type)
        for name in ("channel", "provider_id", "text", "button", "media", "received_at")
    }
    return (
        insert(INBOUND)
        .values(**values, contact_id=filed_under)
        .on_conflict_do_nothing(index_elements=["channel", "provider_id"])
        .returning(INBOUND.c.id, INBOUND.c.contact_id)
    )


RECORD = {"postgresql": _record(pg_insert), "sqlite": _record(sqlite_insert)}
FILE_UNDER = (
    INBOUND.update()
    .where(INBOUND.c.id == bindparam("record_id"))
    .values(contact_id=bindparam("contact_id"))
)


@dataclass
class Received:
    duplicate: bool
    participant_id: str | None = None
    queued: int = 0
    # Stored, its turn to come later: it failed, or waits behind an earlier one that did.
    kept: bool = False


MAX_BUTTON = 64  # the inbound table's column, and Telegram's own limit on callback data


def storable(text: str) -> str:
    """What a person wrote, as every database can store it: a NUL (PostgreSQL refuses it)
    and a lone surrogate (no database can encode it) become U+FFFD; the rest is untouched.
    A surrogate pair that arrives as two code points is joined into its character."""
    if text.isascii():
        return text.replace("\x00", "\ufffd")
    joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return joined.replace("\x00", "\ufffd")


MAX_MEDIA = 16  # the inbound table's column: a kind's name, never the file


def media_kind(media: str | None) -> str | None:
    """An attachment's kind as it is stored and handled."""
    return media[:MAX_MEDIA] if media else None


def cleaned(text: str | None, button: str | None) -> tuple[str, str | None]:
    """A message's text and button as they are stored and handled."""
    return storable(text or ""), storable(button)[:MAX_BUTTON] if button is not None else None


@dataclass(frozen=True)
class Incoming:
    """One inbound message as a channel gave it, cleaned once as it is stored and handled:
    what the webhook's batch, the one-message path and the keeping of a failed turn take."""

    channel: str
    address: str
    provider_id: str
    text: str
    button: str | None
    language_hint: str | None
    now: datetime
    media: str | None  # the kind of attachment, if any

    @classmethod
    def of(
        cls,
        *,
        channel: str,
        address: str,
        provider_id: str,
        text: str = "",
        button: str | None = None,
        language_hint: str | None = None,
        now: datetime | None = None,
        media: str | None = None,
    ) -> Incoming:
        text, button = cleaned(text, button)
        return cls(
            channel,
            address,
            provider_id,
            text,
            button,
            language_hint,
            now or utcnow(),
            media_kind(media),
        )


def best_language(hint: str | None, default: str) -> str:
    shipped = shipped_languages()
    if hint:
        code = hint.replace("_", "-").split("-")[0].lower()
        if code in shipped:
            return code
    return default if default in shipped else shipped[0]


async def receive(relay: Relay, **message: Any) -> Received:
    """Store an inbound message once and run it through the conversation engine
    (`message`: the fields `Incoming.of` takes)."""
    incoming = Incoming.of(**message)

    async def once() -> Received:
        async with relay.write_turn():
            return await _receive_once(relay, incoming)

    return await retry_conflicts(once)


async def store_message(session: AsyncSession, m: Incoming) -> Any:
    """Insert-or-nothing on the idempotency key: the stored row's (id, contact id), or None
    for a message seen before (or being taken by a concurrent transaction, which this one
    waits for)."""
    values = {
        "channel": m.channel,
        "address": m.address,
        "provider_id": m.provider_id,
        "text": m.text,
        "button": m.button,
        "media": m.media,
        "received_at": m.now,
    }
    return (await session.execute(RECORD[session.get_bind().dialect.name], values)).first()


async def _receive_once(relay: Relay, m: Incoming) -> Received:
    async with relay.sessions.begin() as session:
        record = await store_message(session, m)
        if record is None:
            MESSAGES_IN.labels(m.channel, "duplicate").inc()
            return Received(duplicate=True)
        if await queue.waiting(session, {(m.channel, m.address)}):
            # An earlier message of theirs is still to be handled: this one waits behind it.
            row = queue.row(
                *record,
                channel=m.channel,
                address=m.address,
                language_hint=m.language_hint,
                now=m.now,
            )
            await queue.hold(session, [row])
            MESSAGES_IN.labels(m.channel, "held").inc()
            return Received(duplicate=False, kept=True)
        received = await handle_stored(session, relay, tuple(record), m)
    MESSAGES_IN.labels(m.channel, "handled").inc()
    if received.queued:
        relay.outbox_signal.set()
    return received


async def handle_stored(
    session: AsyncSession, relay: Relay, record: tuple[int, int | None], m: Incoming
) -> Received:
    """One stored inbound message's turn, in the caller's transaction: the inbound hooks,
    the person found (or made) and locked, the engine, the new state, replies and events,
    then the turn hooks. `record` is the stored row's id and the contact it is filed under."""
    settings = relay.settings
    record_id, filed_under = record
    channel, text, now = m.channel, m.text, m.now
    language = best_language(m.language_hint, settings.default_language)
    for hook in relay.hooks.inbound:
        await hook(
            session,
            record_id=record_id,
            channel=channel,
            address=m.address,
            text=text,
            language=language,
            now=now,
        )
    # Locked, and read once the lock is held: a message from the same person that held
    # it may have moved the contact on (its next outbox seq) while this one waited.
    session.info[PERSON_LOOKUP] = relay.person_lookup
    contact = await find_or_create_contact(session, channel, m.address, language)
    participant = await session.get(Participant, contact.participant_id)
    # What the hooks changed is written (the lookup flushed it); a new person's audit
    # event may wait for the turn's own, to be inserted with them in one statement.
    with session.no_autoflush:
        if contact.id != filed_under:  # a new person's, or none was there at the insert
            await session.execute(FILE_UNDER, {"record_id": record_id, "contact_id": contact.id})
        facts = await facts_for(session, relay, participant, contact)
    state = State.from_json(participant.state, language=participant.language)
    ctx = Context(now=now, participant_id=participant.id, channel=channel, facts=facts)
    inbound = Inbound(channel=channel, text=text, button=m.button, media=m.media)
    turn = relay.engine.handle(state, inbound, ctx)
    queued = await apply_turn(session, relay, participant, contact, turn, now)
    for hook in relay.hooks.turns:
        queued += await hook(
            session,
            settings,
            participant=participant,
            contact=contact,
            text=text,
            turn=turn,
            now=now,
        )
    return Received(duplicate=False, participant_id=participant.id, queued=queued)


async def start_flow(
    session: AsyncSession,
    relay: Relay,
    participant: Participant,
    flow: str,
    *,
    step: str | None = None,
    contact: Contact | None = None,
    now: datetime | None = None,
    not_before: datetime | None = None,
) -> int:
    """Begin a flow for a participant inside the caller's transaction (invitations, draws);
    its messages wait until `not_before` if given (the end of quiet hours, say)."""
    now = now or utcnow()
    contact = contact or await preferred_contact(session, participant)
    if contact is None:
        return 0
    state = State.from_json(participant.state, language=participant.language)
    ctx = Context(
        now=now,
        participant_id=participant.id,
        channel=contact.channel,
        facts=await facts_for(session, relay, participant, contact),
    )
    turn = relay.engine.start(state, flow, ctx, step)
    return await apply_turn(session, relay, participant, contact, turn, now, not_before)


async def apply_turn(
    session: AsyncSession,
    relay: Relay,
    participant: Participant,
    contact: Contact,
    turn: Turn,
    now: datetime,
    not_before: datetime | None = None,
) -> int:
    """Save the new state, queue the messages and append the events of one turn."""
    participant.state = turn.state.to_json()
    participant.language = turn.state.language
    participant.opted_out = turn.state.opted_out
    participant.updated_at = now
    for event in turn.events:
        await audit.append(session, event.kind, event.data, participant_id=participant.id, at=now)
        for handler in relay.hooks.handlers(event.kind):
            await handler(session, participant, event, now)
    return await enqueue(
        session,
        relay.settings,
        participant,
        contact,
        turn.outbound,
        prompt_id=turn.state.prompt_id,
        now=now,
        not_before=not_before,
    )
