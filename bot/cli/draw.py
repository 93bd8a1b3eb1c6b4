"""`concorder select` and `concorder replace`: the stratified draw, recorded and audited.

The draw reads the registered respondents (pseudonymous ids, household, answers), runs the
`sortition-algorithms` library (bot.services.draw) outside any transaction, then writes in one
transaction the draw run, the selection rows and the audit event. Telling people the
outcome (confirmation requests, reserve notices, thanks) is a separate, explicit step after a
`select` (`concorder notify-draw`), so organisers can check the draw first; a `replace` asks
its replacements to confirm right away, as its purpose is to fill places that are open.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from bot.cli.common import with_database, with_relay
from bot.cli.draw_display import (
    console,
    err,
    show_audit,
    show_comparison,
    show_draw,
    show_lottery,
    show_probabilities,
    show_published,
    show_quota_table,
    solver_progress,
    write_chart,
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
from bot.services.draw import probabilities as chances
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
ALGORITHMS = typer.Option(
    ["maximin"],
    "--algorithm",
    help="maximin (default) or leximin (both exact, on kinds of people with the free HiGHS "
    "solver), nash or legacy (sortition-algorithms on CBC). Repeat it with --dry-run to "
    "compare algorithms side by side.",
)
DRY_RUN = typer.Option(False, "--dry-run", help="Show what would happen; write nothing.")
QUOTAS = typer.Option(
    None,
    "--quotas",
    help="TOML file with panel_size, reserve_size, "
    "one_per_household and \\[quotas.<category>] tables (value = {min = 2, "
    "max = 4} or value = 0.25 as a target share). Default: the assembly "
    "file's own.",
)
PUBLISH = typer.Option(
    None,
    "--panels-out",
    "--publish",
    help="Where to write the list of panels (JSON). Default: panels-<draw>.json.",
)
CHART = typer.Option(
    None, "--chart", help="Also write the selection probabilities as a chart (SVG)."
)
LOTTERY_PANELS = 1000  # m of the uniform lottery unless --panels says otherwise
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
    algorithms: list[str] = ALGORITHMS,
    lottery: bool = typer.Option(
        False,
        "--lottery",
        help=f"Uniform lottery: round the distribution to M equally likely panels (--panels, "
        f"default {LOTTERY_PANELS}), publish them (--panels-out) and pick one later with "
        "--lottery-pick.",
    ),
    panels: int = typer.Option(
        1,
        "--panels",
        min=1,
        help="Transparent lottery of M quota-compliant panels, published now and picked later "
        "(maximin, leximin: the uniform lottery, as --lottery; nash: the library's M panels).",
    ),
    lottery_pick: int = typer.Option(
        None,
        "--lottery-pick",
        min=0,
        help="Pick panel N (0 to M - 1) of the published list: a number drawn in public.",
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
    allow_backend_change: bool = typer.Option(
        False,
        "--allow-backend-change",
        help="With --verify: re-run even on other solver versions than the draw was made with.",
    ),
    chart: Path = CHART,
    estimate_draws: int = typer.Option(
        200,
        "--estimate-draws",
        min=10,
        help="The legacy algorithm computes no probabilities: estimate them from this many "
        "draws (seeds SEED#1 ... SEED#N).",
    ),
    dry_run: bool = DRY_RUN,
    quotas_file: Path = QUOTAS,
    assembly_path: Path = ASSEMBLY,
) -> None:
    """Draw the panel and its ordered reserve among the registered respondents."""
    settings = Settings()
    if verify:
        _verify(settings, allow_backend_change, chart)
        return
    assembly = _assembly(assembly_path, settings)
    options = _Options(
        algorithms=list(dict.fromkeys(algorithms or ["maximin"])),
        panels=max(panels, LOTTERY_PANELS if lottery and panels == 1 else panels),
        publish=publish,
        chart=chart,
        estimate_draws=estimate_draws,
        dry_run=dry_run,
    )
    try:
        if pick_seed is not None or lottery_pick is not None:
            if pick_seed is not None and lottery_pick is not None:
                raise DrawRecordError("Give --lottery-pick N or --pick-seed SEED, not both.")
            _pick(settings, assembly, pick_seed, lottery_pick, dry_run)
        elif len(options.algorithms) > 1:
            if not dry_run:
                raise DrawRecordError(
                    "Several algorithms compare only with --dry-run; a real draw uses one."
                )
            _compare(settings, rules_for(assembly, quotas_file), seed, options)
        else:
            rules = rules_for(assembly, quotas_file)
            _select(settings, assembly, rules, seed, options)
    except (draw.DrawError, DrawRecordError) as error:
        raise _fail(getattr(error, "message", str(error))) from None


@dataclass
class _Options:
    algorithms: list[str]
    panels: int
    publish: Path | None
    chart: Path | None
    estimate_draws: int
    dry_run: bool


def _gather(settings: Settings, rules: DrawRules, seed: str | None) -> draw.DrawInput:
    if not seed:
        raise DrawRecordError("Give --seed SEED (announce it before the draw).")

    async def gather(sessions):
        async with sessions() as session:
            await refuse_second_draw(session)
            if await published_lottery(session) is not None:
                raise DrawRecordError(
                    "A list of panels is published and awaits its pick: "
                    "run `concorder select --lottery-pick N` or `--pick-seed SEED`."
                )
            return await draw_input(session, rules)

    inp = asyncio.run(with_database(settings, gather))
    console.print(
        f"{len(inp.respondents)} registered respondents; panel of "
        f"{rules.panel_size}, reserve of {rules.reserve_size}"
        f"{', one per household' if rules.one_per_household else ''}."
    )
    if len(inp.respondents) < rules.panel_size:
        console.print(
            "[yellow]People who registered by letter, phone or web form come in with "
            "`concorder respondents import FILE`.[/]"
        )
    return inp


def _one_draw(
    inp: draw.DrawInput, seed: str, algorithm: str, options: _Options, worker: Any = None
) -> draw.Draw:
    """One draw; the legacy algorithm's probabilities estimated by repeated draws."""
    with solver_progress() as progress:
        result = draw.run_draw(
            inp, seed, algorithm, panels=options.panels, progress=progress, worker=worker
        )
        if algorithm == "legacy":
            result.probabilities = chances.estimate_by_draws(
                inp, seed, options.estimate_draws, worker=worker, progress=progress
            )
            result.estimate = {"draws": options.estimate_draws, "seeds": f"{seed}#1..."}
            result.audit["probabilities_sha256"] = draw.rules.sha256_of(result.probabilities)
            result.audit["probabilities_estimated_from"] = options.estimate_draws
    return result


def _compare(settings: Settings, rules: DrawRules, seed: str | None, options: _Options) -> None:
    """Each algorithm on the same data, side by side; nothing recorded."""
    inp = _gather(settings, rules, seed)
    rows, series = [], {}
    with draw.SolverWorker() as worker:
        for algorithm in options.algorithms:
            console.rule(algorithm)
            started = time.monotonic()
            try:
                draw.check_algorithm(algorithm)
                result = _one_draw(inp, seed, algorithm, options, worker)
            except draw.DrawError as error:
                rows.append({"algorithm": algorithm, "error": error.message})
                continue
            draws = (result.estimate or {}).get("draws", 0)
            show_probabilities(result.probabilities, draws)
            rows.append(
                {
                    "algorithm": algorithm,
                    "seconds": time.monotonic() - started,
                    "spread": chances.spread(result.probabilities, draws),
                    "draws": draws,
                    "quotas_met": all(row.met for row in result.quota_table)
                    if result.quota_table
                    else all(len(p) == inp.panel_size for p in result.panels),
                }
            )
            series[algorithm] = list(result.probabilities.values())
    show_comparison(rows)
    if options.chart and series:
        write_chart(options.chart, series, "Selection probabilities by algorithm")
    console.print("[yellow]Dry run: nothing recorded and nobody told.[/]")


def _select(
    settings: Settings,
    assembly: Any,
    rules: DrawRules,
    seed: str | None,
    options: _Options,
) -> None:
    algorithm, panels = options.algorithms[0], options.panels
    draw.check_algorithm(algorithm)
    inp = _gather(settings, rules, seed)
    result = _one_draw(inp, seed, algorithm, options)
    payload = select_payload(result, seed, algorithm, panels, None)
    show_audit(result.audit)
    if options.chart and result.probabilities:
        write_chart(options.chart, {algorithm: list(result.probabilities.values())}, algorithm)
    if panels > 1:
        if result.probabilities:
            show_probabilities(result.probabilities)
        if result.lottery:
            show_lottery(result.lottery)
        if options.dry_run:
            show_published(result, None)
            console.print("[yellow]Dry run: nothing recorded, no file written.[/]")
            return

        async def publish_it(sessions):
            async with sessions.begin() as session:
                return await record_publication(session, result, payload)

        run = asyncio.run(with_database(settings, publish_it))
        path = options.publish or Path(f"panels-{run.draw_id}.json")
        write_publication(result, run.draw_id, path)
        show_published(result, path)
        return
    show_draw(result)
    if options.dry_run:
        console.print("[yellow]Dry run: nothing recorded and nobody told.[/]")
        return

    async def save(sessions):
        async with sessions.begin() as session:
            return await record_selection(session, result, payload)

    run = asyncio.run(with_database(settings, save))
    _recorded(run)
    _not_told_yet()


def _not_told_yet() -> None:
    """Telling people is its own step: the organisers check the draw first."""
    console.print(
        "Nobody has been told yet. When you are ready, `concorder notify-draw` asks the "
        "selected to confirm, tells the reserve, and thanks the others."
    )


def _recorded(run: DrawRun) -> None:
    console.print(f"Draw {run.draw_id} recorded (audit event {run.audit_seq}).")
    gone = run.result.get("withdrawn_since") or []
    if gone:
        console.print(
            f"[yellow]Withdrawn since the input was read, recorded as declined: "
            f"{' '.join(gone)}. Run `concorder replace` to fill their places.[/]"
        )


def _pick(
    settings: Settings,
    assembly: Any,
    pick_seed: str | None,
    pick_number: int | None,
    dry_run: bool,
) -> None:
    async def load(sessions):
        async with sessions() as session:
            await refuse_second_draw(session)
            published = await published_lottery(session)
            if published is None:
                raise DrawRecordError(
                    "No published list of panels awaits a pick: run "
                    "`concorder select --seed SEED --lottery` first."
                )
            return published

    published = asyncio.run(with_database(settings, load))
    payload = {**published.payload, "pick_seed": pick_seed}
    if pick_number is not None:
        if pick_number >= payload["panels"]:
            raise DrawRecordError(
                f"There are {payload['panels']} panels, numbered 0 to {payload['panels'] - 1}: "
                f"no panel {pick_number}."
            )
        payload["pick_number"] = pick_number
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
    how = f"Number drawn {pick_number}" if pick_number is not None else f"Pick seed {pick_seed!r}"
    console.print(f"{how}: panel {result.pick} of {len(hashes)} (sha256 {hashes[result.pick]}).")
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
    _not_told_yet()


def _verify(settings: Settings, allow_backend_change: bool, chart: Path | None) -> None:
    shown: dict[str, list[float]] = {}

    def announce(run: DrawRun) -> None:
        backend = run.payload.get("solver_backend") or draw.SOLVER_BACKEND
        console.print(
            f"Re-running {run.kind} {run.draw_id} (seed {run.seed!r}, "
            f"{run.algorithm} on {backend}, recorded {run.created_at:%Y-%m-%d %H:%M} UTC)"
        )
        recorded = (run.result or {}).get("probabilities")
        if recorded:
            show_probabilities(recorded, ((run.result or {}).get("estimate") or {}).get("draws", 0))
            shown[f"{run.algorithm} ({run.draw_id})"] = list(recorded.values())

    def work(sessions):
        return verify_draws(sessions, progress, announce, allow_backend_change)

    try:
        with solver_progress() as progress:
            checks = asyncio.run(with_database(settings, work))
    except (draw.DrawError, DrawRecordError) as error:
        raise _fail(getattr(error, "message", str(error))) from None
    if chart and shown:
        write_chart(chart, shown, "Selection probabilities of the recorded draws")
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
    payload = draw.replace_payload(result, seed, algorithm)

    async def save(sessions):
        async with sessions.begin() as session:
            return await record_replacement(session, result, payload)

    try:
        run = asyncio.run(with_database(settings, save))
    except DrawRecordError as error:
        raise _fail(str(error)) from None
    console.print(f"Replacement draw {run.draw_id} recorded (audit event {run.audit_seq}).")
    _notify(settings, assembly)
