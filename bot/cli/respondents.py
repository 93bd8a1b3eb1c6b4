"""`concorder respondents`: people who registered outside the chat (paper form, phone
call, web form), drawn with the chat's registrations; the drawn the service cannot message,
for the organisers to contact; and the answers the organisers got from them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select

from bot.cli.common import console, err, run, with_database
from bot.cli.recruitment import assembly_or_exit
from bot.services import respondents
from bot.services.draw import DrawRecordError, rules_for
from bot.settings import Settings
from store import audit
from store.models import utcnow
from store.recruitment import CONFIRMED, DECLINED, RESERVE, SELECTED, PoolEntry, Selection

ASSEMBLY = typer.Option(
    None, "--assembly", help="The assembly file (TOML). Default: CONCORDER_ASSEMBLY."
)
QUOTAS = typer.Option(
    None,
    "--quotas",
    help="The draw's quota file (TOML or the stratification app's CSV) whose categories the "
    "answers must match. Default: the assembly file's own quotas.",
)
SHOWN = 50


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Respondents who registered outside the chat (paper, call, web).",
        no_args_is_help=True,
    )
    app.add_typer(group, name="respondents")
    group.command("import")(import_command)
    group.command("to-contact")(to_contact_command)
    group.command("answer")(answer_command)


def categories_for(
    assembly: Any, quotas_file: Path | None
) -> tuple[dict[str, set[str]], list[str]]:
    """The answers the draw knows: each quota category's values, and each registration
    question's options; and the quota categories, which every respondent must answer."""
    known: dict[str, set[str]] = {
        q.id: {o.key for o in q.options} for q in getattr(assembly, "questions", ())
    }
    try:
        rules = rules_for(assembly, quotas_file)
    except DrawRecordError:
        if quotas_file:
            raise
        return known, []  # no quotas yet: the questions alone
    for category, values in rules.quotas.items():
        known.setdefault(category, set()).update(values)
    return known, list(rules.quotas)


def import_command(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="CSV with a header: id, consent (paper, call or web), consent_ref, one "
            "column per quota category, and optionally household, phone, email, language.",
        ),
    ],
    quotas_file: Path | None = QUOTAS,
    assembly_path: Path | None = ASSEMBLY,
    dry_run: bool = typer.Option(False, "--dry-run", help="Check everything; write nothing."),
) -> None:
    """Import respondents registered outside the chat. Every row is checked first (errors
    by line and column); nothing is written unless all are good. Importing the same file
    again changes nothing; a changed row updates that person (found by the id column)."""
    settings = Settings()
    assembly = assembly_or_exit(assembly_path, settings)
    try:
        known, required = categories_for(assembly, quotas_file)
        parsed = respondents.parse_respondents(
            file, known, list(assembly.languages), settings.default_region, required
        )
    except (respondents.RespondentsFileError, DrawRecordError, UnicodeDecodeError) as error:
        err.print(f"[red]Cannot read the respondents:[/] {error}")
        raise typer.Exit(2) from None
    if parsed.problems:
        _show_problems(file, parsed.problems)
        err.print(f"[red]Nothing imported:[/] {len(parsed.problems)} problems in {file}.")
        raise typer.Exit(1)

    async def work(sessions):
        return await respondents.import_respondents(
            sessions, assembly, parsed.rows, dry_run=dry_run
        )

    try:
        result = run(with_database(settings, work))
    except respondents.ImportRefused as refused:
        _show_problems(file, refused.problems)
        err.print(f"[red]Nothing imported:[/] {len(refused.problems)} problems in {file}.")
        raise typer.Exit(1) from None
    except RuntimeError as error:  # another assembly's database
        err.print(f"[red]{error}[/]")
        raise typer.Exit(1) from None
    table = Table(title=f"Respondents from {file.name}")
    table.add_column("People", justify="right")
    table.add_column("What happens")
    for outcome in (
        respondents.importing.CREATED,
        respondents.importing.JOINED,
        respondents.importing.UPDATED,
        respondents.importing.UNCHANGED,
    ):
        table.add_row(str(result.counts[outcome]), _WORDS[outcome])
    table.add_row(str(result.without_contact), "have no phone: if drawn, the organisers tell them")
    console.print(table)
    if dry_run:
        console.print("[yellow]Dry run: nothing written.[/]")


_WORDS = {
    "created": "new, registered",
    "from the pool": "already in the pool, now registered",
    "updated": "already imported, updated",
    "unchanged": "already imported, nothing new",
}


def _show_problems(file: Path, problems: list[respondents.Problem]) -> None:
    table = Table(title=f"Problems in {file}")
    table.add_column("Line", justify="right")
    table.add_column("Column")
    table.add_column("Problem")
    for problem in problems[:SHOWN]:
        table.add_row(str(problem.line), problem.column or "-", problem.reason)
    err.print(table)
    if len(problems) > SHOWN:
        err.print(f"... and {len(problems) - SHOWN} more.")


def to_contact_command() -> None:
    """The drawn (panel and reserve) the service cannot message: registered with no phone.
    The organisers tell them, then record their answer with `respondents answer`."""
    settings = Settings()

    async def work(sessions):
        async with sessions() as session:
            drawn = (
                await session.execute(
                    select(Selection).where(
                        Selection.status.in_((SELECTED, CONFIRMED, RESERVE, DECLINED))
                    )
                )
            ).scalars()
            by_id = {s.participant_id: s for s in drawn}
            return by_id, await respondents.to_contact(session, sorted(by_id))

    drawn, people = run(with_database(settings, work))
    if not drawn:
        console.print("Nobody drawn yet.")
        return
    table = Table(title="Drawn, with no contact: the organisers tell them")
    for column in (
        "Participant",
        "Id in the file",
        "Registered by",
        "E-mail",
        "Status",
        "Answer by",
    ):
        table.add_column(column)
    for person in sorted(people, key=lambda p: (drawn[p.participant_id].status, p.participant_id)):
        seat = drawn[person.participant_id]
        table.add_row(
            person.participant_id,
            person.external_id or "-",
            person.source or "-",
            person.email or "-",
            seat.status + (f" #{seat.reserve_rank}" if seat.reserve_rank else ""),
            _when(seat.confirm_by),
        )
    console.print(table)
    console.print(f"{len(people)} of {len(drawn)} drawn have no contact.")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


def answer_command(
    person: Annotated[str, typer.Argument(help="Their id in the respondents file, or P... id.")],
    confirmed: bool = typer.Option(
        None, "--confirmed/--declined", help="They take their place, or they do not."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change; write nothing."),
) -> None:
    """Record the answer a drawn person gave the organisers (by letter or phone)."""
    if confirmed is None:
        err.print("[red]Say --confirmed or --declined.[/]")
        raise typer.Exit(2)
    settings = Settings()
    status = CONFIRMED if confirmed else DECLINED

    async def work(sessions):
        async with sessions.begin() as session:
            pid = (
                await session.execute(
                    select(PoolEntry.participant_id).where(PoolEntry.external_id == person)
                )
            ).scalar_one_or_none() or person
            seat = (
                await session.execute(
                    select(Selection).where(Selection.participant_id == pid).with_for_update()
                )
            ).scalar_one_or_none()
            if seat is None or seat.status not in (SELECTED, CONFIRMED):
                where = "not drawn" if seat is None else f"{seat.status}, not on the panel"
                raise LookupError(f"{person}: {where}")
            if dry_run:
                return pid, seat.status
            before = seat.status
            now = utcnow()
            seat.status, seat.responded_at = status, now
            seat.reason = "declined" if status == DECLINED else None
            await audit.append(
                session, "selection.answered_to_organisers", {"status": status}, participant_id=pid
            )
            return pid, before

    try:
        pid, before = run(with_database(settings, work))
    except LookupError as error:
        err.print(f"[red]{error.args[0]}[/]")
        raise typer.Exit(1) from None
    verb = "would be" if dry_run else "is now"
    console.print(f"{pid} ({before}) {verb} {status}.")
    if status == DECLINED and not dry_run:
        console.print("Run `concorder replace` to fill the place.")
