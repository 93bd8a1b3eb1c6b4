"""A vote inside an inbound turn: what the conversation may know (the ballots this person is
on the roll of, a fresh receipt code), and the vote it cast recorded in the same
transaction, away from the voter.

A reply to the summary (the only one that can cast a vote) reads the facts with the ballot
rows share-locked (PostgreSQL), so a close, which takes them for update, waits for a turn
that saw the ballot open, and a turn that waited sees it closed. A reply given while the
ballot conversation was open is blanked in the inbound table in the same transaction:
what someone typed to vote is never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.relay import Relay
from bot.services.ballots.belenios import service as belenios
from bot.services.ballots.belenios.tool import TIMEOUT
from bot.services.ballots.counting import validate
from flows import events
from flows.ballot import CAST, NAME, ON_ROLL, UNCONFIRMED
from flows.facts import BallotFacts
from store.ballots import (
    CLOSED,
    COUNTED,
    OPEN,
    REPLACED,
    Ballot,
    BallotRoll,
    BallotVote,
    leave_open_rolls,
)
from store.models import InboundMessage, Participant

# A readable alphabet: no 0/O, 1/I/L. 31 ** 8 codes, about 8.5e11.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
TRACKER_LENGTH = 8
RECORD = "ballots.inbound_record"  # session.info: the inbound row of this turn
BEFORE = "ballots.in_ballot"  # session.info: the person was in the ballot conversation


class BallotClosed(RuntimeError):
    """A vote for a ballot that is not open (the share lock makes this a bug)."""


def new_tracker() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(TRACKER_LENGTH))


def voter_link(key_hex: str, ballot_id: str, participant_id: str) -> str:
    """The keyed link from a voter to their current vote, while the ballot is open."""
    message = f"{ballot_id}:{participant_id}".encode()
    return hmac.new(bytes.fromhex(key_hex), message, hashlib.sha256).hexdigest()


def counted_shape(method: str, vote: Any) -> Any:
    """A stored (JSON) vote in the counting package's shape."""
    if vote is None:
        return None
    if method == "approval":
        return frozenset(vote)
    if method == "ranking":
        return tuple(vote)
    return vote


def count_options(ballot_id: str, definition: dict[str, Any]) -> list[str]:
    if definition["method"] == "scale":
        return [ballot_id]  # one statement
    if definition["method"] == "yes_no" and not definition.get("options"):
        return ["yes", "no"]
    return [o["key"] for o in definition["options"]]


def count_params(definition: dict[str, Any]) -> dict[str, Any]:
    method = definition["method"]
    wanted: dict[str, tuple[str, ...]] = {
        "yes_no": ("majority",),
        "single": ("majority",),
        "approval": ("max_choices",),
        "scale": ("levels", "threshold_level", "threshold_share"),
    }
    params = {k: definition[k] for k in wanted.get(method, ()) if definition.get(k) is not None}
    if method == "majority_judgment":
        # Worst first, as the counting package indexes them; the file lists the best first.
        params["grades"] = [g.get("en") or next(iter(g.values())) for g in definition["grades"]]
        params["grades"].reverse()
    return params


async def ballot_facts(
    session: AsyncSession, participant: Participant, vote_timeout: float = TIMEOUT
) -> dict[str, Any] | None:
    state = participant.state or {}
    session.info[BEFORE] = state.get("flow") == NAME
    if not state.get("data", {}).get(ON_ROLL):
        return None  # on no ballot's roll
    query = (
        select(Ballot.id, Ballot.status, Ballot.definition, BallotRoll.voted)
        .join(BallotRoll, BallotRoll.ballot_id == Ballot.id)
        .where(
            BallotRoll.participant_id == participant.id,
            BallotRoll.withdrawn.is_(False),
            Ballot.status.in_((OPEN, CLOSED)),
        )
        .order_by(Ballot.opened_at, Ballot.id)
    )
    if session.info[BEFORE] and state.get("step") == "confirm":
        # Only a reply to the summary casts a vote: only it holds the close off.
        query = query.with_for_update(read=True, of=Ballot)
    rows = (await session.execute(query)).all()
    if not rows:
        return None
    keys = await belenios.credentials(session, participant.id)
    ballots = [
        BallotFacts(id=i, status=s, definition=d, voted=v, credential=keys.get(i))
        for i, s, d, v in rows
    ]
    facts: dict[str, Any] = {"ballots": ballots}
    if any(b.status == OPEN for b in ballots):
        facts["ballot_tracker"] = new_tracker()
        if session.info[BEFORE] and state.get("step") == "confirm":
            held = state.get("data", {}).get(NAME) or {}
            chosen = next((b for b in ballots if b.id == held.get("id")), None)
            if chosen is not None and chosen.credential and chosen.status == OPEN:
                # Encrypted now, so the confirmation can give its tracker; YES stores it.
                # None if the tool failed: the flow then casts nothing and says so.
                facts["ballot_tracker"] = await belenios.prepare(
                    session,
                    participant.id,
                    chosen.id,
                    held.get("pending"),
                    chosen.definition,
                    timeout=vote_timeout,
                )
    return facts


async def record_vote(
    session: AsyncSession, ballot_id: str, participant_id: str, vote: Any, tracker: str
) -> None:
    """The vote stored with no voter and no time; the voter's previous vote, found by its
    link, marked replaced, unlinked and emptied; the roll says they voted."""
    row = (
        await session.execute(
            select(Ballot.status, Ballot.link_key, Ballot.definition)
            .where(Ballot.id == ballot_id)
            .with_for_update(read=True)
        )
    ).first()
    if row is None or row.status != OPEN or row.link_key is None:
        raise BallotClosed(ballot_id)
    definition = row.definition
    validate(
        definition["method"],
        count_options(ballot_id, definition),
        counted_shape(definition["method"], vote),
        **count_params(definition),
    )
    voted = await session.execute(
        update(BallotRoll)
        .where(
            BallotRoll.ballot_id == ballot_id,
            BallotRoll.participant_id == participant_id,
            BallotRoll.withdrawn.is_(False),
        )
        .values(voted=True)
    )
    if voted.rowcount != 1:
        raise BallotClosed(f"{ballot_id}: not on the roll")
    link = voter_link(row.link_key, ballot_id, participant_id)
    # Nothing keeps what a replaced vote said; its link is free before the new vote takes it.
    await session.execute(
        update(BallotVote)
        .where(BallotVote.ballot_id == ballot_id, BallotVote.voter_link == link)
        .values(status=REPLACED, voter_link=None, choice=None)
    )
    await session.execute(
        insert(BallotVote).values(
            id=uuid.uuid4(),
            ballot_id=ballot_id,
            choice=vote,
            tracker=tracker,
            status=COUNTED,
            voter_link=link,
        )
    )


async def voters_in(session: AsyncSession, messages, known) -> set[int]:
    """For a batch of inbound messages: those from people on a ballot's roll or in the
    ballot's conversation, whose text may be a vote to blank (no query: their states)."""
    found = set()
    for n, (channel, address, _) in enumerate(messages):
        person = known.get((channel, address))
        state = (person[1].state or {}) if person else {}
        if state.get("flow") == NAME or state.get("data", {}).get(ON_ROLL):
            found.add(n)
    return found


def register(relay: Relay) -> None:
    async def remember_record(session: AsyncSession, *, record_id: int, **_: Any) -> None:
        session.info[RECORD] = record_id

    async def cast(session: AsyncSession, participant, event, now) -> None:
        # The vote leaves the state before anything is written: no row, not even one
        # overwritten later in this transaction, ever holds it beside its voter.
        state = dict(participant.state)
        data = dict(state.get("data", {}))
        vote = data.pop(CAST)
        participant.state = {**state, "data": data}
        session.info[CAST] = True
        if await belenios.record(session, vote["ballot"], participant.id, vote["tracker"]):
            return  # the encrypted ballot stored; the choice itself nowhere
        await record_vote(session, vote["ballot"], participant.id, vote["vote"], vote["tracker"])

    async def after_turn(session: AsyncSession, settings, **_: Any) -> int:
        record = session.info.pop(RECORD, None)
        voted = session.info.pop(CAST, False)
        if record is not None and (session.info.pop(BEFORE, False) or voted):
            await session.execute(
                update(InboundMessage)
                .where(InboundMessage.id == record)
                .values(text="", button=None)
            )
        return 0

    async def withdrew(session: AsyncSession, participant, event, now) -> None:
        # Off the open ballots' rolls; a choice waiting for YES goes with them, and after
        # STOP a mark stays that it was not cast (told if they come back).
        await leave_open_rolls(session, participant.id)
        state = participant.state or {}
        data = dict(state.get("data", {}))
        held = data.pop(NAME, None)
        if isinstance(held, dict) and "pending" in held and event.kind == events.OPTED_OUT:
            data[UNCONFIRMED] = True
        if held is not None:
            participant.state = {**state, "data": data}

    async def facts(session: AsyncSession, participant: Participant) -> dict[str, Any] | None:
        return await ballot_facts(session, participant, relay.settings.belenios_vote_timeout)

    relay.hooks.provide_facts(facts)
    relay.hooks.on_event(events.WITHDREW, withdrew)
    relay.hooks.on_event(events.OPTED_OUT, withdrew)
    relay.hooks.before_inbound(remember_record, voters_in)
    relay.hooks.on_event(events.BALLOT_VOTE_CAST, cast)
    relay.hooks.after_turn(after_turn)
