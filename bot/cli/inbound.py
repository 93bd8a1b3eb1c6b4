"""Organiser commands for inbound messages whose turn failed: `concorder inbound show` and
`concorder inbound retry`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from bot.cli.common import console, err, run, with_database, with_relay
from bot.services.unhandled import records
from bot.settings import Settings
from store.models import utcnow


def register(app: typer.Typer) -> None:
    inbound_app = typer.Typer(
        help="Inbound messages whose turn failed: kept, and tried again.", no_args_is_help=True
    )
    app.add_typer(inbound_app, name="inbound")
    inbound_app.command("show")(show)
    inbound_app.command("retry")(retry)


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def show() -> None:
    """The inbound messages not handled yet, by id.

    Each is being tried again, waiting behind an earlier message of the same person, or
    given up on. Ids only: never who sent them or what they say."""

    async def read(sessions):
        async with sessions() as session:
            return await records.unhandled(session)

    waiting = run(with_database(Settings(), read))
    if not waiting:
        console.print("Every inbound message has been handled: none is waiting.")
        return
    table = Table(title="Inbound messages not handled yet")
    for column in ("id", "channel", "received", "failures", "last failure", "state"):
        table.add_column(column, justify="right" if column in ("id", "failures") else "left")
    for w in waiting:
        if w.gave_up_at is not None:
            state = f"given up {_when(w.gave_up_at)}"
        elif w.failures:
            state = f"next try {_when(w.next_at)}"
        else:
            state = "waiting behind an earlier message"
        table.add_row(
            str(w.id), w.channel, _when(w.received_at), str(w.failures), w.failure or "-", state
        )
    console.print(table)
    if any(w.gave_up_at is not None for w in waiting):
        console.print("Try them again with [bold]concorder inbound retry[/] (try --dry-run first).")


def retry(
    ids: Annotated[
        list[int] | None,
        typer.Argument(
            help="The messages' ids; none: every message given up on.", show_default=False
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be tried; change nothing.")
    ] = False,
) -> None:
    """Try inbound messages again now, each person's in order.

    They go through the same turn as when they arrived. One that fails again is tried for
    another hour, as a new one would be."""
    from bot.services.unhandled.retry import retry_due

    chosen = list(ids) if ids else None

    async def look(sessions):
        async with sessions() as session:
            waiting = await records.unhandled(session)
        if chosen is None:
            return [w.id for w in waiting if w.gave_up_at is not None]
        known = {w.id for w in waiting}
        return [i for i in chosen if i in known]

    if dry_run:
        would = run(with_database(Settings(), look))
        _unknown(chosen, would)
        if would:
            console.print(f"Would try again: {', '.join(map(str, would))}.")
        else:
            console.print("Nothing to try again.")
        return

    async def go(relay):
        now = utcnow()
        async with relay.sessions.begin() as session:
            put = await records.put_back(session, chosen, now)
        if not put:
            return put, None
        return put, await retry_due(relay, now=now)

    put, tried = run(with_relay(Settings(), go))
    _unknown(chosen, put)
    if not put:
        console.print("Nothing to try again.")
        return
    console.print(f"Put back: {', '.join(map(str, put))}.")
    handled = [i for i in tried.handled if i in put]
    failed = [i for i in tried.failed if i in put]
    if handled:
        console.print(f"Handled now: {', '.join(map(str, handled))}.")
    if failed:
        console.print(
            f"[yellow]Failed again:[/] {', '.join(map(str, failed))} (tried again later; "
            "see the service's log)."
        )
    rest = sorted(set(put) - set(handled) - set(failed))
    if rest:
        console.print(
            f"Left to the running service: {', '.join(map(str, rest))} (each waits for an "
            "earlier message of the same person, or is being tried right now)."
        )


def _unknown(chosen: list[int] | None, found: list[int]) -> None:
    missing = sorted(set(chosen or ()) - set(found))
    if missing:
        err.print(
            f"[yellow]Not waiting (handled, or no such message):[/] {', '.join(map(str, missing))}."
        )
