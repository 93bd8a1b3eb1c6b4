"""`concorder organiser add|list|remove` and `concorder broadcast`: who may use organiser
commands, and messages from organisers to the assembly (free text or a template)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from bot.cli import organiser_signin as cli_signin
from bot.cli.common import console, err, run, with_database
from bot.services import broadcast as broadcasts
from bot.services.broadcast import BroadcastError, timing_of
from bot.services.organisers import (
    OrganiserError,
    add_organiser,
    list_organisers,
    record,
    remove_organiser,
)
from bot.settings import Settings
from scheduler import config as scheduler_config
from scheduler.config import Calendar
from scheduler.facts import load_moves
from scheduler.plan import timed_sessions
from store.models import OutboxStatus, utcnow

_CLOCK = re.compile(r"^\s*(\d{1,2})[:hH.](\d{2})\s*$")


def register(app: typer.Typer) -> None:
    app.command("broadcast", help=BROADCAST_HELP)(broadcast_command)
    organiser_app = typer.Typer(
        help="Organisers: the people who may broadcast and see the schedule from Telegram or SMS, "
        "and sign in to the organiser page.",
        no_args_is_help=True,
    )
    app.add_typer(organiser_app, name="organiser")
    organiser_app.command("add")(organiser_add)
    organiser_app.command("list")(organiser_list)
    organiser_app.command("remove")(organiser_remove)
    cli_signin.register(organiser_app)  # organiser token|link: the organiser page


class Refused(Exception):
    """Bad input on the command line: printed in red, exit status 2."""


def _fail(message: str, code: int = 2):
    err.print(f"[red]Error:[/] {message}")
    raise typer.Exit(code)


def _do(work):
    """Run `work(session, settings)` in one transaction; bad input ends the command with its
    reason."""
    settings = Settings()

    async def in_transaction(sessions):
        async with sessions.begin() as session:
            return await work(session, settings)

    try:
        return run(with_database(settings, in_transaction))
    except (BroadcastError, OrganiserError, Refused) as exc:
        _fail(str(exc))


def _load_calendar(settings: Settings) -> Calendar | None:
    """The calendar of the assembly file, when there is one (sessions, zone, quiet hours)."""
    if not settings.assembly_file:
        return None
    try:
        return scheduler_config.load_calendar(settings.assembly_file)
    except scheduler_config.CalendarError as exc:
        _fail(f"the assembly file {exc.path} cannot be used: " + "; ".join(exc.problems))


def parse_time(text: str, *, now: datetime, zone: str, on_day: date | None = None) -> datetime:
    """'2026-12-01 18:30' (in the assembly's zone unless it has an offset) or '18:30'
    (on `on_day`, else the next time the clock shows it)."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    match = _CLOCK.match(text)
    if match:
        hour, minute = int(match[1]), int(match[2])
        if hour > 23 or minute > 59:
            raise Refused(f"{text!r} is not a time of day")
        day = on_day or now.astimezone(tz).date()
        moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
        if on_day is None and moment <= now:
            moment += timedelta(days=1)
        return moment
    try:
        moment = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        raise Refused(
            f"{text!r} is not a time; write 'YYYY-MM-DD HH:MM' or 'HH:MM' "
            f"(times are in {zone} unless you add an offset such as +01:00)"
        ) from None
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment


# --- organisers --------------------------------------------------------------------------


def organiser_add(
    telegram_id: Annotated[
        str | None,
        typer.Option("--telegram-id", help="Their numeric Telegram user id (not the @username)."),
    ] = None,
    phone: Annotated[
        str | None,
        typer.Option(
            "--phone", help="Their mobile number; national numbers use CONCORDER_DEFAULT_REGION."
        ),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="A name to recognise them by.")] = None,
) -> None:
    """Register an organiser by Telegram id and/or phone number."""

    async def work(session, settings):
        return await add_organiser(
            session,
            telegram_id=telegram_id,
            phone=phone,
            name=name,
            default_region=settings.default_region,
        )

    info = _do(work)
    console.print(
        f"Organiser [bold]{info.id}[/] added ({', '.join(info.channels)}). They can "
        "now write /broadcast and /schedule to the bot."
    )


def organiser_list() -> None:
    """Show every organiser."""
    organisers = _do(lambda session, settings: list_organisers(session))
    if not organisers:
        console.print("No organisers yet. Add one with [bold]concorder organiser add[/].")
        return
    table = Table("Id", "Name", "Telegram id", "Phone", title="Organisers")
    for info in organisers:
        table.add_row(str(info.id), info.name or "", info.telegram_id or "", info.phone or "")
    console.print(table)


def organiser_remove(
    organiser: Annotated[
        str,
        typer.Argument(
            help="The organiser's id (see `organiser list`), Telegram id or phone number."
        ),
    ],
) -> None:
    """Remove an organiser: their organiser commands stop working at once."""

    async def work(session, settings):
        return await remove_organiser(session, organiser, settings.default_region)

    info = _do(work)
    console.print(f"Organiser [bold]{info.id}[/] removed.")


# --- broadcasts ------------------------------------------------------------------------------

BROADCAST_HELP = (
    "Send a message to the assembly, preview it, or follow one.\n\n"
    '[bold]concorder broadcast "TEXT" --to AUDIENCE [--at TIME] [--dry-run][/]\n\n'
    "[bold]concorder broadcast --template session-moved --session N --start TIME[/]\n\n"
    "[bold]concorder broadcast status [ID][/]   (no ID: the latest broadcasts)\n\n"
    "[bold]concorder broadcast discard ID[/]    (a scheduled broadcast not yet sent)\n\n"
    "AUDIENCE is all, selected, reserve, group:NAME or lang:CODE. Free text waits for the "
    "end of each person's quiet hours unless --urgent; the session-moved template is "
    "urgent unless --not-urgent."
)


def broadcast_command(
    words: Annotated[
        list[str] | None,
        typer.Argument(
            help="The text (in quotes), or 'status [ID]', or 'discard ID'.", show_default=False
        ),
    ] = None,
    to: Annotated[
        str, typer.Option("--to", help="all, selected, reserve, group:NAME or lang:CODE.")
    ] = "all",
    at: Annotated[
        str | None,
        typer.Option(
            "--at", help="Send later: 'YYYY-MM-DD HH:MM' or 'HH:MM', in the assembly's zone."
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Show who would get what and what SMS would cost; send nothing."
        ),
    ] = False,
    template: Annotated[
        str | None, typer.Option("--template", help="A prepared message: session-moved.")
    ] = None,
    session: Annotated[
        str | None,
        typer.Option("--session", help="session-moved: the session's number (or id in the file)."),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            "--start", help="session-moved: the new start, 'YYYY-MM-DD HH:MM' or 'HH:MM'."
        ),
    ] = None,
    urgent: Annotated[
        bool | None,
        typer.Option(
            "--urgent/--not-urgent", help="Urgent messages ignore quiet hours.", show_default=False
        ),
    ] = None,
) -> None:
    words = words or []
    if words and words[0] == "status" and len(words) <= 2 and template is None:
        _status(words[1] if len(words) == 2 else None)
        return
    if words and words[0] == "discard" and len(words) == 2 and template is None:
        _discard(words[1])
        return
    calendar = _load_calendar(Settings())
    timing, now = timing_of(calendar), utcnow()
    content, is_template = _content(words, template, session, start, timing.timezone, now, calendar)
    try:
        audience = broadcasts.parse_audience(to)
    except BroadcastError as exc:
        _fail(str(exc))
    urgent = is_template if urgent is None else urgent
    when = parse_time_or_fail(at, now, timing.timezone) if at else None
    if when is not None and when <= now:
        _fail("that time has already passed")
    if is_template:
        _warn_if_not_moved(content, calendar)
    if dry_run:
        _show_dry_run(
            _do(lambda s, st: _dry(s, st, content, audience, urgent, now, timing)), urgent
        )
        return

    async def send(session, settings):
        row = await broadcasts.create(
            session,
            settings,
            content,
            audience,
            organiser_id=None,
            origin="cli",
            urgent=urgent,
            at=when,
            now=now,
            timing=timing,
        )
        return row.id, row.status, row.recipients

    broadcast_id, state, people = _do(send)
    if state == "scheduled":
        console.print(
            f"Broadcast [bold]{broadcast_id}[/] scheduled for "
            f"{when.astimezone(timing.zone(None)):%Y-%m-%d %H:%M %Z}."
        )
    else:
        console.print(
            f"Broadcast [bold]{broadcast_id}[/] queued for {people} "
            f"{'person' if people == 1 else 'people'}. Follow it with "
            f"[bold]concorder broadcast status {broadcast_id}[/]."
        )


def parse_time_or_fail(text: str, now: datetime, zone: str, on_day: date | None = None):
    try:
        return parse_time(text, now=now, zone=zone, on_day=on_day)
    except Refused as exc:
        _fail(str(exc))


def _content(
    words: list[str],
    template: str | None,
    session: str | None,
    start: str | None,
    zone: str,
    now: datetime,
    cal: Calendar | None,
) -> tuple[broadcasts.Content, bool]:
    """What to send, and whether it is a template (urgent unless told otherwise)."""
    if template is None:
        return _text_content(words, session, start), False
    if template not in broadcasts.TEMPLATES:
        _fail(f"no template {template!r}; available: {', '.join(broadcasts.TEMPLATES)}")
    if words:
        _fail("a template writes the text itself; leave out the text")
    if not session or not start:
        _fail("session-moved needs --session N and --start TIME")
    number, title, day = _session_named(session, cal)
    moment = parse_time_or_fail(start, now, zone, on_day=day)
    try:
        return broadcasts.session_moved(number, moment, title, zone), True
    except BroadcastError as exc:
        _fail(str(exc))


def _text_content(words: list[str], session: str | None, start: str | None) -> broadcasts.Content:
    """The organiser's own text: one quoted argument."""
    if session or start:
        _fail("--session and --start go with --template session-moved")
    if not words:
        _fail("give the text to send (in quotes), or --template session-moved")
    if len(words) > 1:
        _fail('put the whole text in quotes: concorder broadcast "Hello everyone"')
    try:
        return broadcasts.text_content(words[0])
    except BroadcastError as exc:
        _fail(str(exc))


def _session_named(
    session: str, cal: Calendar | None
) -> tuple[int, dict[str, str] | None, date | None]:
    """The session's number, its titles and its local day (read from the calendar when
    there is one; without it, only a number can name a session)."""
    if cal is None:
        if not session.isdigit():
            _fail("without an assembly file, give the session's number")
        return int(session), None, None
    found = cal.session(session)
    if found is None:
        _fail(f"no session {session!r} in the assembly file")
    return cal.sessions.index(found) + 1, dict(found.title), cal.localise(found.start).date()


def _warn_if_not_moved(content: broadcasts.Content, cal: Calendar | None) -> None:
    """The template only tells people; reminders follow the calendar. Say so when the
    calendar still has the session at another time."""
    if cal is None:
        return

    async def effective(session, settings):
        timed = timed_sessions(cal, await load_moves(session))
        return timed[content.params["session"] - 1].start

    start = _do(effective)
    announced = datetime.fromisoformat(content.params["start"])
    if start != announced:
        number = content.params["session"]
        local = announced.astimezone(cal.zone)
        err.print(
            f"[yellow]Note:[/] the calendar still has session {number} at "
            f"{start.astimezone(cal.zone):%Y-%m-%d %H:%M}; its reminders will say so. "
            f"Move it with: concorder session move {number} --start "
            f"{local:%Y-%m-%dT%H:%M}"
        )


async def _dry(session, settings, content, audience, urgent, now, timing):
    result = await broadcasts.dry_run(
        session, settings, content, audience, urgent=urgent, now=now, timing=timing
    )
    await record(
        session,
        "broadcast.dry_run",
        None,
        audience=str(audience),
        template=content.template,
        recipients=result.count.reachable,
    )
    return result


def _show_dry_run(result: broadcasts.DryRun, urgent: bool) -> None:
    count = result.count
    table = Table("Channel", "Language", "People", title=f"Dry run: {result.audience}")
    for (channel, language), people in sorted(result.by_language.items()):
        table.add_row(channel, language, str(people))
    table.add_row("[bold]total[/]", "", f"[bold]{count.reachable}[/]")
    console.print(table)
    console.print(
        f"SMS: {result.sms_messages} messages, {result.sms_segments} segments, "
        f"estimated cost {result.cost:.2f}."
    )
    if count.opted_out or count.unreachable:
        console.print(
            f"Not sent to: {count.opted_out} opted out, {count.unreachable} with no usable contact."
        )
    if result.held:
        console.print(
            f"{result.held} are in their quiet hours now and would get it when those "
            "end (use --urgent to send at once)."
        )
    elif not urgent:
        console.print("Nobody is in quiet hours now.")
    for language, text in sorted(result.samples.items()):
        console.print(f"\n[bold]{language}[/]: {text}", markup=True, highlight=False)
    console.print("\nNothing was sent.")


def _status(ref: str | None) -> None:
    if ref is None:
        rows = _do(lambda session, settings: broadcasts.recent(session))
        if not rows:
            console.print("No broadcasts yet.")
            return
        table = Table(
            "Id", "Created", "Audience", "Content", "Status", "People", title="Latest broadcasts"
        )
        for row in rows:
            table.add_row(
                str(row.id),
                f"{row.created_at:%Y-%m-%d %H:%M}",
                row.audience,
                row.template or "text",
                row.status,
                str(row.recipients),
            )
        console.print(table)
        return
    if not ref.isdigit():
        _fail(f"{ref!r} is not a broadcast id (a number)")
    result = _do(lambda session, settings: broadcasts.status(session, int(ref)))
    row = result.broadcast
    console.print(
        f"Broadcast [bold]{row.id}[/] to {row.audience} "
        f"({row.template or 'text'}, {'urgent' if row.urgent else 'not urgent'}): "
        f"{row.status}."
    )
    if row.status == "scheduled":
        console.print(f"Goes out at {row.scheduled_at:%Y-%m-%d %H:%M} UTC.")
        return
    table = Table("Status", "People", "Messages", title=f"{row.recipients} people")
    S = OutboxStatus
    for name in (S.QUEUED, S.SENT, S.DELIVERED, S.FAILED, S.CANCELLED):
        if name != S.CANCELLED or result.messages[name]:
            table.add_row(name, str(result.people[name]), str(result.messages[name]))
    console.print(table)


def _discard(ref: str) -> None:
    if not ref.isdigit():
        _fail(f"{ref!r} is not a broadcast id (a number)")
    _do(lambda session, settings: broadcasts.discard(session, int(ref)))
    console.print(f"Broadcast [bold]{ref}[/] discarded; nothing was sent.")
