"""Organiser commands for the calendar: `concorder schedule preview`, `concorder session move`."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bot.cli.common import console, err, load_config_or_exit, run, with_database
from bot.services.calendar_preview import briefing_costs, preview
from bot.settings import Settings
from scheduler.config import Calendar, load_calendar
from scheduler.moves import MoveError, move_session
from scheduler.plan import parse_local_time
from store.models import utcnow

ASSEMBLY = typer.Option("--assembly", help="The assembly file (TOML). Default: CONCORDER_ASSEMBLY.")


def register(app: typer.Typer) -> None:
    schedule_app = typer.Typer(
        help="The assembly calendar: briefings and reminders.", no_args_is_help=True
    )
    session_app = typer.Typer(help="The assembly's sessions.", no_args_is_help=True)
    app.add_typer(schedule_app, name="schedule")
    app.add_typer(session_app, name="session")
    schedule_app.command("preview")(schedule_preview)
    session_app.command("move")(session_move)


class _Rollback(Exception):
    """Raised to undo a dry run's transaction."""


def _calendar(path: Path | None, settings: Settings) -> Calendar:
    _, calendar = load_config_or_exit(path, settings, load_calendar, "calendar")
    return calendar


def _moment(text: str | None, calendar: Calendar, default: datetime, option: str) -> datetime:
    if text is None:
        return default
    try:
        return parse_local_time(text, calendar, base=default)
    except ValueError as exc:
        err.print(f"[red]{option}:[/] {exc}")
        raise typer.Exit(2) from None


def schedule_preview(
    start: Annotated[
        str | None, typer.Option("--from", help="From this local date and time (default: now).")
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until", help="Until this local date and time (default: a week after --from)."
        ),
    ] = None,
    assembly: Annotated[Path | None, ASSEMBLY] = None,
) -> None:
    """What the calendar will send when, to how many people, and its SMS segments."""
    settings = Settings()
    calendar = _calendar(assembly, settings)
    begin = _moment(start, calendar, utcnow(), "--from")
    end = _moment(until, calendar, begin + timedelta(days=7), "--until")
    if end <= begin:
        err.print("[red]--until must come after --from.[/]")
        raise typer.Exit(2)

    async def work(sessions):
        async with sessions() as session:
            return await preview(session, calendar, settings, begin, end)

    rows = run(with_database(settings, work))
    zone = calendar.zone
    table = Table(
        title=f"Calendar from {begin.astimezone(zone):%a %d %b %H:%M} to "
        f"{end.astimezone(zone):%a %d %b %H:%M} ({calendar.schedule.timezone})"
    )
    for column in ("When", "What", "People", "Telegram", "SMS", "SMS segments", "Est. cost"):
        table.add_column(column, justify="left" if column in ("When", "What") else "right")
    total_people = total_segments = 0
    for row in rows:
        what = f"{row.kind} {row.subject}: {row.title}"
        segments = str(row.sms_segments)
        if row.sms_segments_all_pages != row.sms_segments:
            segments += f" (up to {row.sms_segments_all_pages} with MORE)"
        table.add_row(
            f"{row.send_at.astimezone(zone):%a %d %b %H:%M}",
            what,
            str(row.people),
            str(row.by_channel.get("telegram", 0)),
            str(row.by_channel.get("sms", 0)),
            segments,
            f"{row.sms_segments * settings.sms_cost_per_segment:.2f}",
        )
        total_people += row.people
        total_segments += row.sms_segments
    console.print(table)
    console.print(
        f"{len(rows)} sendings, {total_people} messages, {total_segments} SMS segments "
        f"(about {total_segments * settings.sms_cost_per_segment:.2f})."
    )
    costs = Table(title="SMS cost of each briefing, per reader")
    for column in ("Briefing", "Language", "Pages", "First page", "All pages", "Encoding"):
        costs.add_column(column)
    for briefing, language, pages, first, whole, encoding in briefing_costs(calendar):
        costs.add_row(briefing, language, str(pages), str(first), str(whole), encoding)
    console.print(costs)


def session_move(
    number: Annotated[
        str, typer.Argument(help="The session: its number in the file (1 = first) or its id.")
    ],
    start: Annotated[
        str,
        typer.Option(
            "--start",
            help="The new start, local time: 2027-03-04T19:00, or 19:00 for the same day.",
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; change nothing.")
    ] = False,
    assembly: Annotated[Path | None, ASSEMBLY] = None,
) -> None:
    """Move a session (keeping its length) and plan its reminders again."""
    settings = Settings()
    calendar = _calendar(assembly, settings)
    chosen = calendar.session(number)
    base = calendar.localise(chosen.start) if chosen else utcnow()
    new_start = _moment(start, calendar, base, "--start")
    now = utcnow()

    async def work(sessions):
        try:
            async with sessions.begin() as session:
                moved = await move_session(session, calendar, number, new_start, now)
                if dry_run:
                    raise _Rollback(moved)
                return moved
        except _Rollback as undone:
            return undone.args[0]

    try:
        moved = run(with_database(settings, work))
    except MoveError as exc:
        err.print(f"[red]Cannot move the session:[/] {exc}")
        raise typer.Exit(2) from None
    zone = calendar.zone
    verb = "Would move" if dry_run else "Moved"
    console.print(
        f"{verb} session {moved.number} ({moved.session_id}) from "
        f"{moved.old_start.astimezone(zone):%a %d %b %Y %H:%M} to "
        f"{moved.start.astimezone(zone):%a %d %b %Y %H:%M} "
        f"({calendar.schedule.timezone})."
    )
    planned = moved.planned
    console.print(
        f"Reminders and briefings: {planned.inserted} planned, "
        f"{planned.rescheduled} rescheduled, {planned.cancelled} cancelled."
    )
    when = f"{moved.start.astimezone(zone):%Y-%m-%dT%H:%M}"
    # soft_wrap: the command must stay on one line, to be copied whole.
    console.print(
        "Tell the participants with:\n  concorder broadcast --template session-moved "
        f"--session {moved.number} --start {when}",
        soft_wrap=True,
    )
