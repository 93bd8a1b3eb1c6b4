"""Many inbound messages in one transaction: the common case of a busy moment.

Each message gets the turn `turns.handle_stored` would give it, in arrival order (two from
one person run one after the other on the updated state); what differs is the number of
statements. The batch's people are found and locked with one query in contact id order (two
instances lock in the same order, so they cannot deadlock on them), the messages stored with
one insert-or-nothing (duplicates insert nothing), new people made with one insert each for
participants and contacts, and the new states, replies and audit events written with one
statement each. A message an inbound hook may act on, or whose turn raises an event that a
hook may handle, runs the one-message path instead, inside the same transaction, after what
the batch wrote (and so does every later message of that person in the batch).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, tuple_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from bot.addresses import can_receive_sms
from bot.relay import Relay
from bot.services.outgoing import outbox_rows
from bot.services.people import READ_WITH_PERSON
from bot.services.turns import (
    FILE_UNDER,
    INBOUND,
    TURN_CONTACT,
    Incoming,
    Received,
    best_language,
    handle_stored,
)
from bot.services.unhandled import queue
from flows import events
from flows.facts import Facts
from flows.model import Context, Inbound, State, Turn
from store import audit, outbox
from store.models import Contact, Participant, new_participant_id, utcnow

# Events a batched turn may raise: recorded, and nothing else. A turn raising any other
# (STOP, a consent, an organiser's command, ...) runs the one-message path, where the
# event hooks and turn hooks see it exactly as they always have.
RECORDED_ONLY = frozenset({events.CONVERSATION_STARTED, events.LANGUAGE_CHANGED})


class LostRace(Exception):
    """A new person's contact was made by another transaction and is gone again."""


@dataclass(frozen=True)
class Arrival(Incoming):
    """One inbound message waiting for its turn, as the webhook gave it; `future` takes
    what its turn gave."""

    future: asyncio.Future | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.channel, self.address)

    def message(self) -> dict[str, Any]:
        """The message's fields, as `turns.receive` takes them."""
        return {f.name: getattr(self, f.name) for f in fields(Incoming)}


@dataclass
class _Batch:
    """What the batch has gathered so far, in arrival order."""

    records: dict[int, tuple[int, int | None]] = field(default_factory=dict)  # -> (id, filed)
    people: dict[tuple[str, str], tuple[Contact, Participant]] = field(default_factory=dict)
    read: dict[int, dict[str, Any]] = field(default_factory=dict)  # contact id -> columns
    facts: list[Any] = field(default_factory=list)  # from `facts_readers`
    one_by_one: list[int] = field(default_factory=list)  # positions for handle_stored
    set_apart: set[tuple[str, str]] = field(default_factory=set)  # their addresses
    batched: list[tuple[int, Participant, Contact, Turn]] = field(default_factory=list)
    rows: list[outbox.Message] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any], str | None]] = field(default_factory=list)
    moments: list[datetime] = field(default_factory=list)
    filings: list[dict[str, int]] = field(default_factory=list)
    states: dict[str, dict[str, Any]] = field(default_factory=dict)  # participant id -> new

    def apart(self, position: int, key: tuple[str, str]) -> None:
        self.one_by_one.append(position)
        self.set_apart.add(key)


def _locking(keys: list[tuple[str, str]]) -> Any:
    return (
        select(Contact, Participant)
        .join(Participant, Participant.id == Contact.participant_id)
        .where(tuple_(Contact.channel, Contact.address).in_(keys))
        .order_by(Contact.id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )


async def handle_batch(session: AsyncSession, relay: Relay, arrivals: list[Arrival]) -> list:
    """Every arrival's turn in the caller's transaction; a `Received` per arrival, in order.
    Raises whatever any turn raises: the caller then runs each message alone."""
    batch = _Batch()
    await _lock(session, batch, sorted({a.key for a in arrivals}))
    await _store(session, arrivals, batch)
    held = await _hold_behind(session, arrivals, batch)
    screened = await _screen(session, relay, arrivals, batch)
    with session.no_autoflush:
        await _make_people(session, relay, arrivals, batch, screened)
        await _read_columns(session, relay, batch)
        await _read_facts(session, relay, arrivals, batch, screened)
        results: list[Received] = [Received(duplicate=True) for _ in arrivals]
        for n in held:
            results[n] = Received(duplicate=False, kept=True)
        for n in batch.records:
            if n in screened or arrivals[n].key in batch.set_apart:
                batch.apart(n, arrivals[n].key)
                continue
            received = await _turn(session, relay, arrivals[n], batch, n)
            if received is None:
                batch.apart(n, arrivals[n].key)
            else:
                results[n] = received
    await _write(session, batch, arrivals)
    for n, participant, contact, turn in batch.batched:
        for hook in relay.hooks.turns:
            results[n].queued += await hook(
                session,
                relay.settings,
                participant=participant,
                contact=contact,
                text=arrivals[n].text,
                turn=turn,
                now=arrivals[n].now,
            )
    for n in batch.one_by_one:
        session.info.pop(READ_WITH_PERSON, None)
        a = arrivals[n]
        results[n] = await handle_stored(session, relay, batch.records[n], a)
    return results


async def _store(session: AsyncSession, arrivals: list[Arrival], batch: _Batch) -> None:
    """Insert-or-nothing every message on its provider's id (one statement, the rows sorted
    so that two instances given the same ids take them in one order), filed under its
    contact when it has one; a second copy in the batch is a duplicate as one seen before
    is. The contacts are locked first: a provider's id is always one address's, so two
    transactions storing one id have locked that contact in the same order before."""
    first: dict[tuple[str, str], int] = {}
    for n, a in enumerate(arrivals):
        first.setdefault((a.channel, a.provider_id), n)
    rows = []
    for (_, provider_id), n in sorted(first.items()):
        a = arrivals[n]
        known = batch.people.get(a.key)
        rows.append(
            {
                "channel": a.channel,
                "provider_id": provider_id,
                "text": a.text,
                "button": a.button,
                "media": a.media,
                "received_at": a.now,
                "contact_id": known[0].id if known else None,
            }
        )
    stored = await session.execute(_STORING[session.get_bind().dialect.name], rows)
    records = {}
    for row_id, contact_id, channel, provider_id in stored:
        records[first[(channel, provider_id)]] = (row_id, contact_id)
    batch.records = dict(sorted(records.items()))


async def _hold_behind(session: AsyncSession, arrivals: list[Arrival], batch: _Batch) -> list:
    """Positions of the stored messages whose sender has an earlier one still to be handled:
    kept behind it (no turn now), and taken out of the batch's records."""
    waiting = await queue.waiting(session, {arrivals[n].key for n in batch.records})
    if not waiting:
        return []
    held = [n for n in batch.records if arrivals[n].key in waiting]
    rows = []
    for n in held:
        a = arrivals[n]
        rows.append(
            queue.row(
                *batch.records.pop(n),
                channel=a.channel,
                address=a.address,
                language_hint=a.language_hint,
                now=a.now,
            )
        )
    await queue.hold(session, rows)
    return held


def _storing(insert: Any) -> Any:
    return (
        insert(INBOUND)
        .on_conflict_do_nothing(index_elements=["channel", "provider_id"])
        .returning(INBOUND.c.id, INBOUND.c.contact_id, INBOUND.c.channel, INBOUND.c.provider_id)
    )


# Executed with many rows: SQLAlchemy makes it one multi-row statement, compiled once.
_STORING = {"postgresql": _storing(pg_insert), "sqlite": _storing(sqlite_insert)}


async def _lock(session: AsyncSession, batch: _Batch, keys: list[tuple[str, str]]) -> None:
    if not keys:
        return
    for contact, participant in await session.execute(_locking(keys)):
        batch.people[(contact.channel, contact.address)] = (contact, participant)


async def _screen(
    session: AsyncSession, relay: Relay, arrivals: list[Arrival], batch: _Batch
) -> set[int]:
    """Positions of the messages an inbound hook may act on (a hook that cannot say: all)."""
    positions = list(batch.records)
    messages = [(arrivals[n].channel, arrivals[n].address, arrivals[n].text) for n in positions]
    screened: set[int] = set()
    for screen in relay.hooks.inbound_screens:
        if screen is None:
            return set(positions)
        screened |= {positions[i] for i in await screen(session, messages, batch.people)}
    return screened


async def _make_people(
    session: AsyncSession, relay: Relay, arrivals: list[Arrival], batch: _Batch, screened: set
) -> None:
    """A participant and a contact for each new address whose first message is batched
    (one insert each); an address another transaction made meanwhile is locked instead."""
    new: dict[tuple[str, str], Arrival] = {}
    for n in batch.records:
        key = arrivals[n].key
        if key not in batch.people and key not in new:
            if n in screened:
                batch.set_apart.add(key)
            elif key not in batch.set_apart:
                new[key] = arrivals[n]
    if not new:
        return
    default = relay.settings.default_language
    participants = {}
    for key, a in sorted(new.items()):
        language = best_language(a.language_hint, default)
        participants[key] = Participant(
            id=new_participant_id(), language=language, state=State(language=language).to_json()
        )
    session.add_all(participants.values())
    await session.flush()
    values = []
    for (channel, address), participant in participants.items():
        silent = channel == "sms" and not can_receive_sms(address)
        values.append(
            {
                "participant_id": participant.id,
                "channel": channel,
                "address": address,
                "sms_consent": channel == "sms" and not silent,
                "unreachable_at": utcnow() if silent else None,
            }
        )
    made = await session.scalars(_MAKING[session.get_bind().dialect.name], values)
    for contact in made:
        participant = participants.pop((contact.channel, contact.address))
        batch.people[(contact.channel, contact.address)] = (contact, participant)
        batch.events.append(("participant.created", {"channel": contact.channel}, participant.id))
        batch.moments.append(utcnow())
    if participants:  # made by another transaction, which has committed: use theirs
        for participant in participants.values():
            await session.delete(participant)
        await _lock(session, batch, sorted(participants))
        if any(key not in batch.people for key in participants):
            raise LostRace("a new contact was made and removed again meanwhile")


_MAKING = {
    name: insert(Contact)
    .on_conflict_do_nothing(index_elements=["channel", "address"])
    .returning(Contact)
    for name, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


async def _read_columns(session: AsyncSession, relay: Relay, batch: _Batch) -> None:
    """The hooks' person columns for everyone in the batch, read once the locks are held."""
    columns = relay.hooks.person_columns
    if not columns or not batch.people:
        return
    ids = [contact.id for contact, _ in batch.people.values()]
    query = (
        select(
            Contact.id.label("contact_id"),
            Participant.id.label("participant_id"),
            *(c.label(name) for name, c in columns.items()),
        )
        .join(Participant, Participant.id == Contact.participant_id)
        .where(Contact.id.in_(bindparam("ids", expanding=True)))
    )
    for row in await session.execute(query, {"ids": ids}):
        batch.read[row.contact_id] = row._asdict()


async def _read_facts(
    session: AsyncSession, relay: Relay, arrivals: list[Arrival], batch: _Batch, screened: set
) -> None:
    """The facts of everyone whose turn may be batched, read for the group."""
    people = {
        batch.people[arrivals[n].key][1].id: batch.people[arrivals[n].key][1]
        for n in batch.records
        if n not in screened and arrivals[n].key not in batch.set_apart
    }
    batch.facts = await facts_readers(session, relay, list(people.values()))


async def facts_readers(
    session: AsyncSession, relay: Relay, participants: list[Participant]
) -> list[Any]:
    """For each facts provider, in order: what its group reader read for `participants` (a
    few queries for the group instead of a few per turn), or None (it reads per turn)."""
    return [
        await for_group(session, participants) if participants and for_group else None
        for for_group in relay.hooks.facts_for_group
    ]


async def facts_from(
    session: AsyncSession,
    relay: Relay,
    readers: list[Any],
    participant: Participant,
    contact: Contact,
) -> Facts:
    """What `turns.facts_for` gives this person, from `facts_readers`' where it read."""
    facts: dict[str, Any] = {}
    session.info[TURN_CONTACT] = contact
    try:
        for provider, of_group in zip(relay.hooks.facts, readers, strict=True):
            if of_group is not None:
                facts.update(of_group(participant) or {})
            else:
                facts.update(await provider(session, participant) or {})
    finally:
        session.info.pop(TURN_CONTACT, None)
    return Facts(**facts)


async def _turn(
    session: AsyncSession, relay: Relay, a: Arrival, batch: _Batch, n: int
) -> Received | None:
    """The engine's turn for one message, kept to be written with the batch's; None when
    it raises an event a hook handles (the message then runs the one-message path)."""
    contact, participant = batch.people[a.key]
    session.info[READ_WITH_PERSON] = batch.read.get(contact.id, {})
    facts = await facts_from(session, relay, batch.facts, participant, contact)
    state = State.from_json(participant.state, language=participant.language)
    ctx = Context(now=a.now, participant_id=participant.id, channel=a.channel, facts=facts)
    inbound = Inbound(channel=a.channel, text=a.text, button=a.button, media=a.media)
    turn = relay.engine.handle(state, inbound, ctx)
    if any(e.kind not in RECORDED_ONLY or relay.hooks.handlers(e.kind) for e in turn.events):
        return None
    record_id, filed_under = batch.records[n]
    if contact.id != filed_under:
        batch.filings.append({"record_id": record_id, "contact_id": contact.id})
    # As `turns.apply_turn` sets them, written for the whole batch in one statement (the
    # object holds them as if loaded: the facts of this person's next message read them).
    changed = {
        "state": turn.state.to_json(),
        "language": turn.state.language,
        "opted_out": turn.state.opted_out,
        "updated_at": a.now,
    }
    for name, value in changed.items():
        set_committed_value(participant, name, value)
    batch.states[participant.id] = {"b_id": participant.id, **changed}
    for event in turn.events:
        batch.events.append((event.kind, event.data, participant.id))
        batch.moments.append(a.now)
    rows, count = await outbox_rows(
        session,
        relay.settings,
        participant,
        contact,
        turn.outbound,
        prompt_id=turn.state.prompt_id,
        not_before=a.now,
        created_at=a.now,
    )
    batch.rows.extend(rows)
    batch.batched.append((n, participant, contact, turn))
    return Received(duplicate=False, participant_id=participant.id, queued=count)


PARTICIPANTS = Participant.__table__
_SAVE_STATE = (
    PARTICIPANTS.update()
    .where(PARTICIPANTS.c.id == bindparam("b_id"))
    .values(
        state=bindparam("state"),
        language=bindparam("language"),
        opted_out=bindparam("opted_out"),
        updated_at=bindparam("updated_at"),
    )
)


async def _write(session: AsyncSession, batch: _Batch, arrivals: list[Arrival]) -> None:
    """The batched turns' states, filings, replies and events: one statement each."""
    await session.flush()  # new people who turned out not to be (another instance's)
    if batch.states:
        await session.execute(_SAVE_STATE, list(batch.states.values()))
    if batch.filings:
        await session.execute(FILE_UNDER, batch.filings)
    if batch.rows:
        await outbox.write(session, batch.rows, now=arrivals[-1].now)
    await audit.append_many(session, batch.events, utcnow(), batch.moments)
