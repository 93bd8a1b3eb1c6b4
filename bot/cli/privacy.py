"""Organiser commands for a person's data: `concorder erase` and `concorder person export`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from bot.cli.common import console, err, load_config_or_exit, run, with_relay
from bot.services import privacy, withdrawals
from bot.services.lookup import PersonNotFound, find_participant
from bot.services.withdrawals import WithdrawError
from bot.settings import Settings
from flows.assembly import AssemblyError, assembly_of
from flows.config_file import AssemblyFile
from flows.retention import MEANINGS
from scheduler.config import calendar_of
from store.models import utcnow

ASSEMBLY = typer.Option(
    None, "--assembly", help="The assembly file (TOML). Default: CONCORDER_ASSEMBLY."
)
DRY_RUN = typer.Option(False, "--dry-run", help="Show what would be erased; change nothing.")
VACUUM_FULL = typer.Option(
    False,
    "--vacuum-full",
    help="PostgreSQL: rewrite the tables touched (VACUUM FULL) so no erased byte stays in "
    "their files; each table is locked while it runs, so choose a quiet moment.",
)
PERSON = typer.Argument(
    help="A phone number, a Telegram chat id, or a participant id (P...).",
    show_default=False,
)

OUTPUT = typer.Option(
    None, "--output", "-o", help="Write the JSON here (default: standard output)."
)


def register(app: typer.Typer) -> None:
    person_app = typer.Typer(help="One person's data.", no_args_is_help=True)
    app.command("erase")(erase)
    app.add_typer(person_app, name="person")
    person_app.command("export")(export)


def _read(path: str):
    file = AssemblyFile.read(path, AssemblyError)
    return assembly_of(file), calendar_of(file) if file.has_calendar else None


def erase(
    person: Annotated[str | None, PERSON] = None,
    due: bool = typer.Option(False, "--due", help="Erase what \\[retention] says is due now."),
    assembly_path: Path | None = ASSEMBLY,
    dry_run: bool = DRY_RUN,
    vacuum_full: bool = VACUUM_FULL,
) -> None:
    """Erase one person's data now, or everyone's that retention says is due (--due).

    Phone numbers and chat ids, messages in and out, registration answers, pool
    attributes and invitation links go; the pseudonymous records the draw and the audit
    trail need stay (see the README). Queued messages to the person are cancelled."""
    settings = Settings()
    if due == (person is not None):
        err.print("[red]Give one PERSON, or --due[/] (not both).")
        raise typer.Exit(2)
    if due:
        _, (assembly, calendar) = load_config_or_exit(
            assembly_path, settings, _read, "assembly file"
        )
        if assembly.retention is None:
            err.print("[red]The assembly file has no \\[retention] table:[/] nothing is ever due.")
            raise typer.Exit(2)
        _erase_due(settings, assembly, calendar, dry_run, vacuum_full)
        return
    assembly = None
    if assembly_path is not None or settings.assembly_file:
        _, (assembly, _calendar) = load_config_or_exit(
            assembly_path, settings, _read, "assembly file"
        )
    _erase_person(settings, assembly, person, dry_run, vacuum_full)


def _erase_due(settings: Settings, assembly, calendar, dry_run: bool, full: bool) -> None:
    async def plan(relay):
        return await privacy.plan_due(relay, utcnow())

    people, organisers = run(with_relay(settings, plan, assembly=assembly, calendar=calendar))
    table = Table(title="Due for erasure")
    for column in ("participant", "rule", "since", "due"):
        table.add_column(column)
    for item in people[:50]:
        table.add_row(
            item.participant_id,
            MEANINGS[item.rule],
            f"{item.since:%Y-%m-%d %H:%M}",
            f"{item.due_at:%Y-%m-%d %H:%M}",
        )
    if len(people) > 50:
        table.add_row(f"... and {len(people) - 50} more", "", "", "")
    if people:
        console.print(table)
    console.print(f"{len(people)} people due; {len(organisers)} organisers' records due.")
    if dry_run:
        console.print("Dry run: nothing was changed.")
    if dry_run or not (people or organisers):
        return

    async def work(relay):
        with Progress(
            TextColumn("erasing"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
        ) as progress:
            task = progress.add_task("erase", total=len(people))
            return await privacy.erase_due(
                relay, progress=lambda n: progress.advance(task, n), vacuum_full=full
            )

    done = run(with_relay(settings, work, assembly=assembly, calendar=calendar))
    console.print(
        f"Erased {len(done.erased)} people and {done.organisers} organisers' records; "
        "each erasure is in the audit trail."
    )


def _erase_person(settings: Settings, assembly, person: str, dry_run: bool, full: bool) -> None:
    async def work(relay):
        async with relay.sessions.begin() as session:
            try:
                participant = await find_participant(session, person, settings.default_region)
            except PersonNotFound as exc:
                return None, str(exc), {}, None
            pid = participant.id
            held = await privacy.rows_held(session, pid)
            withdrawal = await _withdraw_first(session, relay, participant, dry_run)
        if dry_run:
            return pid, None, held, withdrawal
        touched = await privacy.erase_request(relay, pid, vacuum_full=full)
        return pid, None if touched is not None else "erased before", held, withdrawal

    pid, problem, held, withdrawal = run(with_relay(settings, work, assembly=assembly))
    if withdrawal is not None and not withdrawal.done_already:
        verb = "will be" if dry_run else "was"
        freed = " and their place on the panel freed" if withdrawal.frees_a_place else ""
        console.print(f"{pid} {verb} withdrawn first{freed}; the organisers are told.")
    if pid is None:
        err.print(f"[red]Not found:[/] {problem}")
        raise typer.Exit(1)
    if problem:
        console.print(f"{pid} was erased before: nothing more to erase.")
        return
    verb = "would be" if dry_run else "were"
    table = Table(title=f"{pid}: what {verb} erased" + (" (dry run)" if dry_run else ""))
    table.add_column("table")
    table.add_column("rows", justify="right")
    table.add_column("done to them")
    for name, (count, action) in held.items():
        if count:
            table.add_row(name, str(count), "kept (pseudonymous)" if action == "keep" else action)
    console.print(table)
    if not dry_run:
        console.print(f"Erased {pid}; the erasure is in the audit trail.")


async def _withdraw_first(session, relay, participant, dry_run: bool):
    """Someone erased on request leaves the assembly first, as if they had replied WITHDRAW:
    any place they held is freed for `concorder replace` and the organisers hear of it.
    None when they were never in the recruitment."""
    try:
        if dry_run:
            return await withdrawals.plan_withdrawal(session, participant)
        return await withdrawals.withdraw_person(
            session, relay, participant, reason="their data is erased"
        )
    except WithdrawError:
        return None


def export(
    address: Annotated[
        str, typer.Argument(help="A phone number, a Telegram chat id, or a participant id.")
    ],
    output: Path | None = OUTPUT,
) -> None:
    """Everything held about one person, as JSON (GDPR Art. 15 and 20)."""
    settings = Settings()

    async def work(relay):
        async with relay.sessions() as session:
            try:
                pid = (await find_participant(session, address, settings.default_region)).id
            except PersonNotFound as exc:
                return None, str(exc)
            return await privacy.export_person(session, pid, relay.invite_key), None

    data, problem = run(with_relay(settings, work))
    if data is None:
        err.print(f"[red]Not found:[/] {problem}")
        raise typer.Exit(1)
    text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True)
    if output is None:
        print(text)
        return
    output.write_text(text + "\n", encoding="utf-8")
    output.chmod(0o600)
    console.print(f"Wrote everything held about {data['participant_id']} to {output}.")
