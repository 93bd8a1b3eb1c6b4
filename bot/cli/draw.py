"""`concorder select` and `concorder replace`: the stratified draw, recorded and audited.

The draw reads the registered respondents (pseudonymous ids, household, answers), runs the
`sortition-algorithms` library (bot.services.draw) outside any transaction, then writes in one
transaction the draw run, the selection rows and the audit event. Telling people the
outcome (confirmation requests, reserve notices, thanks) is the recruitment feature's
`notify_draw_outcome`, called right after; `concorder notify-draw` resumes it if needed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer

from bot.cli.common import with_database, with_relay
from bot.cli.draw_display import (
    console,
    err,
    show_audit,
    show_draw,
    show_published,
    show_quota_table,
    solver_progress,
    write_publication,
)
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
