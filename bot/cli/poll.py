"""`concorder poll`: the deliberative poll's waves (status, send) and its report (display
only; the work is bot.services.polls)."""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from pathlib import Path

import typer
from rich.table import Table
from sqlalchemy import case, func, select

from bot.cli.common import console, err, with_relay
from bot.services.polls.records import PollProblem, assembly_polls, get_poll, store_polls, waves_of
from bot.services.polls.waves import open_wave
from bot.settings import Settings
from store.models import utcnow
from store.polls import Poll, PollRoll

DRY_RUN = typer.Option(False, "--dry-run", help="Show what would happen; change nothing.")
FORMATS = ("table", "csv", "json")
CHART = typer.Option(None, "--chart", help="Also draw the shift: out.png or out.svg.")


def register(app: typer.Typer) -> None:
    poll = typer.Typer(
        help="Deliberative polls: the same questions before and after, and the shift.",
        no_args_is_help=True,
    )
    app.add_typer(poll, name="poll")
    poll.command("status")(status)
    poll.command("send")(send)
    poll.command("report")(report)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]{message}[/]", highlight=False)
    return typer.Exit(code)


def _run(work):
    """`work(relay)` after the assembly file's polls are stored and their waves planned."""
    settings = Settings()

    async def synced(relay):
        async with relay.sessions.begin() as session:
            await store_polls(session, assembly_polls(relay), relay.calendar, utcnow())
        return await work(relay)

    try:
        return asyncio.run(with_relay(settings, synced))
    except PollProblem as problem:
        raise _fail(str(problem)) from None


def status(
    poll_id: str = typer.Argument(None, metavar="[POLL]", help="One poll (default: all)."),
) -> None:
    """Each wave's state and how many were asked, started, finished and reminded (counts
    only: no answers)."""

    async def work(relay):
        async with relay.sessions() as session:
            if poll_id:
                polls = [await get_poll(session, poll_id)]
            else:
                polls = list((await session.execute(select(Poll).order_by(Poll.id))).scalars())
            out = []
            for poll in polls:
                for wave in await waves_of(session, poll.id):
                    counts = (
                        await session.execute(
                            select(
                                func.count(),
                                func.sum(case((PollRoll.asked, 1), else_=0)),
                                func.sum(case((PollRoll.answered > 0, 1), else_=0)),
                                func.sum(case((PollRoll.finished, 1), else_=0)),
                                func.sum(case((PollRoll.reminded > 0, 1), else_=0)),
                            ).where(PollRoll.poll_id == poll.id, PollRoll.wave_id == wave.wave_id)
                        )
                    ).one()
                    out.append((poll.id, wave, [int(c or 0) for c in counts]))
            return out

    rows = _run(work)
    if not rows:
        console.print("No polls: declare [[polls]] in the assembly file (CONCORDER_ASSEMBLY).")
        return
    table = Table(
        "poll",
        "wave",
        "status",
        "due",
        "roll",
        "asked",
        "started",
        "finished",
        "reminded",
        "closes",
    )
    for poll, wave, (roll, asked, started, finished, reminded) in rows:
        due = f"{wave.due_at:%Y-%m-%d %H:%M} UTC" if wave.due_at else "by command"
        closes = f"{wave.closes_at:%Y-%m-%d %H:%M} UTC" if wave.closes_at else "-"
        share = f" ({finished / asked:.0%})" if asked else ""
        table.add_row(
            poll,
            wave.wave_id,
            wave.status,
            due,
            str(roll),
            str(asked),
            str(started),
            f"{finished}{share}",
            str(reminded),
            closes,
        )
    console.print(table)


def send(
    poll_id: str = typer.Argument(..., metavar="POLL", help="The poll's id."),
    wave_id: str = typer.Argument(..., metavar="WAVE", help="The wave's id."),
    dry_run: bool = DRY_RUN,
) -> None:
    """Send a wave now (instead of at its time): the confirmed panel is asked."""
    opened = _run(lambda relay: open_wave(relay, poll_id, wave_id, dry_run=dry_run))
    if dry_run:
        console.print(f"Would send {poll_id}/{wave_id} to {opened.respondents} panel members.")
        console.print("[yellow]Dry run: nothing changed.[/]")
        return
    console.print(
        f"Sent {poll_id}/{wave_id}: {opened.respondents} on the roll, {opened.asked} asked."
    )
    if opened.not_asked:
        console.print(f"Not asked (opted out): {', '.join(opened.not_asked)}.")


def _fmt(value, digits: int = 2) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}"


def _p(value) -> str:
    return "-" if value is None else ("<0.001" if value < 0.001 else f"{value:.3f}")


def report(
    poll_id: str = typer.Argument(..., metavar="POLL", help="The poll's id."),
    fmt: str = typer.Option("table", "--format", help="table, csv or json."),
    chart: Path = CHART,
    by: str = typer.Option(None, "--by", help="Break down by a quota category (e.g. age)."),
    min_cell: int = typer.Option(
        5, "--min-cell", min=1, help="Suppress a group with fewer pairs than this."
    ),
) -> None:
    """The first wave against the last, the same people paired: per question the means,
    the mean change, Wilcoxon signed-rank and paired t p-values, the rank-biserial
    correlation and Cohen's dz, and the number of pairs; the knowledge score's change."""
    if fmt not in FORMATS:
        raise _fail(f"--format {fmt!r}: one of {', '.join(FORMATS)}.")
    if chart is not None and chart.suffix.lower() not in (".png", ".svg"):
        raise _fail(f"--chart {chart}: give a .png or .svg file.")

    from bot.services.polls import report as reporting  # scipy: only for the report

    async def work(relay):
        async with relay.sessions() as session:
            return await reporting.poll_report(
                session, relay.invite_key, poll_id, by=by, min_cell=min_cell
            )

    result = _run(work)
    if chart is not None:
        from bot.services.polls.chart import draw

        try:
            draw(result, chart)
        except ValueError as exc:
            raise _fail(str(exc)) from None
    if fmt == "json":
        print(json.dumps(result.plain(), indent=2, ensure_ascii=False))
    elif fmt == "csv":
        _csv(result)
    else:
        _table(result)
    if chart is not None:
        err.print(f"Chart written to {chart}.")


COLUMNS = [
    "question",
    "kind",
    "group",
    "n",
    "before",
    "after",
    "change",
    "wilcoxon_p",
    "t_p",
    "rank_biserial",
    "cohens_dz",
]


def _csv(result) -> None:
    out = csv.writer(sys.stdout)
    out.writerow([*COLUMNS, "suppressed"])
    for row in result.rows:
        r = row.result
        if r is None:
            out.writerow(
                [
                    row.question,
                    row.kind,
                    row.group,
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    f"fewer than {result.min_cell} pairs",
                ]
            )
            continue
        out.writerow(
            [
                row.question,
                row.kind,
                row.group,
                r.n,
                r.before,
                r.after,
                r.change,
                r.wilcoxon_p,
                r.t_p,
                r.rank_biserial,
                r.cohens_dz,
                "",
            ]
        )


def _table(result) -> None:
    from bot.services.polls.report import OVERALL

    answered = ", ".join(f"{w}: {n}" for w, n in result.respondents.items())
    console.print(
        f"[bold]{result.title}[/] ({result.poll}): wave {result.before} against {result.after}, "
        f"the same people paired. Answered: {answered}."
    )
    table = Table(
        "question",
        "group",
        "pairs",
        "before",
        "after",
        "change",
        "Wilcoxon p",
        "t p",
        "r (rank-biserial)",
        "dz",
    )
    for row in result.rows:
        name = row.question if row.group == OVERALL else ""
        r = row.result
        if r is None:
            table.add_row(
                name, row.group, f"< {result.min_cell}", "suppressed", "", "", "", "", "", ""
            )
            continue
        table.add_row(
            name,
            row.group,
            str(r.n),
            _fmt(r.before),
            _fmt(r.after),
            _fmt(r.change, 2) if r.change is None else f"{r.change:+.2f}",
            _p(r.wilcoxon_p),
            _p(r.t_p),
            _fmt(r.rank_biserial),
            _fmt(r.cohens_dz),
        )
    console.print(table)
    console.print(
        "Agreement: mean of 1 (strongly disagree) to 5 (strongly agree); knowledge: share "
        "right (a skip counts as not right). p-values are two-sided."
    )
