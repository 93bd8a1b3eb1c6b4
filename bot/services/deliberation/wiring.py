"""How the conversation joins the service: the facts provider and turn hook, with where
REPORT goes (`register`); the relay step and the timer (`install`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from aiohttp import web
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from bot.relay import Relay
from bot.services.deliberation.members import table_facts, table_facts_for_group, turn_hook
from bot.services.deliberation.timing import relay_waiting, run_due
from bot.services.deliberation.types import Report, ReportSink
from bot.services.notices import tell_organisers, who
from bot.settings import Settings
from flows.deliberation import passed_line, post_line, relay_line, report_text
from flows.i18n import Translator

log = logging.getLogger(__name__)

TICK_SECONDS = 5.0  # nudges, digests, closes and scheduled openings are looked for this often
WAKE = "deliberation"  # the relay step's wake-up (Relay.wake)


def _line(t: Translator, line) -> str:
    if line.kind == "pass":
        return passed_line(t, line.letter)
    if line.kind == "post":
        return post_line(t, line.text)
    return relay_line(line.letter, line.text)


async def tell_organisers_sink(
    session: AsyncSession, settings: Settings, report: Report, now: datetime
) -> int:
    """The default REPORT: every organiser reads the table's last lines, privately."""
    person = await who(session, report.participant_id)

    def compose(t: Translator) -> str:
        return report_text(
            t,
            who=person,
            letter=report.letter,
            round_no=report.round,
            table=report.table,
            lines=[_line(t, line) for line in report.lines],
        )

    return await tell_organisers(session, settings, compose, kind="deliberation.report", now=now)


def register(relay: Relay, reports: ReportSink = tell_organisers_sink) -> None:
    """A seated member's open prompt as a fact, and their words in the turn; a REPORT goes
    to `reports` (every organiser, unless the root names a table's facilitators)."""
    relay.hooks.provide_facts(table_facts, table_facts_for_group)

    def stored(session: AsyncSession) -> None:
        # The relay step runs once the turn that stored a contribution commits.
        wake = relay.wake(WAKE)
        event.listen(session.sync_session, "after_commit", lambda _s: wake.set(), once=True)

    relay.hooks.after_turn(turn_hook(reports, stored))


def install(app: web.Application, relay: Relay, dispatch: bool) -> None:
    """Relay members' messages as soon as their turn commits; every few seconds, the
    timed work (and whatever a crash left waiting)."""
    if not dispatch:
        return

    async def work() -> None:
        wake = relay.wake(WAKE)
        last_tick = 0.0
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=TICK_SECONDS)
            wake.clear()
            try:
                if loop.time() - last_tick >= TICK_SECONDS:
                    last_tick = loop.time()
                    await run_due(relay)
                else:
                    await relay_waiting(relay)
            except Exception:  # keep going; what did not commit is found again
                log.exception("small-group conversation: relay step failed")

    async def background(app: web.Application):
        task = asyncio.create_task(work(), name="deliberation")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(background)
