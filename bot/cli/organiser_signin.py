"""`concorder organiser token|link`: signing an organiser in to the organiser page."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from bot.cli.common import console, err, run, with_database
from bot.services import organiser_signin as signin
from bot.services.organisers import OrganiserError, OrganiserInfo, find_organiser
from bot.settings import DURATION, DURATION_UNITS, Settings
from store.models import utcnow


def register(organiser_app: typer.Typer) -> None:
    organiser_app.command("token")(organiser_token)
    organiser_app.command("link")(organiser_link)


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]Error:[/] {message}")
    return typer.Exit(2)


def _do(work):
    """Run `work(session, settings)` in one transaction; bad input ends the command."""
    settings = Settings()

    async def in_transaction(sessions):
        async with sessions.begin() as session:
            return await work(session, settings)

    try:
        return run(with_database(settings, in_transaction))
    except OrganiserError as exc:
        raise _fail(str(exc)) from None


ORGANISER_REF = typer.Argument(
    help="The organiser's id (see `organiser list`), Telegram id or phone number."
)


async def _organiser(session, settings, ref: str) -> OrganiserInfo:
    row = await find_organiser(session, ref, settings.default_region)
    if row is None:
        raise OrganiserError("no organiser with that id, Telegram id or phone number")
    return OrganiserInfo.of(row)


def _lifetime(text: str) -> timedelta:
    match = DURATION.fullmatch(text.strip().lower())
    if not match or float(match[1]) <= 0:
        raise _fail(f"--expires {text!r}: give a duration such as 12h, 90m or 2d")
    return timedelta(seconds=float(match[1]) * DURATION_UNITS[match[2]])


def organiser_token(
    organiser: Annotated[str, ORGANISER_REF],
    expires: Annotated[
        str, typer.Option("--expires", help="How long it works: 12h, 90m, 2d.")
    ] = "12h",
) -> None:
    """Print a token that signs this organiser in to the organiser page (shown only now)."""
    lifetime = _lifetime(expires)

    async def work(session, settings):
        info = await _organiser(session, settings, organiser)
        return info, *await signin.issue_token(session, info, lifetime, utcnow())

    info, token, until = _do(work)
    console.print(
        f"Sign-in token for organiser [bold]{info.id}[/], valid until "
        f"{until:%Y-%m-%d %H:%M} UTC (it is shown only this once):"
    )
    console.print(token, markup=False, highlight=False, soft_wrap=True)
    console.print(f"Enter it at {Settings().public_url or signin.LOCAL_URL}{signin.PAGE_PATH}")


def organiser_link(organiser: Annotated[str, ORGANISER_REF]) -> None:
    """Send a one-time sign-in link for the organiser page to the organiser's own chat
    (it works once, within 15 minutes)."""

    async def work(session, settings):
        info = await _organiser(session, settings, organiser)
        await signin.send_link(session, settings, info.id, utcnow())
        return info

    info = _do(work)
    console.print(
        f"A sign-in link is queued to organiser [bold]{info.id}[/]'s chat; the running "
        "service sends it."
    )
