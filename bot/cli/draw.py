"""`concorder select` and `concorder replace`: the stratified draw, recorded and audited.

The draw reads the registered respondents (pseudonymous ids, household, answers), runs the
`sortition-algorithms` library (bot.services.draw) outside any transaction, then writes in one
transaction the draw run, the selection rows and the audit event. Telling people the
outcome (confirmation requests, reserve notices, thanks) is the recruitment feature's
`notify_draw_outcome`, called right after; `concorder notify-draw` resumes it if needed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
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

from bot.cli.common import with_database, with_relay
from bot.services import draw
from bot.services.draw import (
    DrawRecordError,
    DrawRules,
    draw_input,
    record_publication,
    record_replacement,
    record_selection,
    recorded_rules,
    refuse_second_draw,
    replace_input,
    rules_for,
    select_payload,
    verify_draws,
)
from bot.settings import Settings
from store.draw_records import DrawRun, completed_selection, published_lottery

console = Console()
err = Console(stderr=True)

ASSEMBLY = typer.Option(
    None, "--assembly", help="The assembly file (TOML). Default: CONCORDER_ASSEMBLY."
)
ALGORITHM = typer.Option(
    "maximin",
    "--algorithm",
    help="maximin (default, free CBC solver), nash, leximin (needs Gurobi) or legacy.",
)
DRY_RUN = typer.Option(False, "--dry-run", help="Show what would happen; write nothing.")
QUOTAS = typer.Option(
    None,
    "--quotas",
    help="TOML file with panel_size, reserve_size, "
    "one_per_household and [quotas.<category>] tables (value = {min = 2, "
    "max = 4} or value = 0.25 as a target share). Default: the assembly "
    "file's own.",
)
PUBLISH = typer.Option(
    None, "--publish", help="Where to write the list of panels (JSON). Default: panels-<draw>.json."
)
PARTICIPANTS = typer.Argument(
    None,
    metavar="PARTICIPANT...",
    help="Pseudonymous ids of panel members who dropped out (none: fill places already free).",
)


# ------------------------------------------------------------------------------ display


@contextmanager
def solver_progress() -> Iterator[draw.Progress]:
    """A live line for long solves, fed by the library's progress events."""
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("Starting the selection", total=None)

        def on_event(event: dict[str, Any]) -> None:
            if event["event"] == "start":
                bar.update(
                    task,
                    description=event.get("message") or event["name"],
                    total=event.get("total"),
                    completed=0,
                )
            elif event["event"] == "update":
                bar.update(
                    task, completed=event["current"], description=event.get("message") or None
                )

        yield on_event


def show_quota_table(rows: list[draw.QuotaRow], title: str = "Quotas") -> None:
    table = Table(title=title)
    for name, justify in (
        ("Category", "left"),
        ("Value", "left"),
        ("Pool", "right"),
        ("Target", "right"),
        ("Selected", "right"),
        ("", "center"),
    ):
        table.add_column(name, justify=justify)
    for row in rows:
        target = str(row.min) if row.min == row.max else f"{row.min}–{row.max}"
        mark = "[green]✓[/]" if row.met else "[red]✗[/]"
        table.add_row(row.category, row.value, str(row.pool), target, str(row.selected), mark)
    console.print(table)


def show_draw(result: draw.Draw) -> None:
    show_quota_table(result.quota_table)
    if result.lowest_probability is not None:
        console.print(
            f"Selection probability: lowest {result.lowest_probability:.2%}, "
            f"mean {result.mean_probability:.2%}."
        )
    else:
        console.print(
            f"Selection probabilities: not computed by the {result.audit['algorithm']} algorithm."
        )
    console.print(f"[bold]Selected ({len(result.selected)}):[/] {' '.join(result.selected)}")
    reserve = " ".join(f"{rank}.{pid}" for rank, pid in enumerate(result.reserve, start=1))
    console.print(f"[bold]Reserve, in order ({len(result.reserve)}):[/] {reserve or '-'}")
    for note in result.notes:
        console.print(f"[yellow]{note}[/]")


def show_audit(audit_data: dict[str, Any]) -> None:
    console.print(
        f"Seed {audit_data['seed']!r} (number {audit_data['seed_number']}), "
        f"algorithm {audit_data['algorithm']}, {audit_data['library']} "
        f"{audit_data['library_version']}, input sha256 {audit_data['input_sha256']}."
    )


def show_published(result: draw.Draw, path: Path | None) -> None:
    table = Table(title=f"{len(result.panels)} quota-compliant panels")
    table.add_column("#", justify="right")
    table.add_column("Panel sha256")
    for panel in result.published_panels:
        table.add_row(str(panel["index"]), panel["sha256"])
    console.print(table)
    console.print(
        f"List hash (in the audit trail): [bold]{result.audit['panel_list_sha256']}"
        f"[/]." + (f" Published to {path}." if path else "")
    )
    console.print(
        "Announce a pick seed nobody could know before now (e.g. tomorrow's "
        "lottery numbers), then run `concorder select --pick-seed SEED`. The panel "
        f"is number int(sha256(SEED), 16) mod {len(result.panels)}."
    )


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


def register(app: typer.Typer) -> None:
    app.command("select")(select_command)
    app.command("replace")(replace_command)


def _assembly(path: Path | None, settings: Settings) -> Any:
    from bot.cli.recruitment import assembly_or_exit  # loads and checks the file

    return assembly_or_exit(path, settings)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]{message}[/]")
    return typer.Exit(code)


def _notify(settings: Settings, assembly: Any) -> None:
    from bot.services import recruitment

    async def work(relay):
        return await recruitment.notify_draw_outcome(relay, assembly)

    told = asyncio.run(with_relay(settings, work, assembly=assembly))
    summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(told.items()))
    console.print(f"Told the outcome: {summary or 'nobody new'}.")


def select_command(
    seed: str = typer.Option(None, "--seed", help="The seed, announced before the draw."),
    algorithm: str = ALGORITHM,
    panels: int = typer.Option(
        1,
        "--panels",
        min=1,
        help="Transparent lottery: compute M quota-compliant panels and publish them; pick later.",
    ),
    pick_seed: str = typer.Option(
        None,
        "--pick-seed",
        help="Pick from the published panels with this seed, announced after they were published.",
    ),
    publish: Path = PUBLISH,
    verify: bool = typer.Option(
        False,
        "--verify",
        help="Re-run every recorded draw from the audit trail and confirm the same result.",
    ),
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
    except (draw.DrawError, DrawRecordError) as error:
        raise _fail(getattr(error, "message", str(error))) from None


def _select(
    settings: Settings,
    assembly: Any,
    rules: DrawRules,
    seed: str | None,
    algorithm: str,
    panels: int,
    publish: Path | None,
    dry_run: bool,
) -> None:
    if not seed:
        raise DrawRecordError("Give --seed SEED (announce it before the draw).")
    draw.check_algorithm(algorithm)

    async def gather(sessions):
        async with sessions() as session:
            await refuse_second_draw(session)
            if await published_lottery(session) is not None:
                raise DrawRecordError(
                    "A list of panels is published and awaits its pick: "
                    "run `concorder select --pick-seed SEED`."
                )
            return await draw_input(session, rules)

    inp = asyncio.run(with_database(settings, gather))
    console.print(
        f"{len(inp.respondents)} registered respondents; panel of "
        f"{rules.panel_size}, reserve of {rules.reserve_size}"
        f"{', one per household' if rules.one_per_household else ''}."
    )
    with solver_progress() as progress:
        result = draw.run_draw(inp, seed, algorithm, panels=panels, progress=progress)
    payload = select_payload(result, seed, algorithm, panels, None)
    show_audit(result.audit)
    if panels > 1:
        if result.lowest_probability is not None:
            console.print(
                f"Selection probability: lowest {result.lowest_probability:.2%}, "
                f"mean {result.mean_probability:.2%}."
            )
        if dry_run:
            show_published(result, None)
            console.print("[yellow]Dry run: nothing recorded, no file written.[/]")
            return

        async def publish_it(sessions):
            async with sessions.begin() as session:
                return await record_publication(session, result, payload)

        run = asyncio.run(with_database(settings, publish_it))
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

    run = asyncio.run(with_database(settings, save))
    _recorded(run)
    _notify(settings, assembly)


def _recorded(run: DrawRun) -> None:
    console.print(f"Draw {run.draw_id} recorded (audit event {run.audit_seq}).")
    gone = run.result.get("withdrawn_since") or []
    if gone:
        console.print(
            f"[yellow]Withdrawn since the input was read, recorded as declined: "
            f"{' '.join(gone)}. Run `concorder replace` to fill their places.[/]"
        )


def _pick(settings: Settings, assembly: Any, pick_seed: str, dry_run: bool) -> None:
    async def load(sessions):
        async with sessions() as session:
            await refuse_second_draw(session)
            published = await published_lottery(session)
            if published is None:
                raise DrawRecordError(
                    "No published list of panels awaits a pick: run "
                    "`concorder select --seed SEED --panels M` first."
                )
            return published

    published = asyncio.run(with_database(settings, load))
    payload = {**published.payload, "pick_seed": pick_seed}
    console.print(
        f"Picking from the {payload['panels']} panels published in draw "
        f"{published.draw_id}; the panels are computed again and checked first."
    )
    with solver_progress() as progress:
        answer = draw.rerun(payload, progress)
    hashes = [draw.panel_hash(p) for p in answer.get("panels") or []]
    if hashes != published.result["panels"]:
        raise DrawRecordError(
            "The panels computed again differ from the published list; "
            "nothing picked. Run `concorder select --verify`."
        )
    result = draw.draw_from_answer(answer, payload)
    console.print(
        f"Pick seed {pick_seed!r}: panel {result.pick} of {len(hashes)} "
        f"(sha256 {hashes[result.pick]})."
    )
    show_audit(result.audit)
    show_draw(result)
    if dry_run:
        console.print("[yellow]Dry run: nothing recorded and nobody told.[/]")
        return

    async def save(sessions):
        async with sessions.begin() as session:
            current = await published_lottery(session)
            if current is None or current.draw_id != published.draw_id:
                raise DrawRecordError("The published list changed meanwhile; try again.")
            return await record_selection(session, result, payload, published=current)

    run = asyncio.run(with_database(settings, save))
    _recorded(run)
    _notify(settings, assembly)


def _verify(settings: Settings) -> None:
    def announce(run: DrawRun) -> None:
        console.print(
            f"Re-running {run.kind} {run.draw_id} (seed {run.seed!r}, "
            f"{run.algorithm}, recorded {run.created_at:%Y-%m-%d %H:%M} UTC)"
        )

    try:
        with solver_progress() as progress:
            checks = asyncio.run(
                with_database(settings, lambda sessions: verify_draws(sessions, progress, announce))
            )
    except (draw.DrawError, DrawRecordError) as error:
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
                    raise DrawRecordError(
                        "No panel has been drawn yet: run `concorder select` first."
                    )
                return await replace_input(session, recorded_rules(done), leaving)

        inp = asyncio.run(with_database(settings, gather))
        places = inp.panel_size - len(inp.kept)
        console.print(
            f"{len(inp.kept)} stay on the panel; {places} place(s) to fill "
            f"({len(inp.candidate_tiers[0])} on the reserve, "
            f"{len(inp.candidate_tiers[1])} others registered)."
        )
        with solver_progress() as progress:
            result = draw.run_replace(inp, seed, algorithm, progress=progress)
    except (draw.DrawError, DrawRecordError) as error:
        raise _fail(getattr(error, "message", str(error))) from None
    show_audit(result.audit)
    show_quota_table(result.quota_table, "Quotas with the replacements")
    source = "the reserve" if result.tier == 0 else "the reserve and everyone else registered"
    console.print(
        f"[bold]Replacements ({len(result.added)}, from {source}):[/] {' '.join(result.added)}"
    )
    if dry_run:
        console.print("[yellow]Dry run: nothing recorded and nobody told.[/]")
        return
    payload = {
        "mode": "replace",
        "input": result.canonical_input,
        "seed": seed,
        "seed_number": draw.seed_number(seed),
        "algorithm": algorithm,
    }

    async def save(sessions):
        async with sessions.begin() as session:
            return await record_replacement(session, result, payload)

    try:
        run = asyncio.run(with_database(settings, save))
    except DrawRecordError as error:
        raise _fail(str(error)) from None
    console.print(f"Replacement draw {run.draw_id} recorded (audit event {run.audit_seq}).")
    _notify(settings, assembly)
