"""`concorder groups`: small-group tables of the confirmed panel for deliberation.

assign (and --verify), move, show and notify. The allocation is pure
(bot.services.groups.allocate); records.py gathers its input and writes the run, seats
and audit event in one transaction; notify.py tells each member their own seat.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer
from sqlalchemy.exc import IntegrityError

from bot.cli.common import console, err, with_database, with_relay
from bot.cli.groups_display import members_of, show_comparison, show_round
from bot.services.groups import allocate as alloc
from bot.services.groups import notify as tell
from bot.services.groups import records
from bot.services.groups.records import GroupsError
from bot.settings import Settings
from store.groups import current_run, seats_of

ASSEMBLY = typer.Option(
    None,
    "--assembly",
    help="The assembly file (TOML), for \\[groups] mix_languages. Default: CONCORDER_ASSEMBLY.",
)
DRY_RUN = typer.Option(False, "--dry-run", help="Show what would happen; write nothing.")
PINS = typer.Option(
    None,
    "--pin",
    help="PARTICIPANT:TABLE (every round) or PARTICIPANT:TABLE:ROUND; may be repeated.",
)


def register(app: typer.Typer) -> None:
    groups = typer.Typer(
        help="Small-group tables of the confirmed panel, for deliberation.",
        no_args_is_help=True,
    )
    app.add_typer(groups, name="groups")
    groups.command("assign")(assign)
    groups.command("move")(move)
    groups.command("show")(show)
    groups.command("notify")(notify)


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]{message}[/]", highlight=False)
    return typer.Exit(code)


def _mix_languages(path: Path | None, settings: Settings) -> bool:
    if not path and not settings.assembly_file:
        return False
    from bot.cli.recruitment import assembly_or_exit

    return assembly_or_exit(path, settings).groups.mix_languages


def assign(
    size: int = typer.Option(6, "--size", help="People per table (5 to 8 are usual)."),
    rounds: int = typer.Option(1, "--rounds", help="How many rounds of tables."),
    seed: str = typer.Option(None, "--seed", help="The seed (announce it beforehand)."),
    pin: list[str] = PINS,
    replace: bool = typer.Option(
        False, "--replace", help="Allocate again over an existing allocation."
    ),
    verify: bool = typer.Option(
        False, "--verify", help="Re-run the recorded allocation and check it matches."
    ),
    dry_run: bool = DRY_RUN,
    assembly_path: Path = ASSEMBLY,
) -> None:
    """Allocate the confirmed panel to tables, round by round.

    Every quota category mixed evenly, as few repeat meetings as possible, a language kept
    together; compared with a random allocation and the best of 100 shuffles."""
    settings = Settings()
    if verify:
        _verify(settings)
        return
    if not seed:
        raise _fail("Give --seed SEED (announce it before the allocation).")
    mix_languages = _mix_languages(assembly_path, settings)
    try:
        pins = tuple(records.parse_pin(p) for p in pin or [])

        async def gather(sessions):
            async with sessions() as session:
                existing = await current_run(session)
                if existing is not None and not (replace or dry_run):
                    raise GroupsError(records.already_allocated(existing))
                return existing, await records.panel_members(session)

        existing, (members, categories) = asyncio.run(with_database(settings, gather))
        problem = alloc.Problem(
            tuple(members), tuple(categories), size, rounds, seed, pins, mix_languages
        )
        comparison = alloc.allocate(problem)
    except (GroupsError, alloc.AllocationError) as error:
        raise _fail(str(error)) from None
    console.print(
        f"{len(members)} confirmed members; {len(comparison.layout.sizes)} tables of "
        f"{min(comparison.layout.sizes)}-{max(comparison.layout.sizes)}, {rounds} round(s); "
        f"categories {', '.join(categories) or 'none'}; languages "
        f"{'mixed' if mix_languages else 'kept together'}."
    )
    _warn_small_tables(comparison.layout)
    plain = comparison.ours.plain()
    by_id = {m.id: m for m in members}
    for r in range(rounds):
        show_round(plain, r, by_id, categories)
    show_comparison(records.result_record(comparison)["quality"])
    if dry_run:
        if existing is not None and not replace:
            console.print(f"[yellow]{records.already_allocated(existing)}[/]")
        console.print("[yellow]Dry run: nothing recorded and nobody told.[/]")
        return

    _record(settings, problem, comparison, replace)


# Fewer than this cannot hold a discussion: one person alone, or a pair with no third view.
FEWEST_TO_DELIBERATE = 3


def _warn_small_tables(layout) -> None:
    """A language spoken by too few members leaves them at a table on their own."""
    for block in layout.blocks:
        small = [t + 1 for t in block.tables if layout.sizes[t] < FEWEST_TO_DELIBERATE]
        for table in small:
            size = layout.sizes[table - 1]
            console.print(
                f"[yellow]Table {table} ({block.name}) has only {size} member(s): too few "
                "to deliberate. Set \\[groups] mix_languages = true in the assembly file to "
                "seat them with others (with interpretation), then allocate again.[/]"
            )


def _record(settings: Settings, problem, comparison, replace: bool) -> None:
    async def save(sessions):
        async with sessions.begin() as session:
            return await records.record_allocation(session, problem, comparison, replace=replace)

    try:
        done = asyncio.run(with_database(settings, save))
    except GroupsError as error:
        raise _fail(str(error)) from None
    except IntegrityError:
        raise _fail(
            "Another command recorded tables at the same moment; nothing was recorded by this "
            "one. See them with `concorder groups show`."
        ) from None
    if done.replaced:
        console.print(f"Allocation {done.replaced} replaced.")
    console.print(
        f"Allocation {done.run.run_id} recorded (audit event {done.run.audit_seq}); "
        "tell the members with `concorder groups notify`."
    )


def _verify(settings: Settings) -> None:
    async def work(sessions):
        async with sessions() as session:
            return await records.verify_allocation(session)

    try:
        check = asyncio.run(with_database(settings, work))
    except GroupsError as error:
        raise _fail(str(error)) from None
    if not check.ok:
        for difference in check.differences:
            err.print(f"[red]{check.run_id}: {difference}[/]", highlight=False)
        raise typer.Exit(1)
    console.print(f"[green]Allocation {check.run_id}: same tables, seats as recorded.[/]")


def move(
    person: str = typer.Argument(
        ..., help="The member: participant id, phone number or Telegram id."
    ),
    round_no: int = typer.Option(..., "--round", help="The round."),
    table: int = typer.Option(..., "--table", help="The table to seat them at."),
    dry_run: bool = DRY_RUN,
) -> None:
    """Seat one member at another table for one round (the organisers' choice)."""
    from bot.services.lookup import PersonNotFound, find_participant

    settings = Settings()

    async def work(sessions):
        async with sessions.begin() as session:
            participant = await find_participant(session, person)
            return await records.move_member(
                session, participant.id, round_no, table, dry_run=dry_run
            )

    try:
        done = asyncio.run(with_database(settings, work))
    except (GroupsError, PersonNotFound) as error:
        raise _fail(str(error)) from None
    sizes = ", ".join(f"{t}: {n}" for t, n in sorted(done.sizes_after.items()))
    verb = "Would move" if dry_run else "Moved"
    console.print(
        f"{verb} {done.member} in round {done.round} from table {done.old_table} to table "
        f"{done.new_table}, as Member {done.letter}. Table sizes then: {sizes}."
    )
    if done.language_elsewhere:
        console.print(
            f"[yellow]{done.member} speaks {done.language}; table {done.new_table} speaks "
            f"{done.language_elsewhere}.[/]"
        )
    if dry_run:
        console.print("[yellow]Dry run: nothing changed.[/]")
    else:
        console.print("Tell them with `concorder groups notify`.")


def show(
    round_no: int = typer.Option(None, "--round", help="Only this round."),
) -> None:
    """The tables as they stand, moves included.

    Members by letter and pseudonym, the mix of every quota category, repeat meetings."""
    settings = Settings()

    async def work(sessions):
        async with sessions() as session:
            run = await current_run(session)
            if run is None:
                raise GroupsError("No tables are allocated yet: run `concorder groups assign`.")
            return run, await seats_of(session, run.run_id)

    try:
        run, seats = asyncio.run(with_database(settings, work))
    except GroupsError as error:
        raise _fail(str(error)) from None
    rounds_count = run.payload["rounds"]
    if round_no is not None and not 1 <= round_no <= rounds_count:
        raise _fail(f"Round {round_no}? This allocation has rounds 1-{rounds_count}.")
    tables: list[list[list[str]]] = [[] for _ in range(rounds_count)]
    letters: list[dict[str, str]] = [{} for _ in range(rounds_count)]
    for seat in seats:
        per_round = tables[seat.round - 1]
        while len(per_round) < seat.table_no:
            per_round.append([])
        per_round[seat.table_no - 1].append(seat.participant_id)
        letters[seat.round - 1][seat.participant_id] = seat.letter
    console.print(
        f"Allocation {run.run_id} (seed {run.seed!r}, {run.created_at:%Y-%m-%d %H:%M} UTC), "
        f"{len(run.moves)} move(s) since."
    )
    members = members_of(run.payload)
    for r in range(rounds_count):
        if round_no is None or r + 1 == round_no:
            show_round(tables, r, members, run.payload["categories"], letters[r])


def notify(
    round_no: int = typer.Option(None, "--round", help="Only this round (default: every round)."),
    dry_run: bool = DRY_RUN,
) -> None:
    """Tell each member their letter, table and table-mates' letters.

    In their language, and nothing else about the others. Each seat is told once; a moved
    seat again."""
    settings = Settings()

    async def work(relay):
        return await tell.notify_seats(relay, round_no, dry_run=dry_run)

    try:
        told = asyncio.run(with_relay(settings, work))
    except GroupsError as error:
        raise _fail(str(error)) from None
    for (r, channel, language), people in sorted(told.told.items()):
        console.print(f"Round {r}: {people} by {channel} in {language}.")
    for language, text in sorted(told.samples.items()):
        console.print(f"[dim]{language}:[/] {text}", highlight=False)
    if told.left:
        console.print(f"Not told (no longer on the panel): {', '.join(told.left)}.")
    if told.opted_out:
        console.print(f"Not told (opted out): {', '.join(told.opted_out)}.")
    if told.not_reachable:
        console.print(f"Not told (no way to reach them): {', '.join(told.not_reachable)}.")
    if dry_run:
        console.print(f"[yellow]Dry run: {told.people} message(s) would be queued.[/]")
    else:
        console.print(f"{told.people} message(s) queued (allocation {told.run_id}).")
