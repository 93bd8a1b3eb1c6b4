"""Recruitment in the running service: how it joins the conversations, and its timer."""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial

from aiohttp import web

from bot.relay import Relay
from bot.services import withdrawals
from bot.services.recruitment import answers
from bot.services.recruitment.facts import recruitment_facts, recruitment_facts_for_group
from bot.services.recruitment.links import bind_invitation_link, invitation_links_in
from bot.services.recruitment.reminders import (
    expire_selections,
    lapse_invitations,
    send_invitation_reminders,
)
from scheduler import timers
from store.models import (
    utcnow,
)

log = logging.getLogger(__name__)


TICK_SECONDS = 600


async def recruitment_tick(relay: Relay, now: datetime | None = None) -> dict[str, int]:
    """The timed work of recruitment: due reminders, lapsed invitations, expired places.
    The service runs it every TICK_SECONDS; a scheduler may call it instead."""
    now = now or utcnow()
    reminded = await send_invitation_reminders(relay, now)
    async with relay.sessions.begin() as session:
        lapsed = await lapse_invitations(session, now)
        expired = await expire_selections(session, now)
    return {"reminded": reminded, "lapsed": lapsed, "expired": expired}


def register(relay: Relay) -> None:
    """Join the conversations: invitation links first, then facts, then what events mean
    (a withdrawal also tells the organisers)."""
    hooks = relay.hooks
    hooks.before_inbound(bind_invitation_link, invitation_links_in)
    if relay.assembly is not None:

        def zone() -> str:  # the calendar's, which may be reloaded while the service runs
            return relay.calendar.schedule.timezone if relay.calendar is not None else "UTC"

        hooks.provide_facts(
            partial(recruitment_facts, relay.assembly, zone),
            partial(recruitment_facts_for_group, relay.assembly, zone),
        )
    answers.register(hooks, on_withdrawal=partial(withdrawals.tell_of_withdrawal, relay.settings))


def install(app: web.Application, relay: Relay, dispatch: bool) -> None:
    """Reminders and lapsing on a timer, while the service dispatches."""
    if relay.assembly is None or not dispatch:
        return

    async def tick() -> None:
        done = await recruitment_tick(relay)
        if done["reminded"]:
            relay.outbox_signal.set()
        if any(done.values()):
            log.info("recruitment: %s", done)

    timers.add(app, "recruitment: reminders and lapsing", TICK_SECONDS, tick)
