"""`concorder select` and `concorder replace`: the stratified draw, recorded and audited.

The draw reads the registered respondents (pseudonymous ids, household, answers), runs the
`sortition-algorithms` library (bot.draw) outside any transaction, then writes in one
transaction the draw run, the selection rows and the audit event. Telling people the
outcome (confirmation requests, reserve notices, thanks) is the recruitment feature's
`notify_draw_outcome`, called right after; `concorder notify-draw` resumes it if needed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import draw
from bot.cli import app
from bot.settings import Settings
from store import audit
from store.db import make_engine, sessionmaker, upgrade
from store.draw_records import (
    DONE,
    PUBLISHED,
    REPLACE,
    SELECT,
    SUPERSEDED,
    DrawRun,
    completed_selection,
    new_draw_id,
    published_lottery,
    runs,
)
from store.models import AuditEvent, utcnow
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

console = Console()
err = Console(stderr=True)

ASSEMBLY = typer.Option(None, "--assembly", help="The assembly file (TOML). "
                        "Default: CONCORDER_ASSEMBLY.")
ALGORITHM = typer.Option("maximin", "--algorithm", help="maximin (default, free CBC "
                         "solver), nash, leximin (needs Gurobi) or legacy.")
DRY_RUN = typer.Option(False, "--dry-run", help="Show what would happen; write nothing.")
QUOTAS = typer.Option(None, "--quotas", help="TOML file with panel_size, reserve_size, "
                      "one_per_household and [quotas.<category>] tables (value = {min = 2, "
                      "max = 4} or value = 0.25 as a target share). Default: the assembly "
                      "file's own.")
PUBLISH = typer.Option(None, "--publish", help="Where to write the list of panels (JSON). "
                       "Default: panels-<draw>.json.")
PARTICIPANTS = typer.Argument(None, metavar="PARTICIPANT...", help="Pseudonymous ids of panel "
                              "members who dropped out (none: fill places already free).")


class DrawCommandError(RuntimeError):
    """The command cannot go ahead; the message says why and what to do."""


# ------------------------------------------------------------------- the assembly's rules


@dataclass(frozen=True)
class DrawRules:
    quotas: draw.Quotas
    panel_size: int
    reserve_size: int
    one_per_household: bool


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
        raise DrawCommandError(f"{path}: file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise DrawCommandError(f"{path}: not valid TOML: {error}") from None
    unknown = sorted(set(data) - {"panel_size", "reserve_size", "one_per_household", "quotas"})
    if unknown:
        raise DrawCommandError(f"{path}: unknown setting(s) {', '.join(unknown)} (known: "
                               "panel_size, reserve_size, one_per_household, [quotas.*])")
    if not isinstance(data.get("reserve_size", 0), int) or data.get("reserve_size", 0) < 0:
        raise DrawCommandError(f"{path}: reserve_size must be a whole number, 0 or more")
    if not isinstance(data.get("one_per_household", False), bool):
        raise DrawCommandError(f"{path}: one_per_household must be true or false")
    try:
        return rules_from_assembly(data)
    except DrawCommandError as error:
        raise DrawCommandError(f"{path}: {error}") from None


def recorded_rules(run: DrawRun) -> DrawRules:
    """The rules the panel was drawn under: replacements keep to them."""
    data = run.payload["input"]
    quotas = {c: {v: draw.Bounds(*b) for v, b in values.items()}
              for c, values in data["quotas"].items()}
    return DrawRules(quotas, data["panel_size"], data.get("reserve_size", 0),
                     data["one_per_household"])


def rules_for(assembly: Any, quotas_file: Path | None) -> DrawRules:
    return rules_from_file(quotas_file) if quotas_file else rules_from_assembly(assembly)


def rules_from_assembly(assembly: Any) -> DrawRules:
    """Panel size, reserve size, one-per-household and quotas from the assembly file."""
    section = _get(assembly, "selection") or _get(assembly, "draw") or assembly
    panel_size = _get(section, "panel_size")
    if not panel_size:
        raise DrawCommandError("No panel size for the draw: add a [selection] table with "
                               "panel_size and quotas to the assembly file (see "
                               "examples/citizens-jury/assembly.toml), or give --quotas FILE.")
    if not isinstance(panel_size, int) or panel_size < 1:
        raise DrawCommandError(f"panel_size must be a positive whole number, not {panel_size!r}.")
    quotas_spec = _plain(_get(section, "quotas") or _get(assembly, "quotas") or {})
    if isinstance(quotas_spec, list):  # [{category, value, min, max}] rows
        table: dict[str, dict[str, Any]] = {}
        for row in map(_plain, quotas_spec):
            category = next((row[k] for k in ("category", "question", "feature") if k in row),
                            None)
            value = next((row[k] for k in ("value", "option", "key") if k in row), None)
            if category is None or value is None:
                raise DrawCommandError(f"A quota row names no category and value: {row}")
            table.setdefault(str(category), {})[str(value)] = row
        quotas_spec = table
    if not quotas_spec:
        raise DrawCommandError("No quotas for the draw: add [selection.quotas.<category>] "
                               "tables to the assembly file, or give --quotas FILE.")
    try:
        quotas = draw.quota_bounds(quotas_spec, int(panel_size))
    except draw.DrawError as error:
        raise DrawCommandError(error.message) from None
    return DrawRules(quotas=quotas, panel_size=int(panel_size),
                     reserve_size=int(_get(section, "reserve_size", 0) or 0),
                     one_per_household=bool(_get(section, "one_per_household", False)))


# ------------------------------------------------------------------------ gathering input


def _respondent(row: dict[str, Any]) -> draw.Respondent:
    return draw.Respondent(id=row["participant_id"], household=row["household_id"],
                           attributes={k: str(v) for k, v in (row["features"] or {}).items()
                                       if v is not None})


async def draw_input(session: AsyncSession, rules: DrawRules) -> draw.DrawInput:
    respondents = [_respondent(row) for row in await draw_candidates(session)]
    return draw.DrawInput(respondents, rules.quotas, rules.panel_size, rules.reserve_size,
                          rules.one_per_household)


async def replace_input(session: AsyncSession, rules: DrawRules,
                        leaving: list[str]) -> draw.ReplaceInput:
    rows = {s.participant_id: s for s in (await session.execute(select(Selection))).scalars()}
    unknown = [pid for pid in leaving if pid not in rows]
    if unknown:
        raise DrawCommandError(f"Not drawn, so nothing to replace: {', '.join(unknown)}.")
    not_on_panel = [pid for pid in leaving if rows[pid].status == RESERVE]
    if not_on_panel:
        raise DrawCommandError(f"On the reserve, not the panel: {', '.join(not_on_panel)}.")
    candidates = {row["participant_id"]: _respondent(row)
                  for row in await draw_candidates(session)}
    kept = sorted(pid for pid, s in rows.items()
                  if s.status in (SELECTED, CONFIRMED) and pid not in leaving)
    reserve = [s.participant_id for s in sorted(rows.values(),
                                                key=lambda s: (s.reserve_rank or 0, s.id))
               if s.status == RESERVE and s.participant_id in candidates]
    others = sorted(pid for pid in candidates if pid not in rows)
    # Those staying are described as at the draw if they are no longer registered.
    recorded = await _recorded_respondents(session)
    people = []
    for pid in [*kept, *reserve, *others]:
        person = candidates.get(pid) or recorded.get(pid)
        if person is None:
            raise DrawCommandError(f"No answers on record for panel member {pid}.")
        people.append(person)
    return draw.ReplaceInput(people, rules.quotas, rules.panel_size, kept, sorted(leaving),
                             [reserve, others], rules.one_per_household)


async def _recorded_respondents(session: AsyncSession) -> dict[str, draw.Respondent]:
    done = await completed_selection(session)
    if done is None:
        return {}
    return {row["id"]: draw.Respondent(row["id"], row["household"], row["attributes"])
            for row in done.payload["input"]["respondents"]}


# ------------------------------------------------------------------------------ recording


async def _refuse_second_draw(session: AsyncSession) -> None:
    done = await completed_selection(session)
    if done is not None:
        raise DrawCommandError(
            f"The panel was already drawn ({done.draw_id}, {done.created_at:%Y-%m-%d %H:%M} "
            "UTC). Use `concorder replace` for people who drop out, or `concorder select "
            "--verify` to check that draw.")


async def _new_draw_run(session: AsyncSession, result: draw.Draw, payload: dict[str, Any],
                        status: str, now: datetime) -> DrawRun:
    """The record of a first draw (refused if one exists), flushed to get its id."""
    await _refuse_second_draw(session)
    run = DrawRun(draw_id=new_draw_id(), kind=SELECT, status=status, seed=payload["seed"],
                  algorithm=payload["algorithm"], library_version=result.audit["library_version"],
                  input_sha256=result.audit["input_sha256"], payload=payload,
                  result=_result_record(result), lowest_probability=result.lowest_probability,
                  created_at=now)
    session.add(run)
    await session.flush()
    return run


async def record_selection(session: AsyncSession, result: draw.Draw, payload: dict[str, Any],
                           published: DrawRun | None = None,
                           now: datetime | None = None) -> DrawRun:
    """The draw run, one selection row per person drawn and the audit event, together."""
    now = now or utcnow()
    run = await _new_draw_run(session, result, payload, DONE, now)
    existing = {s.participant_id for s in (await session.execute(select(Selection))).scalars()}
    clash = existing & {*result.selected, *result.reserve}
    if clash:
        raise DrawCommandError(f"Selection rows already exist for {', '.join(sorted(clash))}.")
    # Someone may have withdrawn since the input was read (a lottery's pick can come days
    # after its publication): their place is recorded as declined, never offered.
    drawn = [*result.selected, *result.reserve]
    still = set((await session.execute(select(Invitation.participant_id).where(
        Invitation.participant_id.in_(drawn), Invitation.status == REGISTERED))).scalars())
    gone = sorted(set(drawn) - still)
    for pid in result.selected:
        status = SELECTED if pid in still else DECLINED
        session.add(Selection(participant_id=pid, draw_id=run.draw_id, status=status,
                              selected_at=now, reason=None if pid in still else "withdrawn"))
    for rank, pid in enumerate(result.reserve, start=1):
        status = RESERVE if pid in still else DECLINED
        session.add(Selection(participant_id=pid, draw_id=run.draw_id, status=status,
                              reserve_rank=rank, selected_at=now,
                              reason=None if pid in still else "withdrawn"))
    if published is not None:
        published.status = SUPERSEDED
    event = await audit.append(session, "draw.completed",
                               {"draw": run.draw_id, **result.audit, "withdrawn_since": gone},
                               at=now, linked=True)
    run.audit_seq = event.seq
    run.result = {**run.result, "withdrawn_since": gone}
    return run


async def record_publication(session: AsyncSession, result: draw.Draw, payload: dict[str, Any],
                             now: datetime | None = None) -> DrawRun:
    now = now or utcnow()
    run = await _new_draw_run(session, result, payload, PUBLISHED, now)
    event = await audit.append(session, "draw.panels_published",
                               {"draw": run.draw_id, **result.audit}, at=now, linked=True)
    run.audit_seq = event.seq
    return run


async def record_replacement(session: AsyncSession, result: draw.Replacement,
                             payload: dict[str, Any], now: datetime | None = None) -> DrawRun:
    now = now or utcnow()
    data = payload["input"]
    run = DrawRun(draw_id=new_draw_id(), kind=REPLACE, status=DONE, seed=payload["seed"],
                  algorithm=payload["algorithm"], library_version=result.audit["library_version"],
                  input_sha256=result.audit["input_sha256"], payload=payload,
                  result={"added": result.added, "tier": result.tier,
                          "quota_table": [vars(row) for row in result.quota_table]},
                  created_at=now)
    session.add(run)
    await session.flush()
    rows = {s.participant_id: s for s in (await session.execute(
        select(Selection).with_for_update())).scalars()}
    kept_now = sorted(pid for pid, s in rows.items()
                      if s.status in (SELECTED, CONFIRMED) and pid not in data["leaving"])
    if kept_now != data["kept"]:
        raise DrawCommandError("The panel changed while the replacements were drawn; run "
                               "the command again.")
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
    event = await audit.append(session, "draw.replaced", {
        "draw": run.draw_id, **result.audit, "leaving": data["leaving"],
        "added": result.added, "from_reserve": result.tier == 0}, at=now, linked=True)
    run.audit_seq = event.seq
    return run


def _result_record(result: draw.Draw) -> dict[str, Any]:
    return {"selected": result.selected, "reserve": result.reserve,
            "panels": [p["sha256"] for p in result.published_panels], "pick": result.pick,
            "lowest_probability": result.lowest_probability,
            "mean_probability": result.mean_probability,
            "quota_table": [vars(row) for row in result.quota_table], "notes": result.notes}


# ---------------------------------------------------------------------------- verifying


@dataclass
class RunCheck:
    draw_id: str
    kind: str
    differences: list[str]
    warnings: list[str]
    audited: dict[str, Any] | None = None  # the draw's audit event data

    @property
    def ok(self) -> bool:
        return not self.differences


def _compare(label: str, recorded: list[str], again: list[str], ordered: bool = False) -> list[str]:
    if recorded == again or (not ordered and sorted(recorded) == sorted(again)):
        return []
    only_recorded = sorted(set(recorded) - set(again))
    only_again = sorted(set(again) - set(recorded))
    if not only_recorded and not only_again:
        return [f"{label}: same people in another order "
                f"(recorded {', '.join(recorded)}; re-run {', '.join(again)})"]
    return [f"{label} differs: only in the record {', '.join(only_recorded) or '-'}; "
            f"only in the re-run {', '.join(only_again) or '-'}"]


async def check_record(session: AsyncSession, run: DrawRun
                       ) -> tuple[list[str], list[str], dict[str, Any] | None]:
    """The recorded payload against the audit trail, and the rows against the result."""
    differences: list[str] = []
    warnings: list[str] = []
    event = (await session.execute(select(AuditEvent).where(
        AuditEvent.seq == run.audit_seq))).scalar_one_or_none() if run.audit_seq else None
    input_hash = draw.sha256_of(run.payload["input"])
    if event is None:
        differences.append("no audit event records this draw")
    else:
        for key, value in (("input_sha256", input_hash), ("seed", run.payload["seed"]),
                           ("algorithm", run.payload["algorithm"])):
            if event.data.get(key) != value:
                differences.append(f"the recorded {key} does not match the audit trail "
                                   f"({value} vs {event.data.get(key)})")
        if event.data.get("library_version") != draw.library_version():
            warnings.append(f"recorded with {draw.LIBRARY} {event.data.get('library_version')},"
                            f" re-run with {draw.library_version()}")
    if run.kind == SELECT and run.status != PUBLISHED:
        rows = {s.participant_id for s in (await session.execute(select(Selection))).scalars()}
        missing = sorted(set(run.result["selected"]) - rows)
        if missing:
            differences.append(f"selected but with no selection row: {', '.join(missing)}")
    return differences, warnings, (event.data if event is not None else None)


def compare_audited(audited: dict[str, Any] | None, again: dict[str, Any]) -> list[str]:
    """The re-run against the hashes in the audit trail (which cannot be edited unseen)."""
    if not audited:
        return []
    found = {}
    if "added" in again:
        found["added_sha256"] = draw.panel_hash(again["added"])
    if again.get("panels"):
        found["panel_list_sha256"] = draw.panel_list_hash(
            [draw.panel_hash(p) for p in again["panels"]])
        found["pick_index"] = again.get("pick")
    if again.get("selected") is not None:
        found["selected_sha256"] = draw.panel_hash(again["selected"])
        found["reserve_sha256"] = draw.reserve_hash(again["reserve"])
    names = {"added_sha256": "replacements", "panel_list_sha256": "list of panels",
             "pick_index": "pick", "selected_sha256": "panel", "reserve_sha256": "reserve"}
    return [f"the re-run's {names[key]} does not match the audit trail"
            for key, value in found.items() if key in audited and audited[key] != value]


def compare_rerun(run: DrawRun, again: dict[str, Any]) -> list[str]:
    recorded = run.result
    if run.kind == REPLACE:
        return _compare("replacements", recorded["added"], again["added"])
    differences = []
    if recorded.get("panels"):
        again_hashes = [draw.panel_hash(p) for p in again.get("panels") or []]
        if again_hashes != recorded["panels"]:
            differences.append("the list of panels differs (list hash "
                               f"{draw.panel_list_hash(recorded['panels'])} recorded, "
                               f"{draw.panel_list_hash(again_hashes)} re-run)")
        if recorded.get("pick") != again.get("pick"):
            differences.append(f"the pick differs: panel {recorded.get('pick')} recorded, "
                               f"{again.get('pick')} re-run")
    if run.status != PUBLISHED:
        differences += _compare("panel", recorded["selected"], again.get("selected") or [])
        differences += _compare("reserve", recorded["reserve"], again.get("reserve") or [],
                                ordered=True)
    return differences


async def verify_draws(sessions: async_sessionmaker[AsyncSession],
                       progress: draw.Progress | None = None,
                       on_run: Callable[[DrawRun], None] | None = None) -> list[RunCheck]:
    async with sessions() as session:
        recorded = [r for r in await runs(session) if r.status != SUPERSEDED]
        if not recorded:
            raise DrawCommandError("No draw is recorded yet: nothing to verify.")
        checks = []
        for run in recorded:
            differences, warnings, audited = await check_record(session, run)
            checks.append(RunCheck(run.draw_id, run.kind, differences, warnings, audited))
        chain = await audit.verify(session)
        trail = RunCheck("audit trail", "audit", [] if chain.ok else [
            f"broken at event {chain.first_bad_seq}: {chain.reason}"], [])
    if on_run:
        for run in recorded:
            on_run(run)
    # One child process re-runs them all, in the order they were made.
    answers = await asyncio.to_thread(draw.rerun_many, [r.payload for r in recorded], progress)
    for run, check, again in zip(recorded, checks, answers, strict=True):
        if isinstance(again, draw.DrawError):
            check.differences.append(f"the re-run failed: {again.message}")
            continue
        check.differences += compare_rerun(run, again)
        check.differences += compare_audited(check.audited, again)
    return [trail, *checks]


# ------------------------------------------------------------------------------ display


@contextmanager
def solver_progress() -> Iterator[draw.Progress]:
    """A live line for long solves, fed by the library's progress events."""
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("Starting the selection", total=None)

        def on_event(event: dict[str, Any]) -> None:
            if event["event"] == "start":
                bar.update(task, description=event.get("message") or event["name"],
                           total=event.get("total"), completed=0)
            elif event["event"] == "update":
                bar.update(task, completed=event["current"],
                           description=event.get("message") or None)

        yield on_event


def show_quota_table(rows: list[draw.QuotaRow], title: str = "Quotas") -> None:
    table = Table(title=title)
    for name, justify in (("Category", "left"), ("Value", "left"), ("Pool", "right"),
                          ("Target", "right"), ("Selected", "right"), ("", "center")):
        table.add_column(name, justify=justify)
    for row in rows:
        target = str(row.min) if row.min == row.max else f"{row.min}–{row.max}"
        mark = "[green]✓[/]" if row.met else "[red]✗[/]"
        table.add_row(row.category, row.value, str(row.pool), target, str(row.selected), mark)
    console.print(table)


def show_draw(result: draw.Draw) -> None:
    show_quota_table(result.quota_table)
    if result.lowest_probability is not None:
        console.print(f"Selection probability: lowest {result.lowest_probability:.2%}, "
                      f"mean {result.mean_probability:.2%}.")
    else:
        console.print("Selection probabilities: not computed by the "
                      f"{result.audit['algorithm']} algorithm.")
    console.print(f"[bold]Selected ({len(result.selected)}):[/] {' '.join(result.selected)}")
    reserve = " ".join(f"{rank}.{pid}" for rank, pid in enumerate(result.reserve, start=1))
    console.print(f"[bold]Reserve, in order ({len(result.reserve)}):[/] {reserve or '-'}")
    for note in result.notes:
        console.print(f"[yellow]{note}[/]")


def show_audit(audit_data: dict[str, Any]) -> None:
    console.print(f"Seed {audit_data['seed']!r} (number {audit_data['seed_number']}), "
                  f"algorithm {audit_data['algorithm']}, {audit_data['library']} "
                  f"{audit_data['library_version']}, input sha256 {audit_data['input_sha256']}.")


def show_published(result: draw.Draw, path: Path | None) -> None:
    table = Table(title=f"{len(result.panels)} quota-compliant panels")
    table.add_column("#", justify="right")
    table.add_column("Panel sha256")
    for panel in result.published_panels:
        table.add_row(str(panel["index"]), panel["sha256"])
    console.print(table)
    console.print(f"List hash (in the audit trail): [bold]{result.audit['panel_list_sha256']}"
                  f"[/]." + (f" Published to {path}." if path else ""))
    console.print("Announce a pick seed nobody could know before now (e.g. tomorrow's "
                  "lottery numbers), then run `concorder select --pick-seed SEED`. The panel "
                  f"is number int(sha256(SEED), 16) mod {len(result.panels)}.")


def write_publication(result: draw.Draw, draw_id: str, path: Path) -> None:
    document = {
        "draw": draw_id,
        "seed": result.audit["seed"],
        "algorithm": result.audit["algorithm"],
        "library": f"{result.audit['library']} {result.audit['library_version']}",
        "input_sha256": result.audit["input_sha256"],
        "panel_hash": "sha256 of the sorted member ids joined by newlines",
        "list_hash": "sha256 of the panel hashes, in order, joined by newlines",
        "list_sha256": result.audit["panel_list_sha256"],
        "pick_rule": "index = int(sha256(pick seed as UTF-8), 16) mod number of panels",
        "panels": result.published_panels,
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------ commands


def _assembly(path: Path | None, settings: Settings) -> Any:
    from bot import cli_recruitment  # the recruitment feature loads and checks the file

    return cli_recruitment._assembly(path, settings)


def _with_db(settings: Settings, work: Callable[[async_sessionmaker[AsyncSession]], Any]) -> Any:
    async def go() -> Any:
        upgrade(settings.database_url)
        engine = make_engine(settings.database_url)
        try:
            return await work(sessionmaker(engine))
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]{message}[/]")
    return typer.Exit(code)


def _notify(settings: Settings, assembly: Any) -> None:
    from bot import recruitment

    async def work(sessions):
        return await recruitment.notify_draw_outcome(sessions, settings, assembly)

    told = _with_db(settings, work)
    summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(told.items()))
    console.print(f"Told the outcome: {summary or 'nobody new'}.")


@app.command("select")
def select_command(
    seed: str = typer.Option(None, "--seed", help="The seed, announced before the draw."),
    algorithm: str = ALGORITHM,
    panels: int = typer.Option(1, "--panels", min=1, help="Transparent lottery: compute M "
                               "quota-compliant panels and publish them; pick later."),
    pick_seed: str = typer.Option(None, "--pick-seed", help="Pick from the published panels "
                                  "with this seed, announced after they were published."),
    publish: Path = PUBLISH,
    verify: bool = typer.Option(False, "--verify", help="Re-run every recorded draw from the "
                                "audit trail and confirm the same result."),
    dry_run: bool = DRY_RUN,
    quotas_file: Path = QUOTAS,
    assembly_path: Path = ASSEMBLY,
) -> None:
    """Draw the panel and its ordered reserve among the registered respondents."""
    settings = Settings()
    if verify:
        _verify(settings)
        return
    assembly = _assembly(assembly_path, settings)
    try:
        if pick_seed is not None:
            _pick(settings, assembly, pick_seed, dry_run)
        else:
            rules = rules_for(assembly, quotas_file)
            _select(settings, assembly, rules, seed, algorithm, panels, publish, dry_run)
    except (draw.DrawError, DrawCommandError) as error:
        raise _fail(getattr(error, "message", str(error))) from None


def _select(settings: Settings, assembly: Any, rules: DrawRules, seed: str | None,
            algorithm: str, panels: int, publish: Path | None, dry_run: bool) -> None:
    if not seed:
        raise DrawCommandError("Give --seed SEED (announce it before the draw).")
    draw.check_algorithm(algorithm)

    async def gather(sessions):
        async with sessions() as session:
            await _refuse_second_draw(session)
            if await published_lottery(session) is not None:
                raise DrawCommandError("A list of panels is published and awaits its pick: "
                                       "run `concorder select --pick-seed SEED`.")
            return await draw_input(session, rules)

    inp = _with_db(settings, gather)
    console.print(f"{len(inp.respondents)} registered respondents; panel of "
                  f"{rules.panel_size}, reserve of {rules.reserve_size}"
                  f"{', one per household' if rules.one_per_household else ''}.")
    with solver_progress() as progress:
        result = draw.run_draw(inp, seed, algorithm, panels=panels, progress=progress)
    payload = select_payload(result, seed, algorithm, panels, None)
    show_audit(result.audit)
    if panels > 1:
        if result.lowest_probability is not None:
            console.print(f"Selection probability: lowest {result.lowest_probability:.2%}, "
                          f"mean {result.mean_probability:.2%}.")
        if dry_run:
            show_published(result, None)
            console.print("[yellow]Dry run: nothing recorded, no file written.[/]")
            return

        async def publish_it(sessions):
            async with sessions.begin() as session:
                return await record_publication(session, result, payload)

        run = _with_db(settings, publish_it)
        path = publish or Path(f"panels-{run.draw_id}.json")
        write_publication(result, run.draw_id, path)
        show_published(result, path)
        return
    show_draw(result)
    if dry_run:
        console.print("[yellow]Dry run: nothing recorded and nobody told.[/]")
        return

    async def save(sessions):
        async with sessions.begin() as session:
            return await record_selection(session, result, payload)

    run = _with_db(settings, save)
    _recorded(run)
    _notify(settings, assembly)


def _recorded(run: DrawRun) -> None:
    console.print(f"Draw {run.draw_id} recorded (audit event {run.audit_seq}).")
    gone = run.result.get("withdrawn_since") or []
    if gone:
        console.print(f"[yellow]Withdrawn since the input was read, recorded as declined: "
                      f"{' '.join(gone)}. Run `concorder replace` to fill their places.[/]")


def select_payload(result: draw.Draw, seed: str, algorithm: str, panels: int,
             pick_seed: str | None) -> dict[str, Any]:
    return {"mode": "select", "input": result.canonical_input, "seed": seed,
            "seed_number": draw.seed_number(seed), "algorithm": algorithm, "panels": panels,
            "pick_seed": pick_seed}


def _pick(settings: Settings, assembly: Any, pick_seed: str, dry_run: bool) -> None:
    async def load(sessions):
        async with sessions() as session:
            await _refuse_second_draw(session)
            published = await published_lottery(session)
            if published is None:
                raise DrawCommandError("No published list of panels awaits a pick: run "
                                       "`concorder select --seed SEED --panels M` first.")
            return published

    published = _with_db(settings, load)
    payload = {**published.payload, "pick_seed": pick_seed}
    console.print(f"Picking from the {payload['panels']} panels published in draw "
                  f"{published.draw_id}; the panels are computed again and checked first.")
    with solver_progress() as progress:
        answer = draw.rerun(payload, progress)
    hashes = [draw.panel_hash(p) for p in answer.get("panels") or []]
    if hashes != published.result["panels"]:
        raise DrawCommandError("The panels computed again differ from the published list; "
                               "nothing picked. Run `concorder select --verify`.")
    result = draw.draw_from_answer(answer, payload)
    console.print(f"Pick seed {pick_seed!r}: panel {result.pick} of {len(hashes)} "
                  f"(sha256 {hashes[result.pick]}).")
    show_audit(result.audit)
    show_draw(result)
    if dry_run:
        console.print("[yellow]Dry run: nothing recorded and nobody told.[/]")
        return

    async def save(sessions):
        async with sessions.begin() as session:
            current = await published_lottery(session)
            if current is None or current.draw_id != published.draw_id:
                raise DrawCommandError("The published list changed meanwhile; try again.")
            return await record_selection(session, result, payload, published=current)

    run = _with_db(settings, save)
    _recorded(run)
    _notify(settings, assembly)


def _verify(settings: Settings) -> None:
    def announce(run: DrawRun) -> None:
        console.print(f"Re-running {run.kind} {run.draw_id} (seed {run.seed!r}, "
                      f"{run.algorithm}, recorded {run.created_at:%Y-%m-%d %H:%M} UTC)")

    try:
        with solver_progress() as progress:
            checks = _with_db(settings, lambda sessions: verify_draws(sessions, progress,
                                                                       announce))
    except (draw.DrawError, DrawCommandError) as error:
        raise _fail(getattr(error, "message", str(error))) from None
    bad = False
    for check in checks:
        for warning in check.warnings:
            console.print(f"[yellow]{check.draw_id}: {warning}[/]")
        if check.kind == "audit" and check.ok:
            console.print("[green]Audit trail intact.[/]")
        elif check.ok:
            console.print(f"[green]{check.kind} {check.draw_id}: same result.[/]")
        else:
            bad = True
            for difference in check.differences:
                err.print(f"[red]{check.kind} {check.draw_id}: {difference}[/]")
    if bad:
        raise typer.Exit(1)


@app.command("replace")
def replace_command(
    participants: list[str] = PARTICIPANTS,
    seed: str = typer.Option(..., "--seed", help="The seed for this replacement draw."),
    algorithm: str = ALGORITHM,
    dry_run: bool = DRY_RUN,
    assembly_path: Path = ASSEMBLY,
) -> None:
    """Draw replacements (reserve first, then everyone else registered) so the panel keeps
    the quotas it was drawn under, and ask them to confirm."""
    settings = Settings()
    assembly = _assembly(assembly_path, settings)
    leaving = sorted(set(participants or []))
    try:
        async def gather(sessions):
            async with sessions() as session:
                done = await completed_selection(session)
                if done is None:
                    raise DrawCommandError("No panel has been drawn yet: run `concorder "
                                           "select` first.")
                return await replace_input(session, recorded_rules(done), leaving)

        inp = _with_db(settings, gather)
        places = inp.panel_size - len(inp.kept)
        console.print(f"{len(inp.kept)} stay on the panel; {places} place(s) to fill "
                      f"({len(inp.candidate_tiers[0])} on the reserve, "
                      f"{len(inp.candidate_tiers[1])} others registered).")
        with solver_progress() as progress:
            result = draw.run_replace(inp, seed, algorithm, progress=progress)
    except (draw.DrawError, DrawCommandError) as error:
        raise _fail(getattr(error, "message", str(error))) from None
    show_audit(result.audit)
    show_quota_table(result.quota_table, "Quotas with the replacements")
    source = "the reserve" if result.tier == 0 else "the reserve and everyone else registered"
    console.print(f"[bold]Replacements ({len(result.added)}, from {source}):[/] "
                  f"{' '.join(result.added)}")
    if dry_run:
        console.print("[yellow]Dry run: nothing recorded and nobody told.[/]")
        return
    payload = {"mode": "replace", "input": result.canonical_input, "seed": seed,
               "seed_number": draw.seed_number(seed), "algorithm": algorithm}

    async def save(sessions):
        async with sessions.begin() as session:
            return await record_replacement(session, result, payload)

    try:
        run = _with_db(settings, save)
    except DrawCommandError as error:
        raise _fail(str(error)) from None
    console.print(f"Replacement draw {run.draw_id} recorded (audit event {run.audit_seq}).")
    _notify(settings, assembly)
