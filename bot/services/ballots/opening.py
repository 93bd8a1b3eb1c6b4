"""Opening a ballot: the roll fixed and the ballot open in one transaction, then every voter
asked, a hundred at a time, each hundred in a transaction of its own (a long one would hold
SQLite's write lock, and on PostgreSQL the voters' rows, while the webhooks wait). The
roll says who has been asked, so what a crash interrupts is finished by the next tick.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import insert, select, update

from bot.relay import Relay
from bot.services.ballots.belenios import service as belenios
from bot.services.ballots.records import BallotProblem, get_ballot
from bot.services.people import lock_participant
from bot.services.turns import start_flow
from flows.ballot import NAME, ON_ROLL
from store import audit
from store.ballots import DRAFT, OPEN, BallotRoll
from store.groups import GroupSeat, current_run
from store.models import utcnow
from store.recruitment import CONFIRMED, Selection

OPENED = "ballot.opened"
CHUNK = 100


async def eligible(session, voters: str) -> list[str]:
    """Who may vote: the confirmed panel, or those seated in a round (or at one table) of
    the current small-group tables who are still on it."""
    panel = select(Selection.participant_id).where(Selection.status == CONFIRMED)
    if voters == "panel":
        return sorted(set((await session.execute(panel)).scalars()))
    run = await current_run(session)
    if run is None:
        raise BallotProblem(f"voters = {voters!r}, but no tables are allocated yet.")
    parts = voters.split(":")
    query = select(GroupSeat.participant_id).where(
        GroupSeat.run_id == run.run_id,
        GroupSeat.round == int(parts[1]),
        GroupSeat.participant_id.in_(panel),
    )
    if len(parts) == 3:
        query = query.where(GroupSeat.table_no == int(parts[2]))
    return sorted(set((await session.execute(query)).scalars()))


@dataclass
class Opened:
    id: str
    voters: int
    asked: int = 0  # voters sent the question
    not_asked: list[str] = field(default_factory=list)  # opted out


async def open_ballot(
    relay: Relay, ballot_id: str, *, dry_run: bool = False, now: datetime | None = None
) -> Opened:
    """Fix the roll and open the ballot, then ask every voter."""
    now = now or utcnow()
    async with relay.sessions.begin() as session:
        ballot = await get_ballot(session, ballot_id, lock=True)
        if ballot.status != DRAFT:
            raise BallotProblem(f"Ballot {ballot_id} is already {ballot.status}.")
        voters = await eligible(session, ballot.definition["voters"])
        if not voters:
            raise BallotProblem(
                f"Nobody may vote in {ballot_id} (voters = {ballot.definition['voters']!r}): "
                "no confirmed panel member is there yet."
            )
        opened = Opened(ballot_id, len(voters))
        if dry_run:
            return opened  # nothing written
        ballot.status, ballot.opened_at = OPEN, now
        ballot.link_key = secrets.token_hex(32)
        await session.execute(
            insert(BallotRoll),
            [{"ballot_id": ballot_id, "participant_id": p, "voted": False} for p in voters],
        )
        if belenios.used(ballot.definition):  # the election and each voter's credential
            settings = relay.settings
            await belenios.open_election(
                session, settings.belenios_dir, settings.default_language, ballot, voters
            )
        await audit.append(
            session,
            OPENED,
            {"ballot": ballot_id, "method": ballot.definition["method"], "voters": len(voters)},
            at=now,
        )
    await ask_voters(relay, ballot_id, opened, now=now)
    return opened


async def ask_voters(
    relay: Relay, ballot_id: str, opened: Opened | None = None, *, now: datetime | None = None
) -> Opened:
    """Ask everyone on the roll not asked yet, a chunk per transaction."""
    now = now or utcnow()
    opened = opened or Opened(ballot_id, 0)
    while True:
        async with relay.sessions.begin() as session:
            chunk = list(
                (
                    await session.execute(
                        select(BallotRoll.participant_id)
                        .where(BallotRoll.ballot_id == ballot_id, BallotRoll.asked.is_(False))
                        .order_by(BallotRoll.participant_id)
                        .limit(CHUNK)
                        .with_for_update(skip_locked=True)
                    )
                ).scalars()
            )
            if not chunk:
                break
            ballot = await get_ballot(session, ballot_id)
            if ballot.status != OPEN:
                break
            for participant_id in chunk:
                await _ask(session, relay, ballot_id, participant_id, opened, now)
            await session.execute(
                update(BallotRoll)
                .where(BallotRoll.ballot_id == ballot_id, BallotRoll.participant_id.in_(chunk))
                .values(asked=True)
            )
        if opened.asked:
            relay.outbox_signal.set()
    return opened


async def _ask(session, relay: Relay, ballot_id: str, participant_id: str, opened, now) -> None:
    participant = await lock_participant(session, participant_id)
    state = participant.state or {}
    # Their turns read the ballots from now on (facts); everyone else's never do.
    participant.state = {**state, "data": {**state.get("data", {}), ON_ROLL: True}}
    if participant.opted_out:
        opened.not_asked.append(participant_id)
        return
    queued = await start_flow(
        session, relay, participant, NAME, step=f"ballot:{ballot_id}", now=now
    )
    opened.asked += 1 if queued else 0
