"""Organiser commands for recruitment: `concorder pool import`, `invite`, `status`,
`notify-draw`. Every command that changes something has --dry-run."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from bot.cli.common import console, err, load_config_or_exit, run, with_database, with_relay
from bot.services import invite_codes, recruitment
from bot.settings import Settings
from flows.assembly import Assembly, load_assembly
from store.models import utcnow

ASSEMBLY = typer.Option(
    None, "--assembly", help="The assembly file (TOML). Default: CONCORDER_ASSEMBLY."
)
DRY_RUN = typer.Option(False, "--dry-run", help="Show what would happen; change nothing.")
SHOWN_BAD_ROWS = 50


def register(app: typer.Typer) -> None:
    pool_app = typer.Typer(
        help="The recruitment pool: the people who may be invited.", no_args_is_help=True
    )
    app.add_typer(pool_app, name="pool")
    pool_app.command("import")(pool_import)
    app.command("invite")(invite)
    app.command("notify-draw")(notify_draw)
    app.command("status")(status)


def assembly_or_exit(path: Path | None, settings: Settings) -> Assembly:
    """The assembly file (--assembly, else CONCORDER_ASSEMBLY), or exit naming its problems."""
    _, assembly = load_config_or_exit(path, settings, load_assembly, "assembly file")
    return assembly


@contextmanager
def _progress():
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        yield progress


def pool_import(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="CSV with a header: phone and/or telegram, language, household, id, and any "
            "known attributes.",
        ),
    ],
    assembly_path: Path | None = ASSEMBLY,
    skip_bad: bool = typer.Option(
        False,
        "--skip-bad",
        help="Import the good rows even if some are bad (default: nothing is imported).",
    ),
    dry_run: bool = DRY_RUN,
) -> None:
    """Import the recruitment pool. Duplicates (same phone, handle or id) are merged."""
    settings = Settings()
    assembly = assembly_or_exit(assembly_path, settings)
    with _progress() as progress:
        task = progress.add_task("Reading", total=None)
        try:
            parsed = recruitment.parse_pool(
                file,
                assembly,
                settings.default_region,
                progress=lambda n: progress.update(task, completed=n),
            )
        except (recruitment.RecruitmentError, UnicodeDecodeError) as exc:
            err.print(f"[red]Cannot read the pool:[/] {exc}")
            raise typer.Exit(2) from None
    _show_bad_rows(parsed.bad)
    summary = Table(title="Pool file", show_header=False)
    summary.add_row("Rows read", str(parsed.read))
    summary.add_row("People (after merging duplicates)", str(len(parsed.rows)))
    summary.add_row("Duplicate rows merged", str(parsed.merged))
    summary.add_row("Bad rows", str(len(parsed.bad)))
    console.print(summary)
    if parsed.bad and not skip_bad:
        err.print(
            f"[red]Nothing imported:[/] {len(parsed.bad)} bad rows. Fix them, or use "
            "--skip-bad to import the others."
        )
        raise typer.Exit(1)
    if dry_run:
        console.print(f"Dry run: {len(parsed.rows)} people would be imported or updated.")
        return

    async def work(sessions):
        with _progress() as progress:
            task = progress.add_task("Importing", total=len(parsed.rows))
            return await recruitment.import_pool(
                sessions,
                assembly,
                parsed.rows,
                progress=lambda n: progress.advance(task, n),
                key=invite_codes.server_key(settings),  # numbers that opted out stay so
            )

    try:
        result = run(with_database(settings, work))
    except recruitment.RecruitmentError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    console.print(f"Imported: {result.created} new people, {result.updated} updated.")


def _show_bad_rows(bad: list[recruitment.BadRow]) -> None:
    if not bad:
        return
    table = Table(title="Bad rows")
    table.add_column("Line", justify="right")
    table.add_column("Reason")
    for row in bad[:SHOWN_BAD_ROWS]:
        table.add_row(str(row.line), row.reason)
    err.print(table)
    if len(bad) > SHOWN_BAD_ROWS:
        err.print(f"... and {len(bad) - SHOWN_BAD_ROWS} more.")


def invite(
    assembly_path: Path | None = ASSEMBLY,
    limit: int | None = typer.Option(None, "--limit", min=1, help="Invite at most N people."),
    letters: Annotated[
        Path,
        typer.Option(
            "--letters",
            help="Where the Telegram links of handle-only people go (CSV, "
            "appended), for letters or QR codes.",
        ),
    ] = Path("invitation-letters.csv"),
    bot_username: str | None = typer.Option(
        None,
        "--bot-username",
        help="The Telegram bot's username for links "
        "(default: asked of Telegram, else the "
        "assembly file).",
    ),
    remind: bool = typer.Option(
        False,
        "--remind",
        help="Instead of inviting: send the "
        "reminders that are due and close unanswered invitations.",
    ),
    dry_run: bool = DRY_RUN,
) -> None:
    """Invite the pool: by SMS (with a Telegram link), or by letter for handle-only people.
    Resumable: nobody is ever invited twice."""
    settings = Settings()
    assembly = assembly_or_exit(assembly_path, settings)
    if remind:
        _remind(settings, assembly, dry_run)
        return

    async def work(sessions):
        username, source = await recruitment.resolve_bot_username(settings, assembly, bot_username)
        if source == "placeholder":
            console.print(
                f"[yellow]No Telegram bot configured: links use the placeholder "
                f"@{username} and only work in the simulator.[/]"
            )
        if dry_run:
            async with sessions() as session:
                return await recruitment.plan_invitations(
                    session, settings, assembly, username, limit
                )
        async with sessions() as session:
            plan = await recruitment.plan_invitations(session, settings, assembly, username, limit)
        with _progress() as progress:
            task = progress.add_task("Inviting", total=plan.total)
            return await recruitment.send_invitations(
                sessions,
                settings,
                assembly,
                username,
                limit=limit,
                letters_path=letters,
                progress=lambda n: progress.advance(task, n),
            )

    try:
        outcome = run(with_database(settings, work))
    except recruitment.RecruitmentError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    if isinstance(outcome, recruitment.InvitePlan):
        _show_plan(outcome, settings)
        return
    table = Table(title="Invitations sent")
    table.add_column("Channel")
    table.add_column("People", justify="right")
    for channel, count in sorted(outcome.invited.items()):
        table.add_row(channel, str(count))
    console.print(table)
    console.print(f"{outcome.messages} messages queued.")
    if outcome.letters:
        console.print(f"{outcome.letters} letter links written to {letters}.")


def _show_plan(plan: recruitment.InvitePlan, settings: Settings) -> None:
    table = Table(title="Dry run: invitations that would go out")
    table.add_column("Channel")
    table.add_column("Language")
    table.add_column("People", justify="right")
    for (channel, language), count in sorted(plan.by_channel_language.items()):
        table.add_row(channel, language, str(count))
    table.add_row("[bold]total[/]", "", f"[bold]{plan.total}[/]")
    console.print(table)
    console.print(
        f"SMS: {plan.sms_messages} messages, {plan.sms_segments} segments, "
        f"estimated cost {plan.cost(settings.sms_cost_per_segment):.2f} "
        f"(at {settings.sms_cost_per_segment} per segment)."
    )


def _remind(
    settings: Settings, assembly: Assembly, dry_run: bool, now: datetime | None = None
) -> None:
    now = now or utcnow()

    async def work(relay):
        if dry_run:
            async with relay.sessions() as session:
                due = await recruitment.due_invitation_reminders(session, now)
            return len(due), None
        sent = await recruitment.send_invitation_reminders(relay, now)
        async with relay.sessions.begin() as session:
            lapsed = await recruitment.lapse_invitations(session, now)
        return sent, lapsed

    sent, lapsed = run(with_relay(settings, work, assembly=assembly))
    if dry_run:
        console.print(f"Dry run: {sent} reminders are due.")
        return
    console.print(f"{sent} reminders sent, {lapsed} invitations lapsed.")


def notify_draw(assembly_path: Path | None = ASSEMBLY, dry_run: bool = DRY_RUN) -> None:
    """After a draw: ask the selected to CONFIRM, tell reserves, thank the others."""
    settings = Settings()
    assembly = assembly_or_exit(assembly_path, settings)
    if dry_run:
        status = run(with_database(settings, _funnel))
        console.print(
            f"Dry run: {status.selections.get('selected', 0)} selected and "
            f"{status.selections.get('reserve', 0)} reserves in the draw; those "
            "not told yet would be written to now."
        )
        return

    async def work(relay):
        return await recruitment.notify_draw_outcome(relay, assembly)

    told = run(with_relay(settings, work, assembly=assembly))
    table = Table(title="Told the outcome of the draw")
    table.add_column("Outcome")
    table.add_column("People", justify="right")
    for outcome, count in sorted(told.items()):
        table.add_row(outcome, str(count))
    console.print(table)
    summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(told.items()))
    console.print(f"Told the outcome: {summary or 'nobody new'}.")


async def _funnel(sessions):
    async with sessions() as session:
        return await recruitment.funnel(session)


def status(assembly_path: Path | None = ASSEMBLY) -> None:
    """The recruitment funnel: pool, invitations, replies, consents, registrations, draw."""
    settings = Settings()
    assembly = assembly_or_exit(assembly_path, settings)

    async def work(sessions):
        async with sessions() as session:
            return (
                await recruitment.funnel(session),
                await recruitment.funnel_by_category(session, assembly),
            )

    data, categories = run(with_database(settings, work))
    table = Table(title=f"Recruitment: {assembly.name}")
    table.add_column("Stage")
    table.add_column("People", justify="right")
    table.add_row("In the pool", str(data.pool))
    for reach, count in data.pool_by_reach.items():
        table.add_row(f"  with a {reach}", str(count))
    table.add_row("Not invited yet", str(data.not_invited))
    table.add_row("Invited", str(data.invited))
    for channel, count in sorted(data.invitations_by_channel.items()):
        table.add_row(f"  by {channel}", str(count))
    for state in recruitment.INVITATION_STATUSES:
        table.add_row(f"  now {state.replace('_', ' ')}", str(data.invitations.get(state, 0)))
    table.add_row("Consents in force", str(data.consents))
    for state in recruitment.SELECTION_STATUSES:
        table.add_row(f"Draw: {state}", str(data.selections.get(state, 0)))
    console.print(table)
    _show_categories(categories)


def _show_categories(categories: list[recruitment.CategoryFunnel]) -> None:
    """Per category of the draw: who registered, who holds a place, who confirmed."""
    table = Table(title="By category (registered people; selected: holding a place)")
    table.add_column("Category")
    table.add_column("Value")
    for column in ("Registered", "Selected", "Confirmed"):
        table.add_column(column, justify="right")
    for counts in categories:
        for n, value in enumerate(counts.values):
            table.add_row(
                counts.category if n == 0 else "",
                value,
                str(counts.registered[value]),
                str(counts.selected[value]),
                str(counts.confirmed[value]),
                end_section=n == len(counts.values) - 1,
            )
    console.print(table)
