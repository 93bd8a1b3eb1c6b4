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
from bot.settings import Settings

OUT = typer.Option(..., "--out", help="The folder to write the package into.")


def register(app: typer.Typer) -> None:
    app.command("publish")(publish)


def publish(
    out: Path = OUT,
    min_cell: int = typer.Option(
        pub.DEFAULT_MIN_CELL,
        "--min-cell",
        help="Hide counts below this (and those that would give one away by subtraction).",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="List the resources and their rows; write nothing."
    ),
) -> None:
    """Write datapackage.json and one CSV per resource: the assembly and its calendar, the
    draw, participation by category, ballot results and receipts, the recommendations
    tracker and the latest audit checkpoint. Nothing in it names a person."""
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
        console.print(f"[yellow]Dry run: nothing written to {out}.[/]", highlight=False)
        return
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    console.print(f"Wrote {len(files)} files to {out} (datapackage.json and CSV).", highlight=False)
