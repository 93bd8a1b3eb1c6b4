"""The `concorder` command: run the service, manage the database; helpers for every command."""

from __future__ import annotations

import asyncio
import inspect
import logging

import typer
from rich.console import Console

from bot.settings import Settings
from store.db import make_engine, sessionmaker, upgrade, upgrade_async

console = Console()
err = Console(stderr=True)


def run(coro):
    return asyncio.run(coro)


def register(app: typer.Typer) -> None:
    """The core commands: serve, db upgrade."""
    db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
    app.add_typer(db_app, name="db")
    app.command("serve")(serve)
    db_app.command("upgrade")(db_upgrade)


def one_line_summaries(app: typer.Typer) -> None:
    """Each command's row in its group's list shows the first paragraph of its help on one
    line: rich keeps a docstring's line breaks there, which leaves ragged half-lines."""

    def summary(text: str | None) -> str | None:
        first = (text or "").split("\n\n")[0]
        return " ".join(first.split()) if "\n" in first else None

    for command in app.registered_commands:
        if command.short_help is None:
            command.short_help = summary(command.help or inspect.getdoc(command.callback))
    for group in app.registered_groups:
        sub = group.typer_instance
        if group.short_help is None and sub is not None:
            group.short_help = summary(group.help or sub.info.help)
        if sub is not None:
            one_line_summaries(sub)


async def with_database(settings: Settings, work, *, check_key: bool = True):
    """Run `work(sessions)` on the configured database, its schema brought up to date first
    and the secret key checked against the one the database was first used with
    (`check_key=False`: a command that must run without the secret, `audit verify`).

    Every call upgrades: when the schema is current alembic only reads its version
    (10-60 ms), so a command opening the database a few times pays little for it."""
    await upgrade_async(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        sessions = sessionmaker(engine)
        if check_key:
            await key_ready_or_exit(settings, sessions)
        return await work(sessions)
    finally:
        await engine.dispose()


async def key_ready_or_exit(settings: Settings, sessions) -> None:
    """Go on only with the secret key the database was first used with."""
    from bot.services.key_check import WrongKey, checked_key

    try:
        await checked_key(settings, sessions)
    except WrongKey as exc:
        err.print(f"[red]Cannot start:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


async def with_relay(settings: Settings, work, *, assembly=None, calendar=None):
    """Run `work(relay)`: the application built as the service builds it (the given
    assembly and calendar, else the assembly file's), on the configured database."""
    from bot import bootstrap

    async def built(sessions):
        relay = bootstrap.build(settings, assembly=assembly, calendar=calendar, sessions=sessions)
        return await work(relay)

    return await with_database(settings, built)


def load_config_or_exit(path, settings: Settings, load, what: str):
    """(file, loaded) for an organiser command, or exit 2 listing every mistake in it.

    `path` is --assembly (else CONCORDER_ASSEMBLY); `what` names the part being read."""
    from flows.config_file import ConfigError

    chosen = str(path) if path else settings.assembly_file
    if not chosen:
        err.print("[red]No assembly file.[/] Give --assembly PATH or set CONCORDER_ASSEMBLY.")
        raise typer.Exit(2)
    try:
        return chosen, load(chosen)
    except ConfigError as exc:
        err.print(f"[red]The {what} in {exc.path} cannot be used:[/]")
        for problem in exc.problems:
            err.print(f"  - {problem}")
        raise typer.Exit(2) from None


def ready_to_serve_or_exit(settings: Settings, host: str, port: int) -> list:
    """Before anything starts: the assembly file's problems by name, or one sentence about
    the database or the address, and exit; else the sockets to serve on."""
    from bot.web.serve_checks import NotReady, check_database, listen
    from flows.assembly import load_assembly
    from scheduler.config import load_calendar
    from scheduler.runner import has_calendar

    if settings.assembly_file:
        load_config_or_exit(None, settings, load_assembly, "assembly file")
        if has_calendar(settings.assembly_file):
            load_config_or_exit(None, settings, load_calendar, "calendar")
    try:
        check_database(settings.database_url)
        sockets = listen(host, port)
    except NotReady as exc:
        err.print(f"[red]Cannot start:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    run(with_database(settings, _nothing))  # the schema, and the key the database knows
    return sockets


async def _nothing(_sessions) -> None:
    return None


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8080, help="Port to listen on."),
    workers: int = typer.Option(
        1,
        min=1,
        help="Processes serving the port (PostgreSQL only): one uses one core; each is an "
        "instance of the service on the one database.",
    ),
) -> None:
    """Run the service: webhooks, the simulator, the organiser API and the dispatcher."""
    settings = Settings()
    if workers > 1 and settings.database_url.startswith("sqlite"):
        err.print(
            f"[red]Cannot start:[/] --workers {workers} needs PostgreSQL: SQLite lets one "
            "process write at a time, so more would only wait for each other. Run one, or "
            "set CONCORDER_DATABASE_URL to a PostgreSQL database.",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)
    from aiohttp import web

    from bot.bootstrap import create_app
    from bot.logs import configure_logging
    from bot.web.app import PrivateAccessLogger

    configure_logging()  # no personal data or secrets in any line (bot/logs.py)
    # Every tick of every timer at INFO drowns what matters; so does every migration step
    # of a new database (30 lines before the first thing a newcomer should read).
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    sockets = ready_to_serve_or_exit(settings, host, port)
    shown = "localhost" if host in ("0.0.0.0", "127.0.0.1", "::") else host
    console.print(f"Concorder Relay on [bold]http://{shown}:{port}/[/]")
    if settings.simulator_kept_apart:
        err.print(
            "[bold red]WARNING: the simulator is ON beside a real channel[/] "
            "(CONCORDER_SIMULATOR=1): anyone who reaches this port can chat as simulated "
            "people. They are kept apart from real contacts and organisers; set "
            "CONCORDER_SIMULATOR=0 to turn it off."
        )
    if settings.simulator_enabled:
        console.print(f"Simulator: [bold]http://{shown}:{port}/simulator[/]")

    def run(migrate: bool = True) -> None:
        # The demo (no assembly anywhere) is for one process: one visitor, one example.
        application = create_app(settings, migrate=migrate, offer_demo=workers == 1)
        application.on_startup.append(announce_demo)
        web.run_app(application, sock=sockets, print=None, access_log_class=PrivateAccessLogger)

    if workers == 1:
        run()
        return
    from bot.web.workers import serve_in_workers

    upgrade(settings.database_url)  # once, before the workers start
    console.print(f"{workers} worker processes")
    raise typer.Exit(serve_in_workers(workers, lambda: run(migrate=False)))


async def announce_demo(app) -> None:
    """Said once the database is open and the demo has decided whether it runs."""
    from bot.services import demo

    if demo.is_on(app):
        console.print(
            "[bold]Demo mode:[/] no assembly is configured, so the simulator serves the "
            "bundled example (Riverside Citizens' Jury) with simulated people. Open the "
            'simulator and choose how to "Join as an invited citizen". To run a real assembly '
            "instead, set CONCORDER_ASSEMBLY to its file (see examples/citizens-jury/) and "
            "CONCORDER_DATABASE_URL to a new database.",
            highlight=False,
        )


def db_upgrade() -> None:
    """Create or update the database schema to the latest version."""
    settings = Settings()
    upgrade(settings.database_url)
    console.print("Database schema is up to date.")


def main() -> None:
    from bot.bootstrap import build_cli
    from bot.logs import configure_logging

    configure_logging(level=logging.WARNING)  # every command; serve logs from INFO
    build_cli()()
