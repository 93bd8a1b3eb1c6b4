"""`concorder rehearse`: the whole assembly on the simulator with simulated participants,
and its report (display only; the run is bot/services/rehearsal/)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bot.cli.common import console, err, load_config_or_exit
from bot.services.rehearsal import rehearse
from bot.services.rehearsal.report import Report
from bot.settings import Settings
from flows.assembly import load_assembly


class Format(StrEnum):
    text = "text"
    md = "md"
    json = "json"


def register(app: typer.Typer) -> None:
    app.command("rehearse")(rehearse_command)


def rehearse_command(
    people: Annotated[int, typer.Option("--people", min=1, max=5000, help="How many people.")],
    seed: Annotated[str, typer.Option("--seed", help="The same seed, the same rehearsal.")],
    assembly_path: Annotated[
        Path | None,
        typer.Option("--assembly", help="The assembly file (TOML). Default: CONCORDER_ASSEMBLY."),
    ] = None,
    form: Annotated[
        Format, typer.Option("--format", help="text (tables), md or json.")
    ] = Format.text,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the report to FILE (Markdown; JSON with --format json)."),
    ] = None,
    keep: Annotated[
        Path | None,
        typer.Option("--keep", help="Keep the scratch database in DIR (default: removed after)."),
    ] = None,
) -> None:
    """Rehearse the whole assembly with simulated participants on a scratch database:
    invitations, registration, the draw, confirmations, tables, briefings, prompts,
    ballots and polls, on a virtual clock. Nothing is sent to Telegram or Twilio and the
    live database is never opened. Shows per phase the messages, SMS segments and cost,
    the funnel, and every message that got no answer."""
    settings = Settings()
    chosen, _ = load_config_or_exit(assembly_path, settings, load_assembly, "assembly file")
    if keep is not None and keep.exists() and any(keep.iterdir()):
        err.print(f"[red]{keep} is not empty:[/] give --keep an empty or new directory.")
        raise typer.Exit(2)
    with _progress() as step:
        running = rehearse(chosen, people, seed, base=settings, keep=keep, progress=step)
        report = asyncio.run(running)
    if out is not None:
        text = _json(report) if form == Format.json else _markdown(report)
        out.write_text(text, encoding="utf-8")
        console.print(f"Report written to {out}.")
        return
    if form == Format.json:
        print(_json(report))
    elif form == Format.md:
        print(_markdown(report))
    else:
        show(report, console)


class _progress:
    """A bar on a terminal; plain lines (each new phase, with the time) otherwise."""

    def __enter__(self):
        self.started = time.monotonic()
        self.last = ""
        self.bar = None
        if err.is_terminal:
            self.bar = Progress(
                TextColumn("{task.description:<32}"),
                BarColumn(),
                TimeElapsedColumn(),
                console=err,
                transient=True,
            )
            self.bar.__enter__()
            self.task = self.bar.add_task("starting", total=1.0)
        return self

    def __call__(self, label: str, done: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, description=label, completed=done)
        elif label != self.last:
            err.print(f"{time.monotonic() - self.started:6.1f}s  {done:4.0%}  {label}")
        self.last = label

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False


def _wall(seconds: float) -> str:
    return f"{seconds:.1f}s"


def _rows(report: Report) -> list[list[str]]:
    rows = []
    for p in report.phases:
        rows.append(
            [
                p.name,
                str(p.messages.get("sms", 0)),
                str(p.messages.get("telegram", 0)),
                str(p.sms_segments),
                f"{p.cost:.2f}",
                _virtual(p.virtual),
                _wall(p.wall),
            ]
        )
    rows.append(
        [
            "total",
            str(sum(p.messages.get("sms", 0) for p in report.phases)),
            str(sum(p.messages.get("telegram", 0) for p in report.phases)),
            str(report.total_segments),
            f"{report.total_cost:.2f}",
            "",
            _wall(report.wall),
        ]
    )
    return rows


HEAD = ["Phase", "SMS", "Telegram", "SMS segments", "Cost", "Virtual time", "Wall time"]


def _virtual(value: timedelta) -> str:
    hours = int(value.total_seconds() // 3600)
    days, hours = divmod(hours, 24)
    minutes = int(value.total_seconds() % 3600 // 60)
    return f"{days}d {hours}h" if days else f"{hours}h {minutes:02d}m"


def _funnel_rows(report: Report) -> list[list[str]]:
    data = report.data()["funnel"]
    return [[f["step"], str(f["people"]), str(f["dropped"])] for f in data]


def _unanswered_rows(report: Report) -> list[list[str]]:
    return [
        [u["participant"], u["step"], u["channel"], u["sent"], u["at"][:16]]
        for u in report.unanswered
    ]


def _undelivered_rows(report: Report) -> list[list[str]]:
    return [
        [u["phase"], u["status"], u["kind"], u["channel"], str(u["messages"])]
        for u in report.undelivered
    ]


def _title(report: Report) -> str:
    return (
        f"Rehearsal of {report.assembly}: {report.people} people, seed {report.seed}, "
        f"{report.start[:10]} to {report.end[:10]} (virtual), SMS at "
        f"{report.price} per segment"
    )


def show(report: Report, out: Console) -> None:
    out.print(f"[bold]{_title(report)}[/]")
    for title, head, rows in _sections(report):
        if not rows:
            out.print(f"[bold]{title}[/]: none.")
            continue
        table = Table(title=title, title_justify="left")
        for n, name in enumerate(head):
            table.add_column(name, justify="left" if n == 0 else "right", no_wrap=n == 0)
        for row in rows:
            table.add_row(*row)
        out.print(table)
    for problem in report.problems:
        out.print(f"[red]Not done:[/] {problem}")


def _sections(report: Report):
    yield "Messages out, by phase", HEAD, _rows(report)
    yield (
        "Funnel (each step: people who also passed every step before)",
        [
            "Step",
            "People",
            "Dropped",
        ],
        _funnel_rows(report),
    )
    yield (
        "Never answered",
        ["Participant", "Step", "Channel", "They sent", "At (UTC)"],
        _unanswered_rows(report),
    )
    yield (
        "Never delivered (by the end)",
        ["Phase", "Status", "Kind", "Channel", "Messages"],
        _undelivered_rows(report),
    )


def _markdown(report: Report) -> str:
    lines = [f"# {_title(report)}", ""]
    for title, head, rows in _sections(report):
        if not rows:
            lines += [f"## {title}: none", ""]
            continue
        lines += [f"## {title}", ""]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("| " + " | ".join("---" for _ in head) + " |")
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        lines.append("")
    lines += [f"Not done: {p}" for p in report.problems]
    return "\n".join(lines).rstrip() + "\n"


def _json(report: Report) -> str:
    data = report.data()
    data["wall_seconds"] = {p.name: round(p.wall, 2) for p in report.phases}
    return json.dumps(data, indent=2, ensure_ascii=False)
