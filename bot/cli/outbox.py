"""Organiser commands for the outbox: `concorder outbox status` and `concorder outbox retry`."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import and_, func, or_, select, update

from bot.cli.common import console, err, run, with_database
from bot.delivery.queue import by_channel, waiting
from bot.settings import DURATION, DURATION_UNITS, Settings
from store import audit
from store.models import Contact, OutboxMessage, OutboxStatus, Participant, utcnow

CHANNELS = ("telegram", "sms")
# Columns of the status table, in the order a message goes through them.
STATES = tuple(OutboxStatus)


def register(app: typer.Typer) -> None:
    outbox_app = typer.Typer(
        help="The outbox: what waits to be sent, and failed messages.", no_args_is_help=True
    )
    app.add_typer(outbox_app, name="outbox")
    outbox_app.command("status")(status)
    outbox_app.command("retry")(retry)


def _ago(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min"
    return f"{seconds // 3600:.0f} h {seconds % 3600 // 60:.0f} min"


def status() -> None:
    """The queue by channel and state: how long the oldest message has waited, how many
    are being retried and why, how many failed."""

    async def read(sessions):
        now = utcnow()
        async with sessions() as session:
            counts = await by_channel(session)
            queues = await waiting(session, now)
            errors = (
                await session.execute(
                    select(OutboxMessage.channel, OutboxMessage.error, func.count())
                    .where(
                        OutboxMessage.status.in_(
                            (OutboxStatus.QUEUED, OutboxStatus.SENDING, OutboxStatus.FAILED)
                        ),
                        OutboxMessage.error.is_not(None),
                    )
                    .group_by(OutboxMessage.channel, OutboxMessage.error)
                )
            ).all()
        return now, counts, queues, errors

    now, counts, queues, errors = run(with_database(Settings(), read))
    if not counts:
        console.print("The outbox is empty: nothing was ever queued.")
        return
    table = Table(title="Outbox by channel and state")
    table.add_column("channel")
    for state in STATES:
        table.add_column(state, justify="right")
    table.add_column("oldest waiting", justify="right")
    table.add_column("retrying", justify="right")
    for channel in sorted(counts):
        queue = queues.get(channel)
        oldest = _ago(queue.waited(now)) if queue and queue.oldest_due else "-"
        table.add_row(
            channel,
            *(str(counts[channel][state]) for state in STATES),
            oldest,
            str(queue.retrying if queue else 0),
        )
    console.print(table)
    if errors:
        reasons = Table(title="Why messages are being retried or failed")
        for column in ("channel", "reason", "messages"):
            reasons.add_column(column, justify="right" if column == "messages" else "left")
        for channel, reason, count in sorted(errors, key=lambda e: (e[0], -e[2])):
            reasons.add_row(channel, reason, str(count))
        console.print(reasons)
    if any(counts[channel][OutboxStatus.FAILED] for channel in counts):
        console.print(
            "Put failed messages back with [bold]concorder outbox retry[/] (try --dry-run first)."
        )


def _since(text: str | None, now: datetime) -> datetime | None:
    """A duration back from now ("6h", "2d") or a UTC date and time ("2026-11-30 08:00")."""
    if text is None:
        return None
    match = DURATION.fullmatch(text.strip().lower())
    if match:
        return now - timedelta(seconds=float(match[1]) * DURATION_UNITS[match[2]])
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        err.print(
            f"[red]--since {text!r} is not a time.[/] Give a duration such as 6h or 2d, "
            'or a UTC date and time such as "2026-11-30 08:00".'
        )
        raise typer.Exit(2) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def retry(
    channel: Annotated[str | None, typer.Option(help="Only this channel: telegram or sms.")] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help="Only messages queued since then: a duration back from now (6h, 2d) or a UTC "
            'date and time ("2026-11-30 08:00").'
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be put back; change nothing.")
    ] = False,
) -> None:
    """Put failed messages back in the queue, to be sent in order and retried again.

    Messages to people who have opted out since are left alone (except the confirmation of
    their opt-out), and so are messages whose moment has passed (expired)."""
    if channel is not None and channel not in CHANNELS:
        err.print(f"[red]--channel {channel!r} is unknown.[/] Use telegram or sms.")
        raise typer.Exit(2)
    now = utcnow()
    queued_since = _since(since, now)

    async def put_back(sessions):
        failed = [OutboxMessage.status == OutboxStatus.FAILED]
        if channel is not None:
            failed.append(OutboxMessage.channel == channel)
        if queued_since is not None:
            failed.append(OutboxMessage.created_at >= queued_since)
        opted_out = or_(Participant.opted_out.is_(True), Contact.opted_out_at.is_not(None))
        expired = and_(OutboxMessage.expires_at.is_not(None), OutboxMessage.expires_at <= now)
        async with sessions.begin() as session:
            rows = (
                await session.execute(
                    select(
                        OutboxMessage.id,
                        OutboxMessage.channel,
                        and_(opted_out, OutboxMessage.compliance.is_(False)),
                        expired,
                    )
                    .join(Participant, Participant.id == OutboxMessage.participant_id)
                    .join(Contact, Contact.id == OutboxMessage.contact_id)
                    .where(*failed)
                    .with_for_update(of=OutboxMessage)
                )
            ).all()
            revive = [row for row in rows if not row[2] and not row[3]]
            if revive and not dry_run:
                ids = [row.id for row in revive]
                for start in range(0, len(ids), 500):
                    await session.execute(
                        update(OutboxMessage)
                        .where(
                            OutboxMessage.id.in_(ids[start : start + 500]),
                            OutboxMessage.status == OutboxStatus.FAILED,
                        )
                        .values(
                            status=OutboxStatus.QUEUED.value,
                            error=None,
                            not_before=now,
                            next_attempt_at=now,
                            lease_until=None,
                            lease_owner=None,
                            faults=0,
                        )
                    )
                await audit.append(
                    session,
                    "outbox.retried",
                    {
                        "messages": len(revive),
                        "channel": channel,
                        "since": queued_since.isoformat() if queued_since else None,
                    },
                    at=now,
                )
        return (
            Counter(row.channel for row in revive),
            sum(1 for row in rows if row[2]),
            sum(1 for row in rows if row[3] and not row[2]),
        )

    revived, opted_out, expired = run(with_database(Settings(), put_back))
    total = sum(revived.values())
    per_channel = ", ".join(f"{name} {count}" for name, count in sorted(revived.items()))
    verb = "Would put back" if dry_run else "Put back"
    console.print(
        f"{verb} {total} failed message{'s' if total != 1 else ''}"
        + (f" ({per_channel})" if per_channel else "")
        + "."
    )
    if opted_out or expired:
        console.print(
            f"Left alone: {opted_out} to people who opted out, {expired} whose moment has passed."
        )
    if dry_run:
        console.print("Dry run: nothing was changed.")
    elif total:
        console.print("The running service sends them shortly, in order per person.")
