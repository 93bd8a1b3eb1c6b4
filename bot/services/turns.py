"""The application layer: one inbound message or one flow start is one transaction.

The participant's new state, the messages it causes (outbox rows) and the audit events
commit together or not at all; the dispatcher sends the rows afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from bot.addresses import can_receive_sms
from bot.channels.render import render
from bot.metrics import MESSAGES_IN
from bot.relay import Relay
from bot.settings import Settings
from flows.facts import Facts
from flows.i18n import shipped_languages
from flows.model import Context, Inbound, Outbound, State, Turn
from store import audit, contacts, outbox
from store.models import Contact, InboundMessage, OutboxStatus, Participant, utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")

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
        for name in ("channel", "provider_id", "text", "button", "received_at")
    }
    return (
        insert(INBOUND)
        .values(**values, contact_id=filed_under)
        .on_conflict_do_nothing(index_elements=["channel", "provider_id"])
        .returning(INBOUND.c.id, INBOUND.c.contact_id)
    )


_RECORD = {"postgresql": _record(pg_insert), "sqlite": _record(sqlite_insert)}
_FILE_UNDER = (
    INBOUND.update()
    .where(INBOUND.c.id == bindparam("record_id"))
    .values(contact_id=bindparam("contact_id"))
)


NO_SMS_REPLY = "the sender is a short code or name: it cannot receive SMS"


@dataclass
class Received:
    duplicate: bool
    participant_id: str | None = None
    queued: int = 0


MAX_BUTTON = 64  # the inbound table's column, and Telegram's own limit on callback data


def storable(text: str) -> str:
    """What a person wrote, as every database can store it: a NUL (PostgreSQL refuses it)
    and a lone surrogate (no database can encode it) become U+FFFD; the rest is untouched.
    A surrogate pair that arrives as two code points is joined into its character."""
    if text.isascii():
        return text.replace("\x00", "\ufffd")
    joined = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return joined.replace("\x00", "\ufffd")


def best_language(hint: str | None, default: str) -> str:
    shipped = shipped_languages()
    if hint:
        code = hint.replace("_", "-").split("-")[0].lower()
        if code in shipped:
            return code
    return default if default in shipped else shipped[0]


async def contact_at(session: AsyncSession, channel: str, address: str) -> Contact | None:
    return (
        await session.execute(
            select(Contact).where(Contact.channel == channel, Contact.address == address)
        )
    ).scalar_one_or_none()


def locking_lookup(columns: dict[str, Any] | None = None) -> Any:
    """The contact at an address with its participant, both locked as an update of the
    contact's next seq would lock it (FOR NO KEY UPDATE: rows that refer to the contact, as
    the inbound message does, hold a key-share lock on it), read as they are once the lock
    is held; with `columns` (`Hooks.person_columns`) read beside them."""
    return (
        select(Contact, Participant, *(c.label(name) for name, c in (columns or {}).items()))
        .join(Participant, Participant.id == Contact.participant_id)
        .where(Contact.channel == bindparam("channel"), Contact.address == bindparam("address"))
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )


_LOCKED_AT = locking_lookup()
# Where an inbound turn puts its lookup (with the hooks' columns) for `locked_contact_at`,
# and where that leaves what the columns read: {"participant_id", "contact_id", name: value}.
PERSON_LOOKUP = "person_lookup"
READ_WITH_PERSON = "read_with_person"


async def locked_contact_at(session: AsyncSession, channel: str, address: str) -> Contact | None:
    """The contact at this address, and its participant (in the session), both locked."""
    lookup = session.info.get(PERSON_LOOKUP, _LOCKED_AT)
    row = (await session.execute(lookup, {"channel": channel, "address": address})).first()
    if row is None:
        return None
    contact, participant, *_ = row
    _hold(contact, participant)
    if lookup is not _LOCKED_AT:
        read = row._asdict()
        read.update(participant_id=participant.id, contact_id=contact.id)
        session.info[READ_WITH_PERSON] = read
    return contact


def read_with_person(session: AsyncSession, participant_id: str, contact_id: int | None) -> dict:
    """What the hooks' person columns read for this participant and contact in this turn;
    empty when they were not read with them (a new person, a flow started elsewhere)."""
    read = session.info.get(READ_WITH_PERSON) or {}
    if read.get("participant_id") != participant_id or read.get("contact_id") != contact_id:
        return {}
    return read


def _hold(contact: Contact, participant: Participant) -> None:
    """The session keeps unchanged objects only while something refers to them: the
    contact does, so `session.get(Participant, ...)` finds the participant without a query."""
    set_committed_value(contact, "participant", participant)


async def find_or_create_contact(
    session: AsyncSession, channel: str, address: str, language: str
) -> Contact:
    """The contact at this address, or a new one with a new participant: insert-or-get, so
    two first messages from one address at once (two instances, say) both go through.
    Either way the contact and its participant are locked and held by the session (a new
    one is this transaction's own until it commits)."""
    contact = await locked_contact_at(session, channel, address)
    if contact is not None:
        return contact
    participant = Participant(language=language, state=State(language=language).to_json())
    session.add(participant)
    await session.flush()
    # A short code or sender name texted us: it can never be answered by SMS.
    silent = channel == "sms" and not can_receive_sms(address)
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    contact = (
        await session.scalars(
            insert(Contact)
            .values(
                participant_id=participant.id,
                channel=channel,
                address=address,
                sms_consent=channel == "sms" and not silent,
                unreachable_at=utcnow() if silent else None,
            )
            .on_conflict_do_nothing(index_elements=["channel", "address"])
            .returning(Contact)
        )
    ).first()
    if contact is None:
        # Another transaction created it and has committed (ours waited for it): use it,
        # or, if it has gone again meanwhile, start over.
        await session.delete(participant)
        return await find_or_create_contact(session, channel, address, language)
    _hold(contact, participant)
    await audit.append(
        session, "participant.created", {"channel": channel}, participant_id=participant.id
    )
    return contact


async def lock_participant(
    session: AsyncSession, participant_id: str, contact: Contact | None = None
) -> Participant:
    """The participant, locked; with `contact`, that contact is read again in the same
    statement, locked as an update of its next seq would (FOR NO KEY UPDATE: rows that
    refer to the contact, as the inbound message now does, hold a key-share lock on it)."""
    if contact is None:
        return (
            await session.execute(
                select(Participant).where(Participant.id == participant_id).with_for_update()
            )
        ).scalar_one()
    return (
        await session.execute(
            select(Participant, Contact)
            .join(Contact, Contact.participant_id == Participant.id)
            .where(Participant.id == participant_id, Contact.id == contact.id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
    ).one()[0]


async def receive(
    relay: Relay,
    *,
    channel: str,
    address: str,
    text: str = "",
    button: str | None = None,
    provider_id: str,
    language_hint: str | None = None,
    now: datetime | None = None,
) -> Received:
    """Store an inbound message once and run it through the conversation engine."""
    now = now or utcnow()
    text = storable(text or "")
    button = storable(button)[:MAX_BUTTON] if button is not None else None

    async def once() -> Received:
        async with relay.write_turn():
            return await _receive_once(
                relay,
                channel=channel,
                address=address,
                text=text,
                button=button,
                provider_id=provider_id,
                language_hint=language_hint,
                now=now,
            )

    return await retry_conflicts(once)


async def _receive_once(
    relay: Relay,
    *,
    channel: str,
    address: str,
    text: str,
    button: str | None,
    provider_id: str,
    language_hint: str | None,
    now: datetime,
) -> Received:
    settings = relay.settings
    async with relay.sessions.begin() as session:
        # Insert-or-nothing on the idempotency key: a message seen before (or being taken
        # by a concurrent transaction, which this one waits for) inserts no row.
        record = (
            await session.execute(
                _RECORD[session.get_bind().dialect.name],
                {
                    "channel": channel,
                    "address": address,
                    "provider_id": provider_id,
                    "text": text,
                    "button": button,
                    "received_at": now,
                },
            )
        ).first()
        if record is None:
            MESSAGES_IN.labels(channel, "duplicate").inc()
            return Received(duplicate=True)
        record_id, filed_under = record
        language = best_language(language_hint, settings.default_language)
        for hook in relay.hooks.inbound:
            await hook(
                session,
                record_id=record_id,
                channel=channel,
                address=address,
                text=text,
                language=language,
                now=now,
            )
        # Locked, and read once the lock is held: a message from the same person that held
        # it may have moved the contact on (its next outbox seq) while this one waited.
        session.info[PERSON_LOOKUP] = relay.person_lookup
        contact = await find_or_create_contact(session, channel, address, language)
        participant = await session.get(Participant, contact.participant_id)
        # What the hooks changed is written (the lookup flushed it); a new person's audit
        # event may wait for the turn's own, to be inserted with them in one statement.
        with session.no_autoflush:
            if contact.id != filed_under:  # a new person's, or none was there at the insert
                await session.execute(
                    _FILE_UNDER, {"record_id": record_id, "contact_id": contact.id}
                )
            facts = await facts_for(session, relay, participant, contact)
        state = State.from_json(participant.state, language=participant.language)
        ctx = Context(now=now, participant_id=participant.id, channel=channel, facts=facts)
        turn = relay.engine.handle(state, Inbound(channel=channel, text=text, button=button), ctx)
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
    MESSAGES_IN.labels(channel, "handled").inc()
    if queued:
        relay.outbox_signal.set()
    return Received(duplicate=False, participant_id=participant.id, queued=queued)


# PostgreSQL's codes for a transaction that lost a race and would pass if run again:
# serialization failure and deadlock (a unique violation is an IntegrityError).
RETRYABLE_SQLSTATES = {"40001", "40P01"}
CONFLICT_RETRIES = 4


# SQLite's "database is busy" and "locked" (extended codes keep the primary one in the low
# byte): a writer that waited out the busy timeout, or whose snapshot went stale.
RETRYABLE_SQLITE_CODES = {5, 6}


def lost_a_race(exc: DBAPIError) -> bool:
    if isinstance(exc, IntegrityError):
        return True
    if getattr(exc.orig, "sqlite_errorcode", 0) & 0xFF in RETRYABLE_SQLITE_CODES:
        return True
    return getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES


async def retry_conflicts(transaction: Callable[[], Awaitable[T]]) -> T:
    """Run `transaction` (which opens and commits its own), again if it lost a race with a
    concurrent one: Twilio never resends an inbound SMS, so a 500 would lose the message.
    A conflict that is not a race comes back every time and is raised after the last try."""
    for attempt in range(CONFLICT_RETRIES):
        try:
            return await transaction()
        except DBAPIError as exc:
            if attempt == CONFLICT_RETRIES - 1 or not lost_a_race(exc):
                raise
            log.info("transaction lost a race (%s); trying again", type(exc.orig).__name__)
            await asyncio.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
    raise AssertionError("unreachable")


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


def enqueuer(settings: Settings) -> Callable[..., Awaitable[int]]:
    """`enqueue` with the settings bound: what the scheduler is given to write its due
    messages (it knows no channel or settings of its own)."""

    async def bound(
        session: AsyncSession,
        participant: Participant,
        contact: Contact,
        messages: Iterable[Outbound],
        **options: Any,
    ) -> int:
        return await enqueue(session, settings, participant, contact, messages, **options)

    return bound


async def enqueue(
    session: AsyncSession,
    settings: Settings,
    participant: Participant,
    contact: Contact,
    messages: Iterable[Outbound],
    *,
    prompt_id: str | None,
    now: datetime,
    not_before: datetime | None = None,
    broadcast_id: int | None = None,
    expires_at: datetime | None = None,
) -> int:
    """Write outbox rows for `messages`, in order, split into channel-sized parts; rows
    with `expires_at` are never sent from that moment on."""
    rows: list[outbox.Message] = []
    count = 0
    for message in messages:
        target = contact
        if message.to_channel and message.to_channel != contact.channel:
            target = await contact_on(session, participant, message.to_channel) or contact
        parts = render(
            message, target.channel, participant.language, prompt_id, settings.sms_max_segments
        )
        # The reply to a sender that cannot receive SMS is a deliberate silence, on record.
        silent = target.channel == "sms" and not can_receive_sms(target.address)
        for number, part in enumerate(parts, start=1):
            rows.append(
                outbox.Message(
                    target,
                    part.text,
                    buttons=part.buttons,
                    markdown=message.markdown,
                    compliance=message.compliance,
                    kind=message.kind,
                    broadcast_id=broadcast_id,
                    part=number,
                    parts=len(parts),
                    segments=part.segments,
                    encoding=part.encoding,
                    not_before=not_before,
                    expires_at=expires_at,
                    **({"status": OutboxStatus.CANCELLED, "error": NO_SMS_REPLY} if silent else {}),
                )
            )
            count += 0 if silent else 1
    await outbox.write(session, rows, now=now)
    return count


async def contact_on(
    session: AsyncSession, participant: Participant, channel: str
) -> Contact | None:
    return await contacts.contact_on(session, participant.id, channel)


async def preferred_contact(session: AsyncSession, participant: Participant) -> Contact | None:
    """Telegram when it still works, else SMS the person agreed to; None if unreachable."""
    return await contacts.preferred_contact(session, participant.id)
