"""`concorder ballot`: create, open, close, status and results of ballots (display only;
the work is bot.services.ballots)."""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from bot.cli import ballot_belenios
from bot.cli.common import console, err, with_database, with_relay
from bot.services.ballots import opening, records
from bot.services.ballots.belenios.tool import BeleniosError
from bot.services.ballots.records import (
    BallotProblem,
    get_ballot,
    quorum_needed,
    turnout,
    with_turnout,
)
from bot.settings import Settings
from flows import ballot_text as bt
from flows.ballot_spec import BallotError, load_ballots
from flows.i18n import shipped_languages, translator
from store.ballots import CLOSED, Ballot

DRY_RUN = typer.Option(False, "--dry-run", help="Show what would happen; change nothing.")
FORMATS = ("table", "csv", "json")
VACUUM_FULL = typer.Option(
    False,
    "--vacuum-full",
    help="PostgreSQL: rewrite the conversations, messages and inbound tables too (VACUUM "
    "FULL), so no old version of a choice waiting for YES stays in their files; locks each "
    "table while it runs: for a quiet moment.",
)
FILE = typer.Argument(None, help="A TOML file of \\[\\[ballots]] (default: the assembly file's).")


def register(app: typer.Typer) -> None:
    ballot = typer.Typer(
        help="Secret ballots of the panel, with receipts: create, open, close, results.",
        no_args_is_help=True,
    )
    app.add_typer(ballot, name="ballot")
    ballot.command("create")(create)
    ballot.command("open")(open_)
    ballot.command("close")(close)
    ballot.command("status")(status)
    ballot.command("results")(results)
    ballot_belenios.register(ballot)  # verify, publish: a Belenios ballot's archive


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]{message}[/]", highlight=False)
    return typer.Exit(code)


def _assembly(settings: Settings):
    if not settings.assembly_file:
        return None
    from bot.cli.recruitment import assembly_or_exit

    return assembly_or_exit(None, settings)


def _definitions(path: Path | None, settings: Settings):
    assembly = _assembly(settings)
    languages = assembly.languages if assembly else list(shipped_languages())
    if path is None:
        if assembly is None:
            raise _fail("Give FILE, or set CONCORDER_ASSEMBLY to use its [[ballots]].")
        path = Path(settings.assembly_file)
    try:
        return load_ballots(str(path), languages)
    except BallotError as exc:
        err.print(f"[red]The ballots in {exc.path} cannot be used:[/]")
        for problem in exc.problems:
            err.print(f"  - {problem}", highlight=False)
        raise typer.Exit(1) from None


def create(
    file: Path = FILE,
    dry_run: bool = DRY_RUN,
) -> None:
    """Store ballot definitions: texts in every language, method, options, voters, times.

    A draft may be changed by creating it again; an opened ballot never changes."""
    settings = Settings()
    ballots = _definitions(file, settings)

    async def work(sessions):
        async with sessions() as session:
            done = await records.create(session, ballots, source="file")
            await (session.rollback() if dry_run else session.commit())
            return done

    done = asyncio.run(with_database(settings, work))
    table = Table("ballot", "method", "options", "voters", "opens", "closes", "")
    by_id = {b.id: b for b in ballots}
    for item in done:
        b = by_id[item.id]
        count = b.levels if b.method == "scale" else len(b.options) or 2
        opens = f"{b.opens_at:%Y-%m-%d %H:%M %Z}" if b.opens_at else "by command"
        closes = f"{b.closes_at:%Y-%m-%d %H:%M %Z}" if b.closes_at else "by command"
        note = {"kept": "already opened: unchanged"}.get(item.action, item.action)
        table.add_row(b.id, b.method, str(count), b.voters, opens, closes, note)
    console.print(table)
    if dry_run:
        console.print("[yellow]Dry run: nothing stored.[/]")


def _run(settings: Settings, work):
    try:
        return asyncio.run(with_relay(settings, work))
    except (BallotProblem, BeleniosError) as problem:  # BeleniosError: the tool's own words
        raise _fail(str(problem)) from None


def open_(
    ballot_id: str = typer.Argument(..., metavar="ID", help="The ballot's id."),
    dry_run: bool = DRY_RUN,
) -> None:
    """Open a ballot now: fix the roll of voters and send each of them the question."""
    settings = Settings()
    opened = _run(settings, lambda relay: opening.open_ballot(relay, ballot_id, dry_run=dry_run))
    if dry_run:
        console.print(f"Would open {ballot_id}: {opened.voters} voters would be asked.")
        console.print("[yellow]Dry run: nothing changed.[/]")
        return
    console.print(f"Ballot {ballot_id} is open: {opened.voters} voters, {opened.asked} asked.")
    if opened.not_asked:
        console.print(f"Not asked (opted out): {', '.join(opened.not_asked)}.")


def close(
    ballot_id: str = typer.Argument(..., metavar="ID", help="The ballot's id."),
    dry_run: bool = DRY_RUN,
    vacuum_full: bool = VACUUM_FULL,
) -> None:
    """Close a ballot now: destroy the voters' links, count, publish results and receipts."""
    settings = Settings()
    closed = _run(
        settings,
        lambda relay: records.close_ballot(
            relay, ballot_id, dry_run=dry_run, vacuum_full=vacuum_full
        ),
    )
    if dry_run:
        console.print(
            f"Would close {ballot_id}: {closed.voted} of {closed.voters} have voted. "
            "The results stay hidden until it closes; then everyone on the roll is sent "
            "them."
        )
        console.print("[yellow]Dry run: nothing changed.[/]")
        return
    console.print(
        f"Ballot {ballot_id} is closed: {closed.voted} of {closed.voters} voted. "
        f"The results are on their way to {closed.told} people on the roll. "
        f"See `concorder ballot results {ballot_id}`."
    )


def status(
    ballot_id: str = typer.Argument(None, metavar="[ID]", help="One ballot (default: all)."),
) -> None:
    """Each ballot's state and turnout (counts only: no result before the close)."""
    settings = Settings()

    async def work(sessions):
        async with sessions() as session:
            if ballot_id:
                ballot = await get_ballot(session, ballot_id)
                return [(ballot, *(await turnout(session, ballot.id)))]
            return await with_turnout(session)

    try:
        rows = asyncio.run(with_database(settings, work))
    except BallotProblem as problem:
        raise _fail(str(problem)) from None
    if not rows:
        console.print("No ballots yet: `concorder ballot create FILE`.")
        return
    table = Table("ballot", "status", "method", "voters", "voted", "turnout", "quorum", "closes")
    for b, voters, voted in rows:
        needed = quorum_needed(b.definition, voters)
        share = f"{voted / voters:.0%}" if voters else "-"
        closes = f"{b.closes_at:%Y-%m-%d %H:%M} UTC" if b.closes_at else "by command"
        quorum = f"{needed} ({'met' if voted >= needed else 'not yet'})" if voters else "-"
        method = b.definition["method"] + (" (belenios)" if b.definition.get("system") else "")
        table.add_row(b.id, b.status, method, str(voters), str(voted), share, quorum, closes)
    console.print(table)


def results(
    ballot_id: str = typer.Argument(..., metavar="ID", help="The ballot's id."),
    fmt: str = typer.Option("table", "--format", help="table, csv (the receipts) or json."),
) -> None:
    """The results of a closed ballot: the method's details and every receipt code with
    the choice it carries."""
    if fmt not in FORMATS:
        raise _fail(f"--format {fmt!r}: one of {', '.join(FORMATS)}.")
    settings = Settings()

    async def work(sessions):
        async with sessions() as session:
            return await get_ballot(session, ballot_id)

    try:
        ballot = asyncio.run(with_database(settings, work))
    except BallotProblem as problem:
        raise _fail(str(problem)) from None
    if ballot.status != CLOSED or ballot.results is None:
        raise _fail(
            f"Ballot {ballot_id} is {ballot.status}: results are hidden until it closes "
            f"(`concorder ballot status {ballot_id}` shows the turnout)."
        )
    language = _language(settings)
    if fmt == "json":
        sys.stdout.write(json.dumps(ballot.results, indent=2, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        _csv(ballot, language)
    else:
        _table(ballot, language)


def _language(settings: Settings) -> str:
    assembly = _assembly(settings)
    return assembly.assembly.default_language if assembly else settings.default_language


def _choice(ballot: Ballot, language: str, choice: Any) -> str:
    return bt.describe(ballot.definition, translator(language), choice)


def _csv(ballot: Ballot, language: str) -> None:
    writer = csv.writer(sys.stdout)
    writer.writerow(["tracker", "choice", "status", "choice_json"])
    for tracker, choice, state in ballot.results["trackers"]:
        shown = _choice(ballot, language, choice) if state != "replaced" else ""
        shown = "encrypted" if "belenios" in ballot.results and state != "replaced" else shown
        writer.writerow([tracker, shown, state, json.dumps(choice, ensure_ascii=False)])


def _table(ballot: Ballot, language: str) -> None:
    r, t = ballot.results, translator(language)
    d = ballot.definition
    labels = dict(bt.options(d, t))
    if d["method"] == "scale":  # levels: "4 Agree"
        labels = {k: bt.describe(d, t, int(k)) for k in labels}
    tally = r["tally"]
    console.print(f"[bold]{bt.title(d, t)}[/] ({r['method']}): {bt.question(d, t)}")
    console.print(
        f"Voted: {r['voted']} of {r['voters']}; quorum {r['quorum']} "
        f"{'met' if r['quorum_met'] else '[red]NOT met[/]'}. Ballots counted: "
        f"{tally['ballots']}, blank: {tally['abstentions']}. {_outcome(d, tally, labels)}"
    )
    options = [labels.get(o, o) for o in tally["options"]]
    for key, value in tally["details"].items():
        if not key.endswith("_exact"):  # the JSON keeps the exact fractions
            _detail(key, value, labels, options)
    receipts = Table("receipt", "choice", "status", title="Receipts")
    for tracker, choice, state in r["trackers"]:
        shown = _choice(ballot, language, choice) if state != "replaced" else "-"
        if "belenios" in r:  # Belenios ballot trackers, their choices encrypted
            receipts.add_row(tracker, "encrypted" if state != "replaced" else "-", state)
            continue
        receipts.add_row(f"{tracker[:4]}-{tracker[4:]}", shown, state)
    console.print(receipts)
    console.print(f"[dim]results sha256 {r['results_sha256']}[/]")
    if "belenios" in r:
        console.print(
            f"Belenios election {r['belenios']['uuid']}: `concorder ballot verify {ballot.id}`, "
            f"`concorder ballot publish {ballot.id} --out DIR`."
        )


def _outcome(d: dict[str, Any], tally: dict[str, Any], labels: dict[str, str]) -> str:
    if d["method"] == "scale":
        details = tally["details"]
        verdict = "met" if details["passed"] else "NOT met"
        return (
            f"Threshold ({details['threshold_share']} at level {details['threshold_level']} "
            f"or more): {verdict}, {details['share_at_or_above']:.0%}."
        )
    winners = ", ".join(labels.get(w, w) for w in tally["winners"]) or "none"
    return f"Winner(s): {winners}."


def _detail(key: str, value: Any, labels: dict[str, str], options: list[str]) -> None:
    """A detail of the tally: a matrix, a per-option table, or one line."""
    square = isinstance(value, list) and len(value) == len(options) > 0
    if square and all(isinstance(row, list) and len(row) == len(options) for row in value):
        table = Table("", *options, title=f"{key} (row over column)")
        for name, row in zip(options, value, strict=True):
            table.add_row(name, *[str(cell) for cell in row])
        console.print(table)
    elif isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        columns = list(next(iter(value.values())).keys())
        table = Table(key, *columns, title=key)
        for row, cells in value.items():
            table.add_row(labels.get(row, row), *[str(cells.get(c, "")) for c in columns])
        console.print(table)
    elif isinstance(value, dict) and value:
        table = Table(key, "value", title=key)
        for name, cell in value.items():
            table.add_row(labels.get(name, name), json.dumps(cell, ensure_ascii=False))
        console.print(table)
    else:
        console.print(f"{key}: {json.dumps(value, ensure_ascii=False)}")
