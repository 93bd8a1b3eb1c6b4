"""The draw's records: its rules, its input gathered from the registrations, the run,
selection rows and audit event written together, and their verification by a re-run.

The solve runs outside any transaction (worker.py); these functions read before it and
write after it, in the caller's session.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.draw.rules import (
    Bounds,
    Draw,
    DrawError,
    DrawInput,
    Quotas,
    ReplaceInput,
    Replacement,
    Respondent,
    quota_bounds,
    seed_number,
)
from store import audit
from store.draw_records import (
    DONE,
    PUBLISHED,
    REPLACE,
    SELECT,
    SUPERSEDED,
    DrawRun,
    completed_selection,
    new_draw_id,
)
from store.models import utcnow
from store.recruitment import (
    CONFIRMED,
    DECLINED,
    REGISTERED,
    RESERVE,
    SELECTED,
    Invitation,
    Selection,
    draw_candidates,
)


class DrawRecordError(RuntimeError):
    """The draw cannot be gathered, recorded or verified as asked; the message says why and
    what to do."""


# ------------------------------------------------------------------- the assembly's rules


@dataclass(frozen=True)
class DrawRules:
    quotas: Quotas
    panel_size: int
    reserve_size: int
    one_per_household: bool
    # The organisers' outer limits per value (the stratification app's min_flex/max_flex):
    # how far a quota may be relaxed when the draw cannot meet it. Not part of the draw.
    flex: Quotas = field(default_factory=dict, compare=False)


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _plain(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def rules_from_file(path: Path) -> DrawRules:
    """The draw's rules from a TOML file: panel_size, reserve_size, one_per_household and
    [quotas.<category>] tables of value = {min = .., max = ..} or value = share."""
    import tomllib

    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DrawRecordError(f"{path}: file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise DrawRecordError(f"{path}: not valid TOML: {error}") from None
    unknown = sorted(set(data) - {"panel_size", "reserve_size", "one_per_household", "quotas"})
    if unknown:
        raise DrawRecordError(
            f"{path}: unknown setting(s) {', '.join(unknown)} (known: "
            "panel_size, reserve_size, one_per_household, [quotas.*])"
        )
    if not isinstance(data.get("reserve_size", 0), int) or data.get("reserve_size", 0) < 0:
        raise DrawRecordError(f"{path}: reserve_size must be a whole number, 0 or more")
    if not isinstance(data.get("one_per_household", False), bool):
        raise DrawRecordError(f"{path}: one_per_household must be true or false")
    try:
        return rules_from_assembly(data)
    except DrawRecordError as error:
        raise DrawRecordError(f"{path}: {error}") from None


def recorded_rules(run: DrawRun) -> DrawRules:
    """The rules the panel was drawn under: replacements keep to them."""
    data = run.payload["input"]
    quotas = {c: {v: Bounds(*b) for v, b in values.items()} for c, values in data["quotas"].items()}
    return DrawRules(
        quotas, data["panel_size"], data.get("reserve_size", 0), data["one_per_household"]
    )


def rules_for(assembly: Any, quotas_file: Path | None) -> DrawRules:
    """The assembly's rules, or a quota file's: TOML with sizes and quotas, or the
    stratification app's categories CSV (quotas only; the sizes from the assembly)."""
    if quotas_file and Path(quotas_file).suffix.lower() == ".csv":
        return rules_from_csv(quotas_file, assembly)
    return rules_from_file(quotas_file) if quotas_file else rules_from_assembly(assembly)


def rules_from_csv(path: Path, assembly: Any) -> DrawRules:
    from bot.services.draw.quota_files import QuotaFileError, read_categories_csv

    section = _get(assembly, "selection") or _get(assembly, "draw") or assembly
    panel_size = _get(section, "panel_size")
    if not isinstance(panel_size, int) or panel_size < 1:
        raise DrawRecordError(
            f"{path} gives the quotas but not the panel size: add panel_size (and "
            "reserve_size, one_per_household) to the assembly file's [selection] table."
        )
    try:
        quotas, flex = read_categories_csv(path, panel_size)
    except QuotaFileError as error:
        raise DrawRecordError(str(error)) from None
    base = DrawRules(
        quotas,
        panel_size,
        int(_get(section, "reserve_size", 0) or 0),
        bool(_get(section, "one_per_household", False)),
    )
    return replace(base, flex=flex)


def rules_from_assembly(assembly: Any) -> DrawRules:
    """Panel size, reserve size, one-per-household and quotas from the assembly file."""
    section = _get(assembly, "selection") or _get(assembly, "draw") or assembly
    panel_size = _get(section, "panel_size")
    if not panel_size:
        raise DrawRecordError(
            "No panel size for the draw: add a [selection] table with "
            "panel_size and quotas to the assembly file (see "
            "examples/citizens-jury/assembly.toml), or give --quotas FILE."
        )
    if not isinstance(panel_size, int) or panel_size < 1:
        raise DrawRecordError(f"panel_size must be a positive whole number, not {panel_size!r}.")
    quotas_spec = _plain(_get(section, "quotas") or _get(assembly, "quotas") or {})
    if isinstance(quotas_spec, list):  # [{category, value, min, max}] rows
        table: dict[str, dict[str, Any]] = {}
        for row in map(_plain, quotas_spec):
            category = next((row[k] for k in ("category", "question", "feature") if k in row), None)
            value = next((row[k] for k in ("value", "option", "key") if k in row), None)
            if category is None or value is None:
                raise DrawRecordError(f"A quota row names no category and value: {row}")
            table.setdefault(str(category), {})[str(value)] = row
        quotas_spec = table
    if not quotas_spec:
        raise DrawRecordError(
            "No quotas for the draw: add [selection.quotas.<category>] "
            "tables to the assembly file, or give --quotas FILE."
        )
    try:
        quotas = quota_bounds(quotas_spec, int(panel_size))
    except DrawError as error:
        raise DrawRecordError(error.message) from None
    return DrawRules(
        quotas=quotas,
        panel_size=int(panel_size),
        reserve_size=int(_get(section, "reserve_size", 0) or 0),
        one_per_household=bool(_get(section, "one_per_household", False)),
    )


# ------------------------------------------------------------------------ gathering input


def _respondent(row: dict[str, Any]) -> Respondent:
    return Respondent(
        id=row["participant_id"],
        household=row["household_id"],
        attributes={k: str(v) for k, v in (row["features"] or {}).items() if v is not None},
    )


async def draw_input(session: AsyncSession, rules: DrawRules) -> DrawInput:
    respondents = [_respondent(row) for row in await draw_candidates(session)]
    return DrawInput(
        respondents,
        rules.quotas,
        rules.panel_size,
        rules.reserve_size,
        rules.one_per_household,
        flex=rules.flex,
    )


async def replace_input(
    session: AsyncSession, rules: DrawRules, leaving: list[str]
) -> ReplaceInput:
    rows = {s.participant_id: s for s in (await session.execute(select(Selection))).scalars()}
    unknown = [pid for pid in leaving if pid not in rows]
    if unknown:
        raise DrawRecordError(f"Not drawn, so nothing to replace: {', '.join(unknown)}.")
    not_on_panel = [pid for pid in leaving if rows[pid].status == RESERVE]
    if not_on_panel:
        raise DrawRecordError(f"On the reserve, not the panel: {', '.join(not_on_panel)}.")
    candidates = {row["participant_id"]: _respondent(row) for row in await draw_candidates(session)}
    kept = sorted(
        pid for pid, s in rows.items() if s.status in (SELECTED, CONFIRMED) and pid not in leaving
    )
    reserve = [
        s.participant_id
        for s in sorted(rows.values(), key=lambda s: (s.reserve_rank or 0, s.id))
        if s.status == RESERVE and s.participant_id in candidates
    ]
    others = sorted(pid for pid in candidates if pid not in rows)
    # Those staying are described as at the draw if they are no longer registered.
    recorded = await _recorded_respondents(session)
    people = []
    for pid in [*kept, *reserve, *others]:
        person = candidates.get(pid) or recorded.get(pid)
        if person is None:
            raise DrawRecordError(f"No answers on record for panel member {pid}.")
        people.append(person)
    return ReplaceInput(
        people,
        rules.quotas,
        rules.panel_size,
        kept,
        sorted(leaving),
        [reserve, others],
        rules.one_per_household,
    )


async def _recorded_respondents(session: AsyncSession) -> dict[str, Respondent]:
    done = await completed_selection(session)
    if done is None:
        return {}
    return {
        row["id"]: Respondent(row["id"], row["household"], row["attributes"])
        for row in done.payload["input"]["respondents"]
    }


# ------------------------------------------------------------------------------ recording


async def refuse_second_draw(session: AsyncSession) -> None:
    done = await completed_selection(session)
    if done is not None:
        raise DrawRecordError(
            f"The panel was already drawn ({done.draw_id}, {done.created_at:%Y-%m-%d %H:%M} "
            "UTC). Use `concorder replace` for people who drop out, or `concorder select "
            "--verify` to check that draw."
        )


async def _new_draw_run(
    session: AsyncSession, result: Draw, payload: dict[str, Any], status: str, now: datetime
) -> DrawRun:
    """The record of a first draw (refused if one exists), flushed to get its id."""
    await refuse_second_draw(session)
    run = DrawRun(
        draw_id=new_draw_id(),
        kind=SELECT,
        status=status,
        seed=payload["seed"],
        algorithm=payload["algorithm"],
        library_version=result.audit["library_version"],
        input_sha256=result.audit["input_sha256"],
        payload=payload,
        result=_result_record(result),
        lowest_probability=result.lowest_probability,
        created_at=now,
    )
    session.add(run)
    await session.flush()
    return run


async def record_selection(
    session: AsyncSession,
    result: Draw,
    payload: dict[str, Any],
    published: DrawRun | None = None,
    now: datetime | None = None,
) -> DrawRun:
    """The draw run, one selection row per person drawn and the audit event, together."""
    now = now or utcnow()
    run = await _new_draw_run(session, result, payload, DONE, now)
    existing = {s.participant_id for s in (await session.execute(select(Selection))).scalars()}
    clash = existing & {*result.selected, *result.reserve}
    if clash:
        raise DrawRecordError(f"Selection rows already exist for {', '.join(sorted(clash))}.")
    # Someone may have withdrawn since the input was read (a lottery's pick can come days
    # after its publication): their place is recorded as declined, never offered.
    drawn = [*result.selected, *result.reserve]
    still = set(
        (
            await session.execute(
                select(Invitation.participant_id).where(
                    Invitation.participant_id.in_(drawn), Invitation.status == REGISTERED
                )
            )
        ).scalars()
    )
    gone = sorted(set(drawn) - still)
    for pid in result.selected:
        status = SELECTED if pid in still else DECLINED
        session.add(
            Selection(
                participant_id=pid,
                draw_id=run.draw_id,
                status=status,
                selected_at=now,
                reason=None if pid in still else "withdrawn",
            )
        )
    for rank, pid in enumerate(result.reserve, start=1):
        status = RESERVE if pid in still else DECLINED
        session.add(
            Selection(
                participant_id=pid,
                draw_id=run.draw_id,
                status=status,
                reserve_rank=rank,
                selected_at=now,
                reason=None if pid in still else "withdrawn",
            )
        )
    if published is not None:
        published.status = SUPERSEDED
    event = await audit.append(
        session,
        "draw.completed",
        {"draw": run.draw_id, **result.audit, "withdrawn_since": gone},
        at=now,
        linked=True,
    )
    run.audit_seq = event.seq
    run.result = {**run.result, "withdrawn_since": gone}
    return run


async def record_publication(
    session: AsyncSession, result: Draw, payload: dict[str, Any], now: datetime | None = None
) -> DrawRun:
    now = now or utcnow()
    run = await _new_draw_run(session, result, payload, PUBLISHED, now)
    event = await audit.append(
        session, "draw.panels_published", {"draw": run.draw_id, **result.audit}, at=now, linked=True
    )
    run.audit_seq = event.seq
    return run


async def record_replacement(
    session: AsyncSession, result: Replacement, payload: dict[str, Any], now: datetime | None = None
) -> DrawRun:
    now = now or utcnow()
    data = payload["input"]
    run = DrawRun(
        draw_id=new_draw_id(),
        kind=REPLACE,
        status=DONE,
        seed=payload["seed"],
        algorithm=payload["algorithm"],
        library_version=result.audit["library_version"],
        input_sha256=result.audit["input_sha256"],
        payload=payload,
        result={
            "added": result.added,
            "tier": result.tier,
            "quota_table": [vars(row) for row in result.quota_table],
        },
        created_at=now,
    )
    session.add(run)
    await session.flush()
    rows = {
        s.participant_id: s
        for s in (await session.execute(select(Selection).with_for_update())).scalars()
    }
    kept_now = sorted(
        pid
        for pid, s in rows.items()
        if s.status in (SELECTED, CONFIRMED) and pid not in data["leaving"]
    )
    if kept_now != data["kept"]:
        raise DrawRecordError(
            "The panel changed while the replacements were drawn; run the command again."
        )
    for pid in data["leaving"]:
        row = rows[pid]
        if row.status != DECLINED:
            row.status, row.reason, row.responded_at = DECLINED, "dropped_out", now
    for pid in result.added:
        row = rows.get(pid)
        if row is None:
            row = Selection(participant_id=pid)
            session.add(row)
        row.draw_id, row.status, row.reserve_rank = run.draw_id, SELECTED, None
        row.selected_at, row.notified_at, row.confirm_by = now, None, None
        row.responded_at, row.reason = None, None
    event = await audit.append(
        session,
        "draw.replaced",
        {
            "draw": run.draw_id,
            **result.audit,
            "leaving": data["leaving"],
            "added": result.added,
            "from_reserve": result.tier == 0,
        },
        at=now,
        linked=True,
    )
    run.audit_seq = event.seq
    return run


def _result_record(result: Draw) -> dict[str, Any]:
    return {
        "selected": result.selected,
        "reserve": result.reserve,
        "panels": [p["sha256"] for p in result.published_panels],
        "pick": result.pick,
        "lowest_probability": result.lowest_probability,
        "mean_probability": result.mean_probability,
        "quota_table": [vars(row) for row in result.quota_table],
        "notes": result.notes,
        # Every respondent's selection probability, by pseudonym (exact, or estimated from
        # repeated draws as `estimate` says), and how the solve and the rounding went.
        "probabilities": result.probabilities,
        "estimate": result.estimate,
        "lottery": result.lottery,
        "solve": result.solve,
    }


def select_payload(
    result: Draw,
    seed: str,
    algorithm: str,
    panels: int,
    pick_seed: str | None,
    pick_number: int | None = None,
) -> dict[str, Any]:
    """What re-runs this draw: the input, seed, algorithm, the solver backend and the
    versions of the packages its result depends on."""
    payload = {
        "mode": "select",
        "input": result.canonical_input,
        "seed": seed,
        "seed_number": seed_number(seed),
        "algorithm": algorithm,
        "panels": panels,
        "pick_seed": pick_seed,
        "solver_backend": result.audit["solver_backend"],
        "versions": result.audit.get("versions"),
    }
    if pick_number is not None:
        payload["pick_number"] = pick_number
    return payload


def replace_payload(result: Replacement, seed: str, algorithm: str) -> dict[str, Any]:
    """What re-runs this replacement: the input, seed and algorithm."""
    return {
        "mode": "replace",
        "input": result.canonical_input,
        "seed": seed,
        "seed_number": seed_number(seed),
        "algorithm": algorithm,
    }
