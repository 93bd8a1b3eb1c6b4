"""`concorder withdraw PERSON`: an organiser withdraws someone, with the effects of WITHDRAW.

The person is told in their language (when they can be reached), any place they held on
the panel is freed for `concorder replace`, the organisers are told, and their data is
marked for erasure. Running it again for someone already withdrawn changes nothing.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from bot.cli.common import console, err, run, with_relay
from bot.services import withdrawals
from bot.services.lookup import PersonNotFound, find_participant
from bot.services.withdrawals import Plan, WithdrawError
from bot.settings import Settings

STAGES = {
    None: "in the pool, not invited",
    "invited": "invited, no answer yet",
    "reminded": "invited and reminded, no answer yet",
    "responded": "answered the invitation, not yet consented",
    "consented": "consented, registering",
    "registered": "registered for the draw",
    "not_interested": "said no",
    "lapsed": "invitation lapsed",
    "withdrawn": "withdrawn",
    "failed": "could not be invited",
}
SEATS = {
    None: "-",
    "selected": "selected, not yet confirmed: the place is freed",
    "confirmed": "confirmed member: the place is freed",
    "reserve": "reserve: leaves the reserve list",
}

PERSON = typer.Argument(..., metavar="PERSON", help="Phone number, Telegram id or participant id.")
REASON = typer.Option(
    None,
    "--reason",
    help="Why, for the other organisers (sent to them; never kept in the audit trail).",
)
DRY_RUN = typer.Option(False, "--dry-run", help="Show what would happen; change nothing.")
ASSEMBLY = typer.Option(
    None, "--assembly", help="The assembly file (TOML). Default: CONCORDER_ASSEMBLY."
)


def register(app: typer.Typer) -> None:
    app.command("withdraw")(withdraw_command)


def _show(plan: Plan, dry_run: bool) -> None:
    table = Table(title="Withdrawal" + (" (dry run)" if dry_run else ""), show_header=False)
    table.add_row("Person", plan.participant_id)
    table.add_row("Stage", STAGES.get(plan.stage, plan.stage or "-"))
    table.add_row("Place", SEATS.get(plan.seat, plan.seat or "-"))
    told = plan.told_on.upper() if plan.told_on == "sms" else (plan.told_on or "").title()
    table.add_row("The person is told", f"by {told}" if plan.told_on else "no (cannot be reached)")
    table.add_row("Organisers told", str(plan.organisers))
    console.print(table)


def withdraw_command(
    person: str = PERSON,
    reason: str = REASON,
    dry_run: bool = DRY_RUN,
    assembly_path: Path = ASSEMBLY,
) -> None:
    """Withdraw someone as if they had replied WITHDRAW: they are told, their place on the
    panel is freed for `concorder replace`, and the organisers are told."""
    settings = Settings()
    assembly = None
    if assembly_path is not None or settings.assembly_file:
        from bot.cli.recruitment import assembly_or_exit

        assembly = assembly_or_exit(assembly_path, settings)

    async def work(relay):
        async with relay.sessions.begin() as session:
            participant = await find_participant(session, person, settings.default_region)
            if dry_run:
                return await withdrawals.plan_withdrawal(session, participant)
            return await withdrawals.withdraw_person(session, relay, participant, reason=reason)

    try:
        plan = run(with_relay(settings, work, assembly=assembly))
    except (PersonNotFound, WithdrawError) as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    if plan.done_already:
        console.print(f"{plan.participant_id} has already withdrawn: nothing to do.")
        return
    _show(plan, dry_run)
    if dry_run:
        console.print("[yellow]Dry run: nothing changed and nobody told.[/]")
        return
    console.print(f"[green]{plan.participant_id} is withdrawn.[/]")
    if plan.frees_a_place:
        console.print("Their place on the panel is free: `concorder replace --seed SEED` fills it.")
