"""`concorder groups` for the conversation at the tables: post, prompt, pause, resume, end,
hide, stats, cost, and the facilitators named per table (facilitator, facilitators).

Display only: the work is bot.services.deliberation (the tables) and
bot.services.facilitation (roles, what a round looks like, what it costs by SMS).
"""

from __future__ import annotations

import asyncio

import typer
from rich.table import Table

from bot.cli.common import console, err, with_database, with_relay
from bot.services import deliberation
from bot.services.facilitation import cost as costs
from bot.services.facilitation import roles
from bot.services.facilitation.facts import overview
from bot.services.facilitation.roles import FacilitationError
from bot.services.groups.records import GroupsError
from bot.settings import Settings
from store.deliberation import Contribution
from store.facilitation import EVERY_ROUND

ROUND = typer.Option(None, "--round", help="The round (default: the one under way).")
TABLE = typer.Option(None, "--table", help="One table (default: every table of the round).")
DRY_RUN = typer.Option(False, "--dry-run", help="Show what would happen; change nothing.")
ERRORS = (FacilitationError, GroupsError, deliberation.DeliberationError)


def register(app: typer.Typer) -> None:
    """Add the commands to `concorder groups` (made by bot.cli.groups)."""
    groups = next(g.typer_instance for g in app.registered_groups if g.name == "groups")
    groups.command("post")(post)
    groups.command("prompt")(prompt)
    groups.command("pause")(pause)
    groups.command("resume")(resume)
    groups.command("end")(end)
    groups.command("hide")(hide)
    groups.command("stats")(stats)
    groups.command("cost")(cost)
    groups.command("facilitator")(facilitator)
    groups.command("facilitators")(facilitators)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]{message}[/]", highlight=False)
    return typer.Exit(1)


def _run(work, *, relay: bool = False):
    """Run `work(relay)` or `work(sessions)`; bad input exits 1 with its sentence."""
    settings = Settings()
    try:
        return asyncio.run(with_relay(settings, work) if relay else with_database(settings, work))
    except ERRORS as error:
        raise _fail(str(error)) from None


def _tables_text(tables: list[int]) -> str:
    return ", ".join(str(t) for t in tables) or "none"


def _looked(round_no: int | None, table: int | None):
    """(round, tables) as they stand: the round under way unless given."""

    async def work(sessions):
        async with sessions() as session:
            return await overview(session, round_no, table)

    return _run(work)


def _change(action: str, round_no: int | None, table: int | None, dry_run: bool) -> None:
    """pause, resume or end: the tables it would touch, or the change made."""
    round_no, tables = _looked(round_no, table)
    wanted = {"pause": lambda t: not t.paused, "resume": lambda t: t.paused, "end": lambda t: True}
    touched = [n for n, t in tables.items() if t.prompt is not None and wanted[action](t)]
    if dry_run:
        console.print(
            f"Round {round_no}: would {action} table(s) {_tables_text(touched)}; "
            f"{len(tables) - len(touched)} other(s) unchanged."
        )
        console.print("[yellow]Dry run: nothing changed and nobody told.[/]")
        return
    run = {"pause": deliberation.pause, "resume": deliberation.resume, "end": deliberation.end}

    async def work(relay):
        return await run[action](relay, round_no=round_no, table=table, by="cli")

    done = _run(work, relay=True)
    console.print(
        f"Round {done.round}: {action} done at table(s) {_tables_text(done.tables)}; "
        f"unchanged {_tables_text(done.unchanged)}; {done.messages} message(s) queued."
    )


def pause(round_no: int = ROUND, table: int = TABLE, dry_run: bool = DRY_RUN) -> None:
    """Pause the prompt under way (members are told; what they write waits)."""
    _change("pause", round_no, table, dry_run)


def resume(round_no: int = ROUND, table: int = TABLE, dry_run: bool = DRY_RUN) -> None:
    """Resume a paused prompt: what was written meanwhile is relayed in order."""
    _change("resume", round_no, table, dry_run)


def end(round_no: int = ROUND, table: int = TABLE, dry_run: bool = DRY_RUN) -> None:
    """Close the prompt under way now: held messages first, then the members are told."""
    _change("end", round_no, table, dry_run)


def post(
    text: str = typer.Argument(..., help="The message, sent as written."),
    round_no: int = ROUND,
    table: int = TABLE,
    dry_run: bool = DRY_RUN,
) -> None:
    """Write to one table or every table where a prompt is under way ("Facilitator: ...")."""
    if not text.strip():
        raise _fail("The message is empty.")
    round_no, tables = _looked(round_no, table)
    going = [n for n, t in tables.items() if t.prompt is not None]
    if not going:
        raise _fail(f"Nothing is under way in round {round_no}: open a prompt first.")
    if dry_run:
        people = sum(len(tables[n].letters) for n in going)
        console.print(
            f"Round {round_no}: would post to table(s) {_tables_text(going)} ({people} members)."
        )
        console.print("[yellow]Dry run: nothing sent.[/]")
        return

    async def work(relay):
        return await deliberation.post(relay, text, round_no=round_no, table=table, by="cli")

    done = _run(work, relay=True)
    console.print(
        f"Round {done.round}: posted to table(s) {_tables_text(done.tables)}; "
        f"{done.messages} message(s) queued."
    )


def prompt(
    prompt_id: str = typer.Argument(None, help="A [\\[prompts]] id of the assembly file."),
    text: str = typer.Option(None, "--text", help="A new question instead (every language)."),
    minutes: int = typer.Option(None, "--minutes", help="How long it stays open."),
    round_no: int = ROUND,
    table: int = TABLE,
    dry_run: bool = DRY_RUN,
) -> None:
    """Open a prompt now at one table or every table of the round."""
    if bool(prompt_id) == bool(text):
        raise _fail("Give a prompt id from the assembly file, or --text, not both.")
    round_no, tables = _looked(round_no, table)
    busy = [n for n, t in tables.items() if t.prompt is not None]
    if dry_run:
        free = [n for n in tables if n not in busy]
        console.print(
            f"Round {round_no}: would open it at table(s) {_tables_text(free)}; "
            f"a prompt is under way at {_tables_text(busy)}."
        )
        console.print("[yellow]Dry run: nothing opened.[/]")
        return

    async def work(relay):
        return await deliberation.open_prompt(
            relay,
            round_no=round_no,
            prompt=prompt_id,
            text=text,
            table=table,
            minutes=minutes,
            by="cli",
        )

    done = _run(work, relay=True)
    console.print(
        f"Round {done.round}: prompt {done.prompt} opened at table(s) {_tables_text(done.tables)}; "
        f"already {_tables_text(done.already)}; busy {_tables_text(done.busy)}; "
        f"{done.messages} message(s) queued."
    )


def hide(
    ref: int = typer.Argument(..., help="The message's number (shown to facilitators)."),
    dry_run: bool = DRY_RUN,
) -> None:
    """Hide a member's message: the others at the table are told it was removed."""

    async def look(sessions):
        async with sessions() as session:
            return await session.get(Contribution, ref)

    found = _run(look)
    if found is None:
        raise _fail(f"There is no message {ref}.")
    if dry_run:
        state = " (hidden already)" if found.hidden_at else ""
        console.print(
            f"Message {ref}: round {found.round}, table {found.table_no}, "
            f"Member {found.letter}{state}."
        )
        console.print("[yellow]Dry run: nothing hidden.[/]")
        return

    async def work(relay):
        return await deliberation.hide(relay, ref, by="cli")

    done = _run(work, relay=True)
    console.print(
        f"Message {ref} from Member {done.letter} at table {done.table} hidden; "
        f"{done.told} member(s) told it was removed."
    )


def stats(round_no: int = ROUND, table: int = TABLE) -> None:
    """Per table, who has spoken how often this round, by letter."""
    round_no, tables = _looked(round_no, table)
    view = Table(title=f"Round {round_no}: messages by letter (* passed)")
    for column in ("table", "prompt", "members", "not heard from"):
        view.add_column(column)
    for number, t in tables.items():
        heard = ", ".join(
            f"{x} {t.spoken.get(x, 0)}{'*' if x in t.passed else ''}" for x in t.letters
        )
        silent = [x for x in t.letters if not t.spoken.get(x) and x not in t.passed]
        state = "-" if t.prompt is None else f"{t.prompt}{' (paused)' if t.paused else ''}"
        view.add_row(str(number), state, heard, ", ".join(silent) or "-")
    console.print(view)


def cost(
    round_no: int = ROUND,
    each: int = typer.Option(3, "--each", help="Messages per member per prompt."),
    chars: int = typer.Option(80, "--chars", help="Characters per message."),
    minutes: int = typer.Option(20, "--minutes", help="The prompt's length."),
    digest_minutes: int = typer.Option(5, "--digest-minutes", help="How often a digest goes."),
) -> None:
    """The SMS cost of one prompt in each relay mode: EVERY against DIGEST, per table."""
    if min(each, chars, minutes, digest_minutes) < 1:
        raise _fail("--each, --chars, --minutes and --digest-minutes are at least 1.")
    settings = Settings()
    a = costs.Assumptions(each, chars, minutes, digest_minutes)
    round_no, _tables = _looked(round_no, None)

    async def work(sessions):
        async with sessions() as session:
            return await costs.round_costs(session, round_no, a)

    found = _run(work)
    price = settings.sms_cost_per_segment
    view = Table(title=f"Round {round_no}: SMS segments for one prompt")
    for column in ("table", "members", "on SMS", "DIGEST now", "EVERY", "DIGEST", "as chosen"):
        view.add_column(column, justify="right")
    for c in found:
        view.add_row(
            *(
                str(x)
                for x in (
                    c.table,
                    c.members,
                    c.on_sms,
                    c.digest_now,
                    c.every,
                    c.digest,
                    c.as_chosen,
                )
            )
        )
    totals = [sum(getattr(c, f) for c in found) for f in ("every", "digest", "as_chosen")]
    view.add_row(
        "all",
        str(sum(c.members for c in found)),
        str(sum(c.on_sms for c in found)),
        str(sum(c.digest_now for c in found)),
        *(str(x) for x in totals),
    )
    console.print(view)
    console.print(
        f"Each member writes {each} message(s) of {chars} characters in a {minutes}-minute prompt; "
        f"a digest every {digest_minutes} minutes. At {price} per segment: EVERY "
        f"{totals[0] * price:.2f}, DIGEST {totals[1] * price:.2f}, "
        f"as chosen now {totals[2] * price:.2f}."
    )


def facilitator(
    table: int = typer.Argument(..., help="The table."),
    who: str = typer.Argument(
        ..., help="+447700900123, tg:123456789 (a Telegram id), or a participant id."
    ),
    round_no: int = typer.Option(None, "--round", help="Only this round (default: every round)."),
    remove: bool = typer.Option(False, "--remove", help="No longer facilitator of the table."),
    dry_run: bool = DRY_RUN,
) -> None:
    """Name a facilitator of one table: they act on it from that chat or number."""
    settings = Settings()
    round_no = round_no or EVERY_ROUND

    async def work(sessions):
        async with sessions.begin() as session:
            change = roles.remove_facilitator if remove else roles.name_facilitator
            role = await change(session, who, table, round_no, settings.default_region)
            if dry_run:
                await session.rollback()
            return role

    role = _run(work)
    verb = (
        ("Would remove" if remove else "Would name")
        if dry_run
        else ("Removed" if remove else "Named")
    )
    console.print(
        f"{verb} the facilitator of table {role.table} ({role.rounds}) on {role.channel}."
    )
    if dry_run:
        console.print("[yellow]Dry run: nothing changed.[/]")


def facilitators() -> None:
    """The facilitators named per table (organisers facilitate every table)."""

    async def work(sessions):
        async with sessions() as session:
            return await roles.list_roles(session)

    found = _run(work)
    if not found:
        console.print("No facilitators are named: the organisers facilitate every table.")
        return
    view = Table(title="Facilitators")
    for column in ("table", "rounds", "channel", "address"):
        view.add_column(column)
    for role in found:
        view.add_row(str(role.table), role.rounds, role.channel, role.address)
    console.print(view)
