"""`concorder publish`: the assembly's open data as a Frictionless Data Package (display
only; the work is bot.services.publish)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from rich.progress import Progress
from rich.table import Table

from bot.cli.common import console, err, with_relay
from bot.services import publish as pub
from bot.services.publish import web as web_page
from bot.settings import Settings

OUT = typer.Option(..., "--out", help="The folder to write the package into.")


def register(app: typer.Typer) -> None:
    app.command("publish")(publish)
    group = typer.Typer(
        help="The public results page (/results): on or off, and what it shows.",
        no_args_is_help=True,
    )
    app.add_typer(group, name="results")
    group.command("status")(results_status)
    group.command("on")(results_on)
    group.command("off")(results_off)


def publish(
    out: Path = OUT,
    min_cell: int = typer.Option(
        pub.DEFAULT_MIN_CELL,
        "--min-cell",
        help="Hide counts below this (and those that would give one away by subtraction).",
    ),
    web: bool = typer.Option(
        False,
        "--web",
        help="Also show this package on the results page (/results) of `concorder serve`, "
        "and turn the page on.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="List the resources and their rows; write nothing."
    ),
) -> None:
    """Write datapackage.json and one CSV per resource: the assembly and its calendar, the
    draw, participation by category, ballot results and receipts, the recommendations
    tracker, the latest audit checkpoint, the opinion map and the themes with their
    quotes. Nothing in it names a person."""
    from bot.bootstrap import publication_writers

    settings = Settings()
    if out.exists() and not out.is_dir():
        err.print(f"[red]--out {out}: a file is there, not a folder.[/]", highlight=False)
        raise typer.Exit(2)
    writers = publication_writers()

    async def work(relay):
        return await pub.build(
            relay.sessions,
            writers,
            assembly=relay.assembly,
            calendar=relay.calendar,
            min_cell=min_cell,
        )

    with Progress(transient=True, console=err) as progress:
        progress.add_task(f"Reading {len(writers)} parts of the package", total=None)
        try:
            package = asyncio.run(with_relay(settings, work))
        except pub.PublishProblem as problem:
            err.print(f"[red]{problem}[/]", highlight=False)
            raise typer.Exit(2) from None
    files = package.files()
    table = Table("resource", "file", "rows", "bytes", title=package.title)
    for resource in package.resources:
        table.add_row(
            resource.name, resource.path, str(len(resource.rows)), str(len(files[resource.path]))
        )
    console.print(table)
    if dry_run:
        where = f"{out} nor the results page" if web else str(out)
        console.print(f"[yellow]Dry run: nothing written to {where}.[/]", highlight=False)
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    console.print(f"Wrote {len(files)} files to {out} (datapackage.json and CSV).", highlight=False)
    if web:

        async def shown(relay):
            return await web_page.record(relay.sessions, package, min_cell)

        asyncio.run(with_relay(settings, shown))
        console.print("The results page (/results) shows this package now.", highlight=False)


def _said(state: web_page.State) -> str:
    if state.published_at is None:
        return "Nothing is published on the results page yet."
    when = state.published_at.strftime("%Y-%m-%d %H:%M UTC")
    on = "on" if state.shown else "off"
    return f"The results page is {on}: the package published {when} ({state.files} files)."


def results_status() -> None:
    """Whether /results is on, and when its package was published."""

    async def work(relay):
        return await web_page.status(relay.sessions)

    console.print(_said(asyncio.run(with_relay(Settings(), work))), highlight=False)


def _switch(on: bool, dry_run: bool) -> None:
    settings = Settings()

    async def work(relay):
        if dry_run:
            return await web_page.status(relay.sessions)
        return await web_page.switch(relay.sessions, on)

    try:
        state = asyncio.run(with_relay(settings, work))
    except ValueError as problem:
        err.print(f"[red]{problem}[/]", highlight=False)
        raise typer.Exit(1) from None
    if dry_run:
        if state.published_at is None:
            err.print("[red]Nothing is published yet: run `concorder publish --out DIR --web`.[/]")
            raise typer.Exit(1)
        console.print(_said(state), highlight=False)
        console.print(
            f"[yellow]Dry run: the page would be {'on' if on else 'off'}; nothing changed.[/]"
        )
        return
    console.print(_said(state), highlight=False)


def results_on(
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would change; change nothing."),
) -> None:
    """Show the last published package on /results again."""
    _switch(True, dry_run)


def results_off(
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would change; change nothing."),
) -> None:
    """Take /results down (it answers 404); the package stays recorded."""
    _switch(False, dry_run)
