"""A Belenios ballot in the service: the election set up when the ballot opens (each
voter's private credential kept until the close), the vote encrypted with the voter's
credential while they confirm it and stored with the vote, and at the close the archive
written with every ballot, tallied, decrypted, verified and published, and the
credentials deleted.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.ballots.belenios import election, files
from bot.services.ballots.belenios.tool import TIMEOUT, BeleniosError
from store.ballots import OPEN, Ballot, BallotRoll
from store.belenios import BeleniosBallot, BeleniosCredential, BeleniosElection

log = logging.getLogger(__name__)

SYSTEM = "belenios"
PREPARED = "belenios.prepared"  # session.info: {tracker: (ballot id, encrypted ballot)}


def used(definition: dict[str, Any]) -> bool:
    return definition.get("system") == SYSTEM


async def open_election(
    session: AsyncSession, root: str, language: str, ballot: Ballot, voters: list[str]
) -> BeleniosElection:
    """The election set up for the roll, in the opening's transaction (if that fails, the
    files left behind belong to no ballot and the next opening makes new ones)."""
    setup = await files.set_up(Path(root), ballot.id, ballot.definition, language, len(voters))
    row = BeleniosElection(
        ballot_id=ballot.id, uuid=setup.uuid, directory=str(setup.directory), trustees="service"
    )
    session.add(row)
    session.add_all(
        BeleniosCredential(ballot_id=ballot.id, participant_id=p, private=c)
        for p, c in zip(voters, setup.credentials, strict=True)
    )
    await session.flush()
    return row


async def credentials(session: AsyncSession, participant_id: str) -> dict[str, str]:
    """This voter's private credential in each open Belenios ballot."""
    rows = await session.execute(
        select(BeleniosCredential.ballot_id, BeleniosCredential.private).where(
            BeleniosCredential.participant_id == participant_id
        )
    )
    return {ballot: private for ballot, private in rows}


async def prepare(
    session: AsyncSession,
    participant_id: str,
    ballot_id: str,
    vote: Any,
    definition: dict,
    timeout: float = TIMEOUT,
) -> str | None:
    """The vote waiting for YES encrypted with the voter's credential: its tracker is said
    in the confirmation, and YES stores this very ballot (session.info). None when no
    ballot could be made, and then YES casts nothing.

    If belenios-tool fails (missing, an error, too slow) the turn still commits: the voter
    is told the vote was not cast and their choice waits for YES again, in their state as
    any unconfirmed choice does. Retrying later by ourselves would mean keeping a confirmed
    choice beside its voter outside the turn; failing the turn would lose the message
    (Twilio does not resend an SMS) or have Telegram resend it while the tool is down."""
    row = await session.get(BeleniosElection, ballot_id)
    private = await session.get(BeleniosCredential, (ballot_id, participant_id))
    if row is None or private is None or vote is None:
        return None
    choices = election.plaintext(ballot_id, definition, vote)
    try:
        ballot = await files.encrypt(
            Path(row.directory), row.uuid, private.private, choices, timeout=timeout
        )
    except (BeleniosError, OSError):
        log.warning("belenios-tool could not encrypt a vote in ballot %s", ballot_id)
        return None
    tracker = files.tracker(ballot)
    session.info.setdefault(PREPARED, {})[tracker] = (ballot_id, ballot)
    return tracker


async def record(session: AsyncSession, ballot_id: str, participant_id: str, tracker: str) -> bool:
    """Store the ballot prepared in this turn; False when the ballot is not a Belenios one."""
    if await session.get(BeleniosElection, ballot_id) is None:
        return False
    status = await session.scalar(
        select(Ballot.status).where(Ballot.id == ballot_id).with_for_update(read=True)
    )
    prepared = session.info.get(PREPARED, {}).pop(tracker, None)
    if status != OPEN or prepared is None or prepared[0] != ballot_id:
        raise BeleniosError(f"{ballot_id}: no ballot was prepared for this vote")
    voted = await session.execute(
        update(BallotRoll)
        .where(BallotRoll.ballot_id == ballot_id, BallotRoll.participant_id == participant_id)
        .values(voted=True)
    )
    if voted.rowcount != 1:
        raise BeleniosError(f"{ballot_id}: not on the roll")
    session.add(BeleniosBallot(ballot_id=ballot_id, ballot=prepared[1], tracker=tracker))
    await session.flush()
    return True


async def ballots_of(session: AsyncSession, ballot_id: str) -> list[BeleniosBallot]:
    return list(
        (
            await session.execute(
                select(BeleniosBallot)
                .where(BeleniosBallot.ballot_id == ballot_id)
                .order_by(BeleniosBallot.id)
            )
        ).scalars()
    )


async def election_of(session: AsyncSession, ballot_id: str) -> BeleniosElection:
    row = await session.get(BeleniosElection, ballot_id)
    if row is None:
        raise BeleniosError(f"Ballot {ballot_id} is not a Belenios election.")
    return row


async def close_election(
    session: AsyncSession, ballot: Ballot, voters: int, voted: int
) -> dict[str, Any]:
    """Every ballot into the archive in the order cast, the tally, its decryption by the
    service's trustee and the result, checked by belenios-tool; the results as the
    service publishes any ballot's; the private credentials deleted."""
    from bot.services.ballots.records import quorum_needed
    from bot.services.ballots.tallying import digest

    row = await election_of(session, ballot.id)
    stored = await ballots_of(session, ballot.id)
    box = [b.ballot for b in stored]
    path = await files.build(Path(row.directory), row.uuid, box, final=True)
    counts = files.result_of(path)[0]
    tally = election.tally_of(ballot.id, ballot.definition, counts, files.counted(box))
    plain_tally = json.loads(json.dumps(asdict(tally), default=list))
    late = files.replaced(box)
    trackers = sorted(
        [b.tracker, None, "replaced" if gone else "counted"]
        for b, gone in zip(stored, late, strict=True)
    )
    needed = quorum_needed(ballot.definition, voters)
    results: dict[str, Any] = {
        "ballot": ballot.id,
        "method": ballot.definition["method"],
        "voters": voters,
        "voted": voted,
        "quorum": needed,
        "quorum_met": voted >= needed,
        "tally": plain_tally,
        "trackers": trackers,
        "belenios": {
            "uuid": row.uuid,
            "archive": path.name,
            "archive_sha256": files.sha256_file(path),
            "result": [counts],
            "ballots_in_box": len(box),
            "trustees": row.trustees,
        },
    }
    results["trackers_sha256"] = digest(trackers)
    results["results_sha256"] = digest({k: results[k] for k in sorted(results)})
    await session.execute(
        delete(BeleniosCredential).where(BeleniosCredential.ballot_id == ballot.id)
    )
    return results


async def archive_path(session: AsyncSession, ballot: Ballot) -> Path:
    """The published archive of a closed ballot; while open, a snapshot of the box so far
    (the ballots cast, no result)."""
    row = await election_of(session, ballot.id)
    if ballot.status == OPEN:
        box = [b.ballot for b in await ballots_of(session, ballot.id)]
        return await files.build(Path(row.directory), row.uuid, box, final=False)
    return files.archive(Path(row.directory), row.uuid)
