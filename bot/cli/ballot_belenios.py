"""`concorder ballot verify|publish`: a Belenios ballot's election archive checked with
belenios-tool itself, and copied out for anyone to check (the work is in
bot.services.ballots.belenios)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import typer

from bot.cli.common import console, err, with_database
from bot.services.ballots.belenios import files
from bot.services.ballots.belenios import service as belenios
from bot.services.ballots.belenios.tool import BeleniosError
from bot.services.ballots.records import BallotProblem, get_ballot
from bot.settings import Settings
from store.ballots import CLOSED, OPEN

ID = typer.Argument(..., metavar="ID", help="The ballot's id.")
OUT = typer.Option(..., "--out", help="The directory to write the archive into.")
DRY_RUN = typer.Option(False, "--dry-run", help="Say what would be written; write nothing.")


def register(ballot: typer.Typer) -> None:
    ballot.command("verify")(verify)
    ballot.command("publish")(publish)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]{message}[/]", highlight=False)
    return typer.Exit(1)


async def _archive(sessions, ballot_id: str):
    async with sessions() as session:
        ballot = await get_ballot(session, ballot_id)
        if not belenios.used(ballot.definition):
            raise BallotProblem(
                f"Ballot {ballot_id} is counted by the service, not run with Belenios "
                '(system = "belenios"): `concorder ballot results` shows its receipts.'
            )
        if ballot.status not in (OPEN, CLOSED):
            raise BallotProblem(f"Ballot {ballot_id} is a draft: its election is made at opening.")
        return ballot, await belenios.archive_path(session, ballot)


def _load(ballot_id: str):
    try:
        return asyncio.run(with_database(Settings(), lambda s: _archive(s, ballot_id)))
    except (BallotProblem, BeleniosError) as problem:
        raise _fail(str(problem)) from None


def _done_with(path: Path) -> None:
    if path.parent.name.startswith("snapshot-"):  # made for this command only
        shutil.rmtree(path.parent)


def verify(ballot_id: str = ID) -> None:
    """Check a Belenios ballot's election with `belenios-tool election verify`: every
    ballot's proofs, the tally, the decryption and the result; and that the result is
    the one the service published."""
    ballot, path = _load(ballot_id)
    try:
        _verify(ballot, path)
    finally:
        _done_with(path)


def _verify(ballot, path: Path) -> None:
    with console.status("belenios-tool election verify ..."):
        try:
            asyncio.run(files.verify(path.parent))
        except BeleniosError as problem:
            raise _fail(f"{path}: verification FAILED: {problem}") from None
    console.print(f"belenios-tool: all checks passed on {path}.")
    if ballot.status != CLOSED:
        console.print("Voting is open: this is the ballot box so far, with no result yet.")
        return
    published = (ballot.results or {}).get("belenios", {})
    if files.result_of(path) != published.get("result"):
        raise _fail(f"The archive's result differs from the published one: {published}")
    if files.sha256_file(path) != published.get("archive_sha256"):
        raise _fail(f"{path} is not the archive published at the close (sha256 differs).")
    counts = published["result"][0]
    console.print(f"The result matches the published one: {counts} ({ballot.results['method']}).")


def publish(
    ballot_id: str = ID,
    out: Path = OUT,
    dry_run: bool = DRY_RUN,
) -> None:
    """Copy a Belenios ballot's election archive (UUID.bel) into DIR, for anyone to check
    with `belenios-tool election verify --dir DIR`. While voting is open: the box so far."""
    ballot, path = _load(ballot_id)
    try:
        _publish(ballot, path, out, dry_run)
    finally:
        _done_with(path)


def _publish(ballot, path: Path, out: Path, dry_run: bool) -> None:
    target = out / path.name
    if dry_run:
        console.print(f"Would write {target} ({path.stat().st_size} bytes).")
        console.print("[yellow]Dry run: nothing written.[/]")
        return
    if out.exists() and not out.is_dir():
        raise _fail(f"--out {out}: not a directory.")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)
    state = "final, with its result" if ballot.status == CLOSED else "the ballot box so far"
    console.print(f"Wrote {target} ({state}). Anyone can check it:")
    console.print(f"  belenios-tool election verify --dir {out}", highlight=False)
