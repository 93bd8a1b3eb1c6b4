"""Opening a prompt at the tables of a round: each seated member gets the question in
their language, with their letter and their table-mates' letters; the close and the
nudge are put on the clock."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.relay import Relay
from bot.services.conflicts import retry_conflicts
from bot.services.deliberation.relaying import marks, say
from bot.services.deliberation.tables import (
    Seated,
    Table,
    pick_tables,
    seated,
    tables_of_round,
    the_run,
)
from bot.services.deliberation.types import DeliberationError, Opened
from flows import events
from flows.deliberation import prompt_text
from flows.deliberation_config import DEFAULTS, Prompt
from flows.i18n import translator
from scheduler.config import pick
from scheduler.deliberation import add_job
from store import audit
from store.deliberation import CLOSED, JOB_CLOSE, JOB_NUDGE, TablePrompt
from store.groups import GroupRun
from store.models import utcnow


@dataclass(frozen=True)
class Asked:
    """What to open: the file's prompt, or a facilitator's text with the defaults."""

    key: str | None  # None: a new "now-<n>"
    settings: Prompt


def asked(
    relay: Relay, prompt: str | None, text: str | dict[str, str] | None, minutes: int | None
) -> Asked:
    if (prompt is None) == (text is None):
        raise DeliberationError("Give either a prompt id from the assembly file or a text.")
    if prompt is not None:
        prompts = relay.assembly.prompts if relay.assembly else []
        found = next((p for p in prompts if p.id == prompt), None)
        if found is None:
            known = ", ".join(p.id for p in prompts) or "none in the assembly file"
            raise DeliberationError(f"No prompt has the id {prompt!r} (ids: {known}).")
        settings = found
    else:
        texts = {"*": text} if isinstance(text, str) else dict(text or {})
        if not any((v or "").strip() for v in texts.values()):
            raise DeliberationError("The prompt's text is empty.")
        settings = DEFAULTS.model_copy(update={"text": texts})
    if minutes is not None:
        if not 1 <= minutes <= 24 * 60:
            raise DeliberationError(f"{minutes} minutes? Give 1 to 1440.")
        settings = settings.model_copy(update={"minutes": minutes})
    return Asked(prompt, settings)


async def open_prompt(
    relay: Relay,
    *,
    round_no: int,
    prompt: str | None = None,
    text: str | dict[str, str] | None = None,
    table: int | None = None,
    minutes: int | None = None,
    by: str = "facilitator",
    now: datetime | None = None,
) -> Opened:
    """See bot/services/deliberation/__init__.py."""
    now = now or utcnow()
    what = asked(relay, prompt, text, minutes)

    async def once() -> Opened:
        async with relay.sessions.begin() as session:
            run = await the_run(session)
            return await open_at(session, relay, run, what, round_no, table, by=by, now=now)

    opened = await retry_conflicts(once)
    if opened.messages:
        relay.outbox_signal.set()
    return opened


async def _next_key(session: AsyncSession, run_id: str) -> str:
    keys = (
        await session.execute(
            select(TablePrompt.prompt_key)
            .where(TablePrompt.run_id == run_id, TablePrompt.prompt_key.like("now-%"))
            .distinct()
        )
    ).scalars()
    return f"now-{len(list(keys)) + 1}"


async def open_at(
    session: AsyncSession,
    relay: Relay,
    run: GroupRun,
    what: Asked,
    round_no: int,
    table: int | None,
    *,
    by: str,
    now: datetime,
) -> Opened:
    """Open `what` at the tables of a round, inside the caller's transaction."""
    tables = pick_tables(await tables_of_round(session, run, round_no), table, round_no)
    key = what.key or await _next_key(session, run.run_id)
    opened = Opened(round_no, key)
    existing = (
        await session.execute(
            select(TablePrompt).where(
                TablePrompt.run_id == run.run_id,
                TablePrompt.round == round_no,
                TablePrompt.table_no.in_(tables),
            )
        )
    ).scalars()
    by_table: dict[int, list[TablePrompt]] = {}
    for tp in existing:
        by_table.setdefault(tp.table_no, []).append(tp)
    for number in tables:
        there = by_table.get(number, [])
        if any(tp.prompt_key == key for tp in there):
            opened.already.append(number)
        elif any(tp.status != CLOSED for tp in there):
            opened.busy.append(number)
        else:
            opened.messages += await _open_one(
                session, relay, run, what, key, round_no, number, by, now
            )
            opened.tables.append(number)
    return opened


async def ask(
    session: AsyncSession,
    relay: Relay,
    tp: TablePrompt,
    table: Table,
    seats: list[Seated],
    now: datetime,
) -> int:
    """Put the prompt to `seats` (at its opening, or to a member moved to the table since),
    each in their language with their letter; rows queued."""
    default = relay.settings.default_language
    minutes = max(1, math.ceil((tp.closes_at - now).total_seconds() / 60))
    queued = 0
    for seat in seats:
        t = translator(seat.participant.language)
        text = prompt_text(
            t,
            round_no=tp.round,
            table=tp.table_no,
            letter=seat.letter,
            others=[s.letter for s in table.seats if s is not seat],
            text=pick(tp.texts, seat.participant.language, default),
            minutes=minutes,
            mode=seat.mode if seat.contact.channel == "sms" else None,
        )
        queued += await say(session, relay.settings, seat, [text], now)
    await marks(session, tp, [s.participant.id for s in seats])
    return queued


async def _open_one(
    session: AsyncSession,
    relay: Relay,
    run: GroupRun,
    what: Asked,
    key: str,
    round_no: int,
    number: int,
    by: str,
    now: datetime,
) -> int:
    p = what.settings
    tp = TablePrompt(
        run_id=run.run_id,
        round=round_no,
        table_no=number,
        prompt_key=key,
        texts=dict(p.text),
        status="open",
        fair_share=p.fair_share,
        close_missing=p.close_missing,
        digest_minutes=p.digest_minutes,
        grace_minutes=p.grace_minutes,
        opened_at=now,
        opened_by=by[:32],
        closes_at=now + timedelta(minutes=p.minutes),
        nudge_at=now + timedelta(minutes=p.nudge_minutes) if p.nudge_minutes else None,
        relayed_count=0,
    )
    session.add(tp)
    await session.flush()
    table = await seated(session, run.run_id, round_no, number, lock=True)
    queued = await ask(session, relay, tp, table, table.active, now)
    # Every seat gets its marks now: only a member moved here later lacks them.
    await marks(session, tp, [s.participant.id for s in table.seats])
    await add_job(
        session, JOB_CLOSE, f"close:{tp.id}", tp.closes_at, table_prompt_id=tp.id, now=now
    )
    if tp.nudge_at is not None and tp.nudge_at < tp.closes_at:
        await add_job(
            session, JOB_NUDGE, f"nudge:{tp.id}", tp.nudge_at, table_prompt_id=tp.id, now=now
        )
    await audit.append(
        session,
        events.PROMPT_OPENED,
        {
            "table_prompt": tp.id,
            "prompt": key,
            "run": run.run_id,
            "round": round_no,
            "table": number,
            "seated": len(table.seats),
            "reachable": len(table.active),
            "minutes": p.minutes,
            "by": by,
        },
        at=now,
    )
    return queued
