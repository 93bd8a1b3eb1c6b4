"""A ballot's life: created from its definition, opened (opening.py), closed (the links
destroyed, the votes rewritten in a shuffled order, the tally and the receipts published
in an audit event), each in one transaction.
"""

from __future__ import annotations

import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.relay import Relay
from bot.services.ballots import announcing
from bot.services.ballots.belenios import service as belenios
from bot.services.ballots.tallying import results_of
from bot.services.unhandled import records as unhandled
from flows.ballot import KIND, NAME
from flows.ballot_spec import BallotDef, plain
from store import audit
from store.ballots import CLOSED, DRAFT, OPEN, Ballot, BallotRoll, BallotVote
from store.db import dialect_insert
from store.models import OutboxMessage, OutboxStatus, Participant, utcnow

CLOSED_EVENT, TALLIED = "ballot.closed", "ballot.tallied"
CREATED = "ballot.created"
FINAL = [s for s in OutboxStatus if s not in (OutboxStatus.QUEUED, OutboxStatus.SENDING)]
# Small tables rewritten whole at close; the busy ones only vacuumed (README).
REWRITTEN = ("ballot_votes", "ballot_roll", "ballots", "belenios_credentials")
VACUUMED = ("participants", "outbox", "inbound_messages")


class BallotProblem(ValueError):
    """What an organiser asked cannot be done; the message says why and what to do."""


@dataclass
class Created:
    id: str
    action: str  # created | updated | unchanged | kept (already open or closed)


async def create(
    session: AsyncSession, ballots: list[BallotDef], *, source: str, now: datetime | None = None
) -> list[Created]:
    """Store each definition; a draft is updated, an opened ballot is never changed."""
    done = []
    for ballot in ballots:
        definition = plain(ballot)
        row = await session.get(Ballot, ballot.id)
        if row is not None and row.status == DRAFT:  # an open one is never locked for this
            row = await session.get(Ballot, ballot.id, with_for_update=True, populate_existing=True)
        if row is None:
            # Several instances read the assembly's ballots at start: the one whose insert
            # lands creates it; the others find it made and go on as if it had been there.
            made = await session.execute(
                dialect_insert(session, Ballot)
                .values(
                    id=ballot.id,
                    status=DRAFT,
                    definition=definition,
                    opens_at=ballot.opens_at,
                    closes_at=ballot.closes_at,
                    source=source,
                )
                .on_conflict_do_nothing(index_elements=["id"])
                .returning(Ballot.id)
            )
            if made.first() is not None:
                await audit.append(
                    session, CREATED, {"ballot": ballot.id, "method": ballot.method}, at=now
                )
                done.append(Created(ballot.id, "created"))
                continue
            row = await session.get(Ballot, ballot.id, with_for_update=True, populate_existing=True)
        if row.status != DRAFT:
            done.append(Created(ballot.id, "kept"))
        elif (row.definition, row.opens_at, row.closes_at) == (
            definition,
            ballot.opens_at,
            ballot.closes_at,
        ):
            done.append(Created(ballot.id, "unchanged"))
        else:
            row.definition, row.opens_at, row.closes_at = (
                definition,
                ballot.opens_at,
                ballot.closes_at,
            )
            done.append(Created(ballot.id, "updated"))
    return done


async def get_ballot(session: AsyncSession, ballot_id: str, *, lock: bool = False) -> Ballot:
    ballot = await session.get(Ballot, ballot_id, with_for_update=lock or None)
    if ballot is None:
        known = (await session.execute(select(Ballot.id).order_by(Ballot.id))).scalars().all()
        listed = ", ".join(known) if known else "none yet: `concorder ballot create FILE`"
        raise BallotProblem(f"No ballot {ballot_id!r}. Ballots: {listed}.")
    return ballot


@dataclass
class Closed:
    id: str
    voters: int
    voted: int
    results: dict[str, Any] | None = None
    told: int = 0  # people sent the results


async def close_ballot(
    relay: Relay,
    ballot_id: str,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    vacuum_full: bool = False,
) -> Closed:
    """Destroy the links and the key, rewrite the votes shuffled, count, publish; then
    make the erased bytes leave the files."""
    now = now or utcnow()
    async with relay.sessions.begin() as session:
        # The people before the ballot, as a turn takes them (announcing.py).
        roll = await announcing.lock_roll(session, ballot_id) if not dry_run else None
        ballot = await get_ballot(session, ballot_id, lock=True)
        if ballot.status != OPEN:
            hint = " Open it first." if ballot.status == DRAFT else ""
            raise BallotProblem(f"Ballot {ballot_id} is {ballot.status}, not open.{hint}")
        voters, voted = await turnout(session, ballot_id)
        closed = Closed(ballot_id, voters, voted)
        if roll is None:
            return closed  # nothing written
        votes = await _rewrite_shuffled(session, ballot_id)
        if belenios.used(ballot.definition):  # counted and proved by belenios-tool
            results = await belenios.close_election(session, ballot, voters, voted)
        else:
            results = results_of(ballot, votes, voters, voted)
        ballot.status, ballot.closed_at = CLOSED, now
        ballot.link_key, ballot.results = None, results
        await audit.append(
            session,
            CLOSED_EVENT,
            {"ballot": ballot_id, "voters": voters, "voted": voted, "votes": len(votes)},
            at=now,
        )
        await audit.append(session, TALLIED, tally_event(ballot_id, results), at=now)
        closed.results = results
        closed.told = await announcing.tell_results(
            session, relay.settings, roll, ballot_id, ballot.definition, results, now
        )
    if closed.told:
        relay.outbox_signal.set()
    # Apart: a turn holds its person's row and then waits on the ballot's, so the close
    # must not wait on a person's row while it holds the ballot's.
    async with relay.sessions.begin() as session:
        await _forget_choices(session, ballot_id)
        await scrub_messages(session)
        contacts = [c.id for held in roll.contacts.values() for c in held]
        await unhandled.forget_during_ballot(session, contacts, ballot.opened_at, now)
    await reclaim(relay.sessions.kw["bind"], full=vacuum_full)
    return closed


def tally_event(ballot_id: str, results: dict[str, Any]) -> dict[str, Any]:
    tally = results["tally"]
    return {
        "ballot": ballot_id,
        "method": results["method"],
        "ballots": tally["ballots"],
        "abstentions": tally["abstentions"],
        "winners": tally["winners"],
        "quorum_met": results["quorum_met"],
        "results_sha256": results["results_sha256"],
        "trackers_sha256": results["trackers_sha256"],
    }


async def turnout(session: AsyncSession, ballot_id: str) -> tuple[int, int]:
    row = (
        await session.execute(
            select(func.count(), func.count().filter(BallotRoll.voted)).where(
                BallotRoll.ballot_id == ballot_id
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def with_turnout(
    session: AsyncSession, status: str | None = None
) -> list[tuple[Ballot, int, int]]:
    """Each ballot (or those in `status`) with its roll's size and how many have voted:
    counts only, never who voted nor how."""
    query = select(Ballot).order_by(Ballot.id)
    if status is not None:
        query = query.where(Ballot.status == status)
    return [(b, *(await turnout(session, b.id))) for b in (await session.execute(query)).scalars()]


def quorum_needed(definition: dict[str, Any], voters: int) -> int:
    quorum = definition.get("quorum") or 0
    if isinstance(quorum, float):
        return math.ceil(quorum * voters - 1e-9)
    return int(quorum)


async def _rewrite_shuffled(session: AsyncSession, ballot_id: str) -> list[dict[str, Any]]:
    """Every vote deleted and written again in a random order with new random ids and no
    link: neither the rows' order nor their ids say anything about when they were cast."""
    rows = (
        await session.execute(
            select(BallotVote.choice, BallotVote.tracker, BallotVote.status).where(
                BallotVote.ballot_id == ballot_id
            )
        )
    ).all()
    votes = [{"choice": c, "tracker": t, "status": s} for c, t, s in rows]
    secrets.SystemRandom().shuffle(votes)
    await session.execute(delete(BallotVote).where(BallotVote.ballot_id == ballot_id))
    if votes:
        await session.execute(
            insert(BallotVote),
            [{"id": uuid.uuid4(), "ballot_id": ballot_id, "voter_link": None, **v} for v in votes],
        )
    return votes


async def _forget_choices(session: AsyncSession, ballot_id: str) -> None:
    """A choice waiting for YES in someone's conversation goes with the close."""
    people = select(BallotRoll.participant_id).where(BallotRoll.ballot_id == ballot_id)
    for participant in (
        await session.execute(select(Participant).where(Participant.id.in_(people)))
    ).scalars():
        data = (participant.state or {}).get("data", {})
        held = data.get(NAME)
        if isinstance(held, dict) and held.get("id") == ballot_id and len(held) > 1:
            participant.state = {**participant.state, "data": {**data, NAME: {"id": ballot_id}}}


async def scrub_messages(session: AsyncSession) -> int:
    """Blank what the ballot conversation's sent messages said (choices read back,
    receipt codes); those still to send are blanked at a later close or tick."""
    result = await session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.kind == KIND, OutboxMessage.status.in_(FINAL), OutboxMessage.text != ""
        )
        .values(text="", buttons=None)
    )
    return result.rowcount or 0


async def reclaim(engine: AsyncEngine, *, full: bool = False) -> None:
    """Make the old rows' bytes leave the files. SQLite zeroes what it deletes
    (`secure_delete`); its write-ahead log is folded in and emptied. PostgreSQL: the
    ballot tables are rewritten (VACUUM FULL, small), the busy ones vacuumed, or with
    `full` rewritten too (the old versions of a conversation waiting for YES go)."""
    async with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            raw = await connection.get_raw_connection()
            await raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return
        autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.exec_driver_sql(f"VACUUM FULL {', '.join(REWRITTEN)}")
        options = "FULL" if full else "SKIP_LOCKED"
        await autocommit.exec_driver_sql(f"VACUUM ({options}) {', '.join(VACUUMED)}")
