"""`concorder audit verify|checkpoint|key`: check the hash chain, sign its head, show the key."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from bot.cli.common import console, err, load_config_or_exit, run, with_database
from bot.services import audit_checkpoints as service
from bot.settings import Settings
from store import audit, checkpoints


def register(app: typer.Typer) -> None:
    audit_app = typer.Typer(
        help="The audit trail and its signed checkpoints.", no_args_is_help=True
    )
    app.add_typer(audit_app, name="audit")
    audit_app.command("verify")(verify)
    audit_app.command("checkpoint")(checkpoint)
    audit_app.command("key")(key)


def _signer(settings: Settings) -> service.Signer:
    """This assembly's key and origin (the assembly file names it, when there is one)."""
    from flows.assembly import load_assembly

    assembly = None
    if settings.assembly_file:
        assembly = load_config_or_exit(None, settings, load_assembly, "assembly file")[1]
    try:
        return service.signer(settings, assembly)
    except (checkpoints.CheckpointError, RuntimeError) as exc:
        err.print(f"[red]No signing key:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def _public_key(path: Path):
    try:
        return checkpoints.load_public(path.read_bytes())
    except checkpoints.CheckpointError as exc:
        err.print(f"[red]--key {path}:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def key(
    pem: Annotated[
        bool, typer.Option("--pem", help="Print only the PEM public key (for openssl).")
    ] = False,
) -> None:
    """Print the public key that checks this assembly's checkpoints, for organisers to publish."""
    settings = Settings()

    async def checked(_sessions) -> None:
        return None  # opening the database checks the secret is the service's

    run(with_database(settings, checked))  # a stray secret would publish a stray key
    signer = _signer(settings)
    pem_text = checkpoints.public_pem(signer.key.public_key())
    if pem:
        sys.stdout.write(pem_text)
        return
    console.print(f"Origin:       {signer.origin}", highlight=False, soft_wrap=True)
    console.print(f"Key id:       {signer.key_id}", highlight=False, soft_wrap=True)
    console.print(f"Verifier key: {signer.verifier_key}", highlight=False, soft_wrap=True)
    sys.stdout.flush()
    sys.stdout.write(pem_text)


def checkpoint(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", dir_okay=False, help="Write the checkpoint to FILE instead of printing it."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be signed; keep and record nothing.")
    ] = False,
) -> None:
    """Sign the head of the audit chain now; publish the result where anyone can keep it."""
    settings = Settings()
    signer = _signer(settings)

    async def sign(sessions):
        return await service.take(sessions, signer, dry_run=dry_run)

    try:
        made = run(with_database(settings, sign))
    except service.Refused as exc:
        err.print(
            f"[red]Not signed:[/] {exc}. Run concorder audit verify to see what is wrong.",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
    point = made.checkpoint
    if dry_run:
        console.print(
            f"Would sign {point.size} events, head {point.head}, as {point.origin} "
            f"(key {signer.key_id}); nothing kept (dry run).",
            highlight=False,
            soft_wrap=True,
        )
        return
    if out is None:
        sys.stdout.write(made.text)
        return
    out.write_text(made.text, encoding="utf-8")
    console.print(
        f"Checkpoint of {point.size} events written to {out} (key {signer.key_id}).",
        highlight=False,
        soft_wrap=True,
    )


def verify(
    files: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint",
            exists=True,
            dir_okay=False,
            readable=True,
            help="A published checkpoint to compare with (repeat for several).",
        ),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            exists=True,
            dir_okay=False,
            readable=True,
            help="The assembly's published public key (PEM), to check without its secret.",
        ),
    ] = None,
) -> None:
    """Recompute the audit chain; compare it with published checkpoints and the stored ones.

    Fails, naming what is wrong, on a chain that breaks, a stored head it does not reach,
    or any checkpoint it disagrees with (events removed from the end, or rewritten)."""
    settings = Settings()

    published = _public_key(public_key) if public_key else None

    def public():  # only when there is a checkpoint to check: no key is made otherwise
        return published or _signer(settings).key.public_key()

    given = [(str(path), path.read_text("utf-8", errors="replace")) for path in files or []]

    async def check(sessions):
        async with sessions() as session:  # links whatever waits, then recomputes
            chain = await audit.verify(session)
        async with sessions() as session:
            head = await service.head_disagreement(session, chain) if chain.ok else None
            kept = [(f"stored #{row.id}", row.text) for row in await checkpoints.stored(session)]
            found = await service.compare(session, public(), given + kept) if given + kept else []
        return chain, head, found

    # Anyone may verify, without the secret; a checkpoint under another key says so itself.
    chain, head, found = run(with_database(settings, check, check_key=False))
    _show(found)
    problems = _problems(chain, head, found)
    for problem in problems:
        err.print(f"[red]Audit trail NOT verified:[/] {problem}", highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(1)
    console.print(
        f"Audit trail intact: {chain.checked} events, head {chain.head_hash}.", soft_wrap=True
    )
    if given:
        covered = max(f.checkpoint.size for f in found[: len(given)] if f.checkpoint)
        console.print(
            f"It agrees with the {len(given)} checkpoint(s) given: events 1 to {covered} "
            "are exactly those that were signed.",
            soft_wrap=True,
        )
        return
    console.print(
        f"It agrees with the stored head and {len(found)} stored checkpoint(s). Only a "
        "checkpoint published outside this database proves that nothing was removed or "
        "rewritten: give it with --checkpoint FILE.",
        highlight=False,
        soft_wrap=True,
    )


def _problems(chain: audit.Verification, head: str | None, found: list) -> list[str]:
    problems = []
    if not chain.ok:
        problems.append(
            f"the chain breaks at event {chain.first_bad_seq}: {chain.reason} "
            f"({chain.checked} events before it check out)"
        )
    if head:
        problems.append(head)
    problems.extend(f"{f.source}: {f.problem}" for f in found if f.problem)
    return problems


def _show(found: list) -> None:
    if not found:
        return
    table = Table("checkpoint", "origin", "events", "signed at", "agrees")
    for finding in found:
        point = finding.checkpoint
        table.add_row(
            finding.source,
            point.origin if point else "?",
            str(point.size) if point else "?",
            point.at.strftime("%Y-%m-%d %H:%M UTC") if point else "?",
            "yes" if finding.problem is None else "[red]no[/]",
        )
    console.print(table)
