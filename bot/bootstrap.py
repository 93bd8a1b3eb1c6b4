"""The composition root: the one place that builds the application and wires its parts.

`build` makes a `Relay` (settings, the assembly file read once, the flows, the hooks in the
order they run); `create_app` puts the web application around it (database, routes,
background work, timers in a visible order); `build_cli` makes the `concorder` command.
Commands, the service and tests all start here.
"""

from __future__ import annotations

import logging

import typer
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels import simulator, sms, telegram
from bot.delivery import dispatcher
from bot.hooks import Hooks
from bot.relay import Relay
from bot.services import (
    audit_checkpoints,
    audit_sequencer,
    ballots,
    batch,
    broadcast,
    data_requests,
    deliberation,
    demo,
    facilitation,
    key_check,
    organiser_chat,
    outgoing,
    polls,
    privacy,
    recruitment,
    synthesis,
    unhandled,
)
from bot.settings import Settings
from bot.web import organiser as organiser_page
from bot.web import pages, results
from bot.web.app import ENGINE, RELAY, SESSIONS, SETTINGS, healthz, hide_failures, metrics
from flows.assembly import Assembly, AssemblyError, assembly_of
from flows.catalog import build_engine
from flows.config_file import AssemblyFile
from scheduler import events as calendar_events
from scheduler import facts as calendar_facts
from scheduler import timers
from scheduler.config import Calendar, CalendarError, calendar_of
from scheduler.runner import TICK_SECONDS, CalendarRunner
from store.db import make_engine, sessionmaker, upgrade_async

log = logging.getLogger(__name__)


def build(
    settings: Settings | None = None,
    *,
    assembly: Assembly | None = None,
    calendar: Calendar | None = None,
    sessions: async_sessionmaker[AsyncSession] | None = None,
) -> Relay:
    """The application's parts. The assembly and calendar come from the arguments, else
    from the assembly file in the settings (its problems are logged, then raised)."""
    settings = settings or Settings()
    if assembly is None and calendar is None and settings.assembly_file:
        assembly, calendar = read_assembly_file(settings.assembly_file)
    relay = Relay(
        settings=settings,
        engine=build_engine(),
        assembly=assembly,
        calendar=calendar,
        sessions=sessions,
    )
    register_hooks(relay)
    return relay


def register_hooks(relay: Relay) -> None:
    """Every feature's part in a turn, in the order it runs."""
    recruitment.register(relay)  # invitation links bind before a message finds its contact
    privacy.register(relay)  # an erased address that had opted out stays opted out
    organiser_chat.register(relay)
    data_requests.register(relay)  # MYDATA: the organisers are told
    ballots.register(relay)  # a vote recorded apart from its voter; what they typed blanked
    polls.register(relay)  # a questionnaire's answers recorded under a pseudonym
    synthesis.register(relay)  # answers to the opinion map's statements, and proposals

    def calendar_of() -> Calendar | None:
        return relay.calendar

    calendar_facts.register(relay.hooks, calendar_of)
    calendar_events.register(relay.hooks, calendar_of)
    # A seated member's messages while a prompt is open; REPORT to their facilitators.
    deliberation.register(relay, reports=facilitation.report_to_facilitators)
    facilitation.register(relay)  # facilitators' commands at the small-group tables


def use_assembly(relay: Relay, assembly: Assembly, calendar: Calendar | None) -> None:
    """Serve `assembly` from now on (the demo's, chosen once the database is open): the
    hooks are registered again, as several read the assembly when they register."""
    relay.assembly, relay.calendar = assembly, calendar
    relay.hooks = Hooks()
    relay.__dict__.pop("person_lookup", None)  # made from the hooks on first use
    register_hooks(relay)


def read_assembly_file(path: str) -> tuple[Assembly, Calendar | None]:
    """The assembly and its calendar, from one reading of the file."""
    try:
        file = AssemblyFile.read(path, AssemblyError)
        assembly = assembly_of(file)
        calendar = calendar_of(file) if file.has_calendar else None
    except (AssemblyError, CalendarError) as exc:
        for problem in exc.problems:
            log.error("assembly: %s: %s", exc.path, problem)
        raise
    return assembly, calendar


def create_app(
    settings: Settings | None = None,
    *,
    relay: Relay | None = None,
    migrate: bool = True,
    dispatch: bool = True,
    offer_demo: bool = False,
) -> web.Application:
    """The web application. `dispatch=False` leaves the outbox and timers alone (tests
    drive them themselves); `offer_demo` (what `concorder serve` asks) runs the demo when
    no assembly is configured and the database holds none."""
    relay = relay or build(settings)
    app = web.Application(client_max_size=256 * 1024, middlewares=[hide_failures])
    app[RELAY] = relay
    app[SETTINGS] = relay.settings

    async def database(app: web.Application):
        if migrate:
            await upgrade_async(relay.settings.database_url)
        engine = make_engine(relay.settings.database_url)
        app[ENGINE] = engine
        app[SESSIONS] = relay.sessions = sessionmaker(engine)
        try:
            await key_check.checked_key(relay.settings, relay.sessions)  # refuse another key
        except key_check.WrongKey:
            await engine.dispose()
            raise
        yield
        await engine.dispose()

    app.cleanup_ctx.append(database)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    audit_sequencer.install(app, relay, dispatch)
    batch.install(app, relay)  # inbound webhooks handled in groups, one transaction each
    telegram.install(app, relay, dispatch)
    sms.install(app, relay, dispatch)
    simulator.install(app, relay, dispatch)
    pages.install(app)  # the public pages' stylesheet
    results.install(app, relay)  # /results, once the organisers publish
    if offer_demo:
        demo.install(app, relay, dispatch, use_assembly)  # no assembly anywhere: the example
    organiser_page.install(app, relay)  # /organiser: the read-only dashboard, signed in
    dispatcher.install(app, relay, dispatch)
    if dispatch:
        recruitment.install(app, relay, dispatch)
        broadcast.install(app, relay, dispatch)
        privacy.install(app, relay, dispatch)  # erase what [retention] says is due
        install_calendar(app, relay)
        audit_checkpoints.install(app, relay)
        ballots.install(app, relay)  # open and close ballots on time
        polls.install(app, relay)  # send poll waves and reminders on time
        deliberation.install(app, relay, dispatch)  # relay, nudges, digests, closes
        unhandled.install(app, relay)  # messages whose turn failed, tried again
        timers.install(app)
    return app


def install_calendar(app: web.Application, relay: Relay) -> None:
    """Plan and send briefings and reminders on a timer; reload the file when it changes."""
    if relay.calendar is None:
        return
    runners: list[CalendarRunner] = []  # made at the first tick, when the database is up

    def reloaded(calendar: Calendar) -> None:
        relay.calendar = calendar

    async def tick() -> None:
        if not runners:
            runners.append(
                CalendarRunner(
                    relay.sessions,
                    outgoing.enqueuer(relay.settings),
                    calendar=relay.calendar,
                    path=relay.settings.assembly_file,
                    on_reload=reloaded,
                )
            )
        if (await runners[0].tick()).ran:
            relay.outbox_signal.set()

    timers.add(app, "calendar: plan and send briefings and reminders", TICK_SECONDS, tick)


def build_cli() -> typer.Typer:
    """The `concorder` command. Each feature adds its commands; help lists the commands in
    this order, then the command groups in this order."""
    from bot.cli import audit as cli_audit
    from bot.cli import ballot as cli_ballot
    from bot.cli import broadcast as cli_broadcast
    from bot.cli import common as cli
    from bot.cli import draw as cli_draw
    from bot.cli import groups as cli_groups
    from bot.cli import groups_conversation as cli_groups_conversation
    from bot.cli import inbound as cli_inbound
    from bot.cli import outbox as cli_outbox
    from bot.cli import poll as cli_poll
    from bot.cli import privacy as cli_privacy
    from bot.cli import publish as cli_publish
    from bot.cli import recommendation as cli_recommendation
    from bot.cli import recruitment as cli_recruitment
    from bot.cli import rehearse as cli_rehearse
    from bot.cli import respondents as cli_respondents
    from bot.cli import schedule as cli_schedule
    from bot.cli import simulate as cli_simulate
    from bot.cli import synthesis as cli_synthesis
    from bot.cli import withdraw as cli_withdraw

    app = typer.Typer(
        help="Concorder Relay: messaging for citizens' assemblies over SMS and Telegram.",
        no_args_is_help=True,
        rich_markup_mode="rich",
    )
    cli.register(app)  # serve, db upgrade
    cli_audit.register(app)  # audit verify|checkpoint|key
    cli_broadcast.register(app)  # broadcast, organiser add|list|remove
    cli_draw.register(app)  # select, replace
    cli_groups.register(app)  # groups assign|move|show|notify
    cli_groups_conversation.register(app)  # groups post|prompt|pause|...|cost|facilitator
    cli_withdraw.register(app)  # withdraw
    cli_rehearse.register(app)  # rehearse: the whole assembly with simulated people
    cli_outbox.register(app)  # outbox status|retry
    cli_inbound.register(app)  # inbound show|retry: messages whose turn failed
    cli_privacy.register(app)  # erase, person export
    cli_recruitment.register(app)  # pool import, invite, notify-draw, status
    cli_respondents.register(app)  # respondents import|to-contact|answer
    cli_schedule.register(app)  # schedule preview, session move
    cli_simulate.register(app)  # simulate
    cli_ballot.register(app)  # ballot create|open|close|status|results|verify|publish
    cli_poll.register(app)  # poll status|send|report
    cli_recommendation.register(app)  # recommendation add|list|respond|show
    cli_publish.register(app)  # publish: the open data package
    cli_synthesis.register(app)  # statements add|list|approve|reject|send, synthesize
    cli.one_line_summaries(app)
    return app


def publication_writers() -> list:
    """The open data package's resource writers, in the order the package lists them:
    a feature that publishes (the opinion map, the themes) adds its writer here."""
    from bot.services import publish
    from bot.services.synthesis import publication

    # What the panel said, after what it decided: the opinion map, then the themes.
    return [*publish.WRITERS, publication.opinion_map, publication.themes_of_tables]
