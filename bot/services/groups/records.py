"""The small-group allocation's records: its input gathered from the confirmed panel, the
run, seats and audit event written together, the organisers' moves, and the check that a
re-run from the recorded input gives the recorded tables.

The allocation itself is pure (allocate.py); these functions read before it and write
after it, in the caller's session. The audit trail names people by pseudonym only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.groups.allocate import (
    ALGORITHM,
    AllocationError,
    Comparison,
    Member,
    Pin,
    Problem,
    allocate,
    letter,
    problem_from,
    sha256_of,
)
from store import audit
from store.draw_records import DONE, DrawRun, completed_selection
from store.groups import CURRENT, REPLACED, GroupRun, GroupSeat, current_run, seats_of
from store.models import Participant, utcnow
from store.recruitment import CONFIRMED, Selection, draw_candidates


class GroupsError(RuntimeError):
    """The tables cannot be gathered, recorded, moved or verified as asked; the message
    says why and what to do."""


# ------------------------------------------------------------------------ gathering input


async def panel_members(session: AsyncSession) -> tuple[list[Member], list[str]]:
    """The confirmed panel (id, language, the draw's category values) and the categories
    of the draw's quotas."""
    done = await completed_selection(session)
    if done is None:
        raise GroupsError("No panel has been drawn yet: run `concorder select` first.")
    categories = sorted(done.payload["input"].get("quotas") or {})
    rows = (
        await session.execute(
            select(Participant.id, Participant.language)
            .join(Selection, Selection.participant_id == Participant.id)
            .where(Selection.status == CONFIRMED, Participant.erased_at.is_(None))
            .order_by(Participant.id)
        )
    ).all()
    if not rows:
        raise GroupsError(
            "Nobody has confirmed a place on the panel yet: tables are made of the "
            "confirmed panel (`concorder status` shows who has confirmed)."
        )
    # The values the draw was given (later draws, replacements, win), else the answers now.
    known: dict[str, dict[str, str]] = {
        row["participant_id"]: {k: str(v) for k, v in (row["features"] or {}).items()}
        for row in await draw_candidates(session)
    }
    runs = (
        (await session.execute(select(DrawRun).where(DrawRun.status == DONE).order_by(DrawRun.id)))
        .scalars()
        .all()
    )
    for run in runs:
        for person in run.payload["input"].get("respondents") or []:
            known[person["id"]] = {k: str(v) for k, v in person["attributes"].items()}
    members = [
        Member(pid, language, {c: known.get(pid, {}).get(c, "") for c in categories})
        for pid, language in rows
    ]
    return members, categories


def parse_pin(text: str) -> Pin:
    """PERSON:TABLE or PERSON:TABLE:ROUND (the person by participant id)."""
    parts = text.split(":")
    try:
        if len(parts) not in (2, 3) or not parts[0]:
            raise ValueError
        table = int(parts[1])
        round_no = int(parts[2]) if len(parts) == 3 else None
    except ValueError:
        raise GroupsError(
            f"A pin is PARTICIPANT:TABLE or PARTICIPANT:TABLE:ROUND, not {text!r}."
        ) from None
    return Pin(parts[0].strip().upper(), table, round_no)


# ------------------------------------------------------------------------------ recording


@dataclass(frozen=True)
class Recorded:
    run: GroupRun
    replaced: str | None


def result_record(comparison: Comparison) -> dict[str, Any]:
    return {
        "tables": comparison.ours.plain(),
        "quality": {
            "ours": comparison.ours.quality.as_dict(),
            "random": comparison.random.quality.as_dict(),
            "best_of_100": comparison.best_of_shuffles.quality.as_dict(),
        },
    }


def already_allocated(run: GroupRun) -> str:
    return (
        f"Tables are already allocated ({run.run_id}, {run.created_at:%Y-%m-%d %H:%M} UTC). "
        "Give --replace to allocate again, or `concorder groups move` to change one seat."
    )


async def record_allocation(
    session: AsyncSession,
    problem: Problem,
    comparison: Comparison,
    *,
    replace: bool = False,
    now: datetime | None = None,
) -> Recorded:
    """The run, one seat per member per round and the audit event, together. An existing
    allocation is refused unless `replace`; then its seats go and its record stays."""
    now = now or utcnow()
    old = await current_run(session)
    if old is not None and not replace:
        raise GroupsError(already_allocated(old))
    if old is not None:
        old.status = REPLACED
        await session.flush()  # before the new run, which the one-current index checks
        await session.execute(delete(GroupSeat).where(GroupSeat.run_id == old.run_id))
    payload = problem.canonical()
    result = result_record(comparison)
    run = GroupRun(
        status=CURRENT,
        seed=problem.seed,
        algorithm=ALGORITHM,
        input_sha256=sha256_of(payload),
        payload=payload,
        result=result,
        moves=[],
        created_at=now,
    )
    session.add(run)
    await session.flush()
    session.add_all(seats_from(run.run_id, result["tables"]))
    event = await audit.append(
        session,
        "groups.assigned",
        {
            "run": run.run_id,
            "seed": problem.seed,
            "algorithm": ALGORITHM,
            "input_sha256": run.input_sha256,
            "tables_sha256": sha256_of(result["tables"]),
            "members": len(problem.members),
            "rounds": problem.rounds,
            "tables": len(result["tables"][0]),
            "pins": len(problem.pins),
            "replaces": old.run_id if old is not None else None,
        },
        at=now,
        linked=True,
    )
    run.audit_seq = event.seq
    return Recorded(run, old.run_id if old is not None else None)


def seats_from(run_id: str, tables: list[list[list[str]]]) -> list[GroupSeat]:
    return [
        GroupSeat(
            run_id=run_id,
            round=r,
            table_no=t,
            letter=letter(position),
            participant_id=pid,
        )
        for r, per_round in enumerate(tables, start=1)
        for t, table in enumerate(per_round, start=1)
        for position, pid in enumerate(table)
    ]


# ---------------------------------------------------------------------------------- moves


def apply_moves(tables: list[list[list[str]]], moves: list[dict[str, Any]]) -> dict:
    """Seats {(round, participant): (table, letter)} from the allocated tables and the
    moves since, in order."""
    seats = {
        (r, pid): (t, letter(position))
        for r, per_round in enumerate(tables, start=1)
        for t, table in enumerate(per_round, start=1)
        for position, pid in enumerate(table)
    }
    for move in moves:
        seats[(move["round"], move["member"])] = (move["to"], move["letter"])
    return seats


def _next_letter(taken: set[str]) -> str:
    index = 0
    while letter(index) in taken:
        index += 1
    return letter(index)


@dataclass(frozen=True)
class Move:
    run_id: str
    member: str
    round: int
    old_table: int
    new_table: int
    letter: str
    sizes_after: dict[int, int]
    language: str = ""
    language_elsewhere: str = ""  # the table's language(s), when not the member's


async def move_member(
    session: AsyncSession,
    participant_id: str,
    round_no: int,
    table: int,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
) -> Move:
    """Seat a member at another table for one round: they take the first free letter
    there; the others keep theirs, and both tables are due to be told again. Recorded on
    the run and audited."""
    now = now or utcnow()
    run = await current_run(session)
    if run is None:
        raise GroupsError("No tables are allocated yet: run `concorder groups assign` first.")
    rounds = run.payload["rounds"]
    if not 1 <= round_no <= rounds:
        raise GroupsError(f"Round {round_no}? This allocation has rounds 1-{rounds}.")
    seats = await seats_of(session, run.run_id, round_no, lock=True)
    tables = sorted({s.table_no for s in seats})
    if table not in tables:
        raise GroupsError(f"Table {table}? Round {round_no} has tables 1-{max(tables)}.")
    mine = next((s for s in seats if s.participant_id == participant_id), None)
    if mine is None:
        raise GroupsError(f"{participant_id} has no seat in round {round_no}.")
    if mine.table_no == table:
        raise GroupsError(f"{participant_id} already sits at table {table} in round {round_no}.")
    new_letter = _next_letter({s.letter for s in seats if s.table_no == table})
    old_table = mine.table_no
    sizes = {t: sum(1 for s in seats if s.table_no == t) for t in tables}
    sizes[old_table] -= 1
    sizes[table] += 1
    spoken = {m["id"]: m["language"] for m in run.payload["members"]}
    language = spoken.get(participant_id, "")
    there = sorted({spoken.get(s.participant_id, "") for s in seats if s.table_no == table})
    elsewhere = ", ".join(there) if there and there != [language] else ""
    move = Move(
        run.run_id,
        participant_id,
        round_no,
        old_table,
        table,
        new_letter,
        sizes,
        language,
        elsewhere,
    )
    if dry_run:
        return move
    # Both tables change: everyone at them is told their table again by the next notify.
    for seat in seats:
        if seat.table_no in (old_table, table):
            seat.notified_at = None
    mine.table_no, mine.letter = table, new_letter
    record = {"member": participant_id, "round": round_no, "from": old_table, "to": table}
    run.moves = [*run.moves, {**record, "letter": new_letter, "at": now.isoformat()}]
    await audit.append(
        session,
        "groups.moved",
        {"run": run.run_id, **{k: v for k, v in record.items() if k != "member"}},
        participant_id=participant_id,
        at=now,
    )
    return move


# --------------------------------------------------------------------------- verification


@dataclass
class Check:
    run_id: str
    differences: list[str]

    @property
    def ok(self) -> bool:
        return not self.differences


async def _audited(session: AsyncSession, run: GroupRun) -> dict[str, Any] | None:
    from store.models import AuditEvent

    if not run.audit_seq:
        return None
    event = (
        await session.execute(select(AuditEvent).where(AuditEvent.seq == run.audit_seq))
    ).scalar_one_or_none()
    return event.data if event is not None else None


async def verify_allocation(session: AsyncSession) -> Check:
    """Re-run the current allocation from its recorded input and compare: the input with
    the audit trail, the re-run with the recorded tables, the tables and the moves with
    the seats."""
    run = await current_run(session)
    if run is None:
        raise GroupsError("No tables are allocated yet: nothing to verify.")
    differences: list[str] = []
    audited = await _audited(session, run)
    input_hash = sha256_of(run.payload)
    if audited is None:
        differences.append("no audit event records this allocation")
    else:
        for key, value in (
            ("input_sha256", input_hash),
            ("seed", run.payload.get("seed")),
            ("tables_sha256", sha256_of(run.result["tables"])),
        ):
            if audited.get(key) != value:
                differences.append(f"the recorded {key} does not match the audit trail")
    try:
        again = allocate(problem_from(run.payload)).ours.plain()
    except (AllocationError, KeyError, TypeError) as error:
        differences.append(f"the re-run failed: {error}")
        return Check(run.run_id, differences)
    if again != run.result["tables"]:
        differently = sum(
            1
            for r, per_round in enumerate(again)
            for t, table in enumerate(per_round)
            if r >= len(run.result["tables"])
            or t >= len(run.result["tables"][r])
            or table != run.result["tables"][r][t]
        )
        differences.append(f"the re-run gives other tables ({differently} differ)")
    expected = apply_moves(run.result["tables"], run.moves)
    found = {
        (s.round, s.participant_id): (s.table_no, s.letter)
        for s in await seats_of(session, run.run_id)
    }
    for key in sorted(set(expected) | set(found)):
        if expected.get(key) != found.get(key):
            r, pid = key
            differences.append(
                f"round {r}, {pid}: recorded {_seat(expected.get(key))}, "
                f"seated {_seat(found.get(key))}"
            )
    return Check(run.run_id, differences)


def _seat(seat: tuple[int, str] | None) -> str:
    return "no seat" if seat is None else f"table {seat[0]} as {seat[1]}"
