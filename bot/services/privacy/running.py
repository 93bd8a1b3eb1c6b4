"""Erasure as the service and the commands run it, and how STOP outlives it.

Each person is erased in a transaction of their own (a stopped run leaves nobody half
erased and carries on where it stopped); two instances on one database may run at once:
the person's row is locked and an erased person is skipped. After a batch the freed bytes
are reclaimed (SQLite: the write-ahead log is folded in and emptied, deleted content being
zeroed by `secure_delete`; PostgreSQL: VACUUM of the tables touched).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from aiohttp import web
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.relay import Relay
from bot.services import people
from bot.services.privacy.due import Due, assembly_end, due_organisers, due_people
from bot.services.privacy.erase import erase_person
from flows import events
from flows.model import Event, State
from scheduler import timers
from store import audit
from store.models import Contact, Participant, utcnow
from store.organisers import BroadcastPreview, Organiser
from store.personal_data import INVENTORY, KEEP, ORGANISER_BLANK, OptOutMark, opt_out_digest

log = logging.getLogger(__name__)

TICK_SECONDS = 15 * 60
ORGANISERS_ERASED = "organisers.erased"
TOUCHED_TABLES = sorted(
    {p.name for p in INVENTORY if p.action != KEEP}
    | {"organisers", "broadcast_previews", "outbox", "calendar_jobs"}
)


@dataclass
class ErasureRun:
    due: list[Due] = field(default_factory=list)
    erased: list[str] = field(default_factory=list)
    organisers: int = 0
    rows: Counter[str] = field(default_factory=Counter)


async def plan_due(relay: Relay, now: datetime) -> tuple[list[Due], list[int]]:
    """Who is due now, and which organisers; nothing without [retention]."""
    retention = relay.assembly.retention if relay.assembly else None
    if retention is None:
        return [], []
    end = assembly_end(retention, relay.calendar)
    async with relay.sessions() as session:
        people = await due_people(session, retention, end, now)
        organisers = await due_organisers(session, retention, end, now)
    return people, organisers


async def erase_due(
    relay: Relay,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
    vacuum_full: bool = False,
) -> ErasureRun:
    """Erase everyone and every organiser record a retention period says must go."""
    now = now or utcnow()
    people, organisers = await plan_due(relay, now)
    run = ErasureRun(due=people, organisers=len(organisers))
    if dry_run:
        return run
    for due in people:
        async with relay.sessions.begin() as session:
            touched = await erase_person(
                session, due.participant_id, reason=due.rule, key=relay.invite_key, now=now
            )
        if touched is not None:
            run.erased.append(due.participant_id)
            run.rows.update(touched)
        if progress:
            progress(1)
    if organisers:
        async with relay.sessions.begin() as session:
            run.organisers = await erase_organisers(session, organisers, now)
    if run.erased or run.organisers:
        await reclaim(relay.sessions.kw["bind"], full=vacuum_full)
    return run


async def erase_request(
    relay: Relay,
    participant_id: str,
    *,
    now: datetime | None = None,
    reason: str = "request",
    vacuum_full: bool = False,
) -> Counter[str] | None:
    """Erase one person now (an erasure asked for); None if they were erased before."""
    now = now or utcnow()
    async with relay.sessions.begin() as session:
        touched = await erase_person(
            session, participant_id, reason=reason, key=relay.invite_key, now=now
        )
    if touched is not None:
        await reclaim(relay.sessions.kw["bind"], full=vacuum_full)
    return touched


async def erase_organisers(session: AsyncSession, ids: list[int], now: datetime) -> int:
    """Organisers' numbers, ids, names and unsent previews; the rows stay (the audit trail
    and broadcasts name organisers by number)."""
    await session.execute(delete(BroadcastPreview).where(BroadcastPreview.organiser_id.in_(ids)))
    await session.execute(update(Organiser).where(Organiser.id.in_(ids)).values(**ORGANISER_BLANK))
    await audit.append(session, ORGANISERS_ERASED, {"organisers": len(ids)}, at=now)
    return len(ids)


async def reclaim(engine: AsyncEngine, *, full: bool = False) -> None:
    """Make erased bytes leave the database's files, outside any transaction.

    SQLite: deleted content is zeroed (`secure_delete`); the write-ahead log, which still
    holds the old pages, is folded in and emptied. PostgreSQL: VACUUM frees the dead rows'
    space, overwritten as it is reused (no statistics sample the personal columns:
    migration 0013); `full` rewrites the tables (VACUUM FULL) so no old byte stays in
    their files, but locks each table while it runs: for a quiet moment."""
    async with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            raw = await connection.get_raw_connection()
            cursor = await raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            busy, _, _ = await cursor.fetchone()
            if busy:
                log.info("erasure: the write-ahead log is in use; it is emptied later")
            return
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        options = "FULL" if full else "SKIP_LOCKED"
        await autocommit.exec_driver_sql(f"VACUUM ({options}) {', '.join(TOUCHED_TABLES)}")


# ---------------------------------------------------------------- STOP outlives erasure


def register(relay: Relay) -> None:
    """A message from an erased address that had opted out starts an opted-out person; a
    START from it lifts the mark."""

    async def before_inbound(session: AsyncSession, *, channel, address, language, now, **_):
        if await people.contact_at(session, channel, address) is not None:
            return
        digest = opt_out_digest(relay.invite_key, channel, address)
        if await session.get(OptOutMark, digest) is None:
            return
        contact = await people.find_or_create_contact(session, channel, address, language)
        participant = await session.get(Participant, contact.participant_id)
        state = State.from_json(participant.state, language=participant.language)
        state.opted_out = True
        participant.state, participant.opted_out = state.to_json(), True
        await audit.append(
            session, "participant.opt_out_kept", {"channel": channel}, participant_id=participant.id
        )

    async def opted_in(session: AsyncSession, participant: Participant, event: Event, now):
        for channel, address in await session.execute(
            select(Contact.channel, Contact.address).where(Contact.participant_id == participant.id)
        ):
            await session.execute(
                delete(OptOutMark).where(
                    OptOutMark.digest == opt_out_digest(relay.invite_key, channel, address)
                )
            )

    async def screen(session: AsyncSession, messages, known) -> set[int]:
        """For a batch: the messages from new addresses that carry an opt-out mark (one
        query for the batch)."""
        digests = {
            n: opt_out_digest(relay.invite_key, channel, address)
            for n, (channel, address, _) in enumerate(messages)
            if (channel, address) not in known
        }
        if not digests:
            return set()
        marked = set(
            await session.scalars(
                select(OptOutMark.digest).where(OptOutMark.digest.in_(set(digests.values())))
            )
        )
        return {n for n, digest in digests.items() if digest in marked}

    relay.hooks.before_inbound(before_inbound, screen)
    relay.hooks.on_event(events.OPTED_IN, opted_in)


def install(app: web.Application, relay: Relay, dispatch: bool) -> None:
    """Erase what is due on a timer, when the assembly file states its retention."""
    if not dispatch or relay.assembly is None or relay.assembly.retention is None:
        return

    async def tick() -> None:
        run = await erase_due(relay)
        if run.erased or run.organisers:
            log.info(
                "erasure: %d people and %d organisers' records erased as due",
                len(run.erased),
                run.organisers,
            )

    timers.add(app, "privacy: erase what retention says is due", TICK_SECONDS, tick)
