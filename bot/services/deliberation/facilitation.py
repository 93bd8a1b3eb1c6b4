"""What facilitators do at the tables: post, pause, resume, end, hide; and what they see:
who has spoken how often, which prompts are open, a table's last lines. Each change is
one transaction with its audit event."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.relay import Relay
from bot.services.conflicts import retry_conflicts
from bot.services.deliberation.closing import close_table
from bot.services.deliberation.relaying import answered, fan_out, relay_table, say
from bot.services.deliberation.tables import (
    live_prompts,
    lock_prompt,
    pick_tables,
    seated,
    tables_of_round,
    the_run,
)
from bot.services.deliberation.types import (
    Changed,
    DeliberationError,
    Hidden,
    Line,
    PromptState,
    Speaking,
)
from flows import events
from flows.deliberation import (
    FACILITATOR,
    hidden_notice,
    paused_notice,
    resumed_notice,
    text_digest,
)
from flows.i18n import translator
from store import audit
from store.deliberation import (
    CLOSED,
    MESSAGE,
    OPEN,
    PASS,
    PAUSED,
    POST,
    Contribution,
    TablePrompt,
)
from store.groups import GroupSeat
from store.models import utcnow

# One table's change inside the transaction: (session, prompt, now) -> rows queued, or
# None when there was nothing to change at that table.
TableChange = Callable[[AsyncSession, TablePrompt, datetime], Awaitable[int | None]]


async def _each_table(
    relay: Relay, round_no: int, table: int | None, change: TableChange, now: datetime
) -> Changed:
    """Run `change` at each table's live prompt, in one transaction."""

    async def once() -> Changed:
        async with relay.sessions.begin() as session:
            run = await the_run(session)
            tables = pick_tables(await tables_of_round(session, run, round_no), table, round_no)
            live = await live_prompts(session, run.run_id, round_no, tables)
            result = Changed(round_no)
            for number in tables:
                tp = live.get(number)
                queued = None if tp is None else await change(session, tp, now)
                if queued is None:
                    result.unchanged.append(number)
                else:
                    result.tables.append(number)
                    result.messages += queued
            return result

    result = await retry_conflicts(once)
    if result.messages:
        relay.outbox_signal.set()
    return result


def _seat_data(tp: TablePrompt, by: str) -> dict:
    return {"table_prompt": tp.id, "round": tp.round, "table": tp.table_no, "by": by}


async def post(
    relay: Relay,
    text: str,
    *,
    round_no: int,
    table: int | None = None,
    by: str = "facilitator",
    now: datetime | None = None,
) -> Changed:
    """See bot/services/deliberation/__init__.py."""
    if not text.strip():
        raise DeliberationError("The message is empty.")

    async def change(session: AsyncSession, tp: TablePrompt, now: datetime) -> int:
        c = Contribution(
            table_prompt_id=tp.id,
            run_id=tp.run_id,
            round=tp.round,
            table_no=tp.table_no,
            prompt_key=tp.prompt_key,
            kind=POST,
            participant_id=None,
            letter=FACILITATOR,
            language="*",
            channel=by[:16],
            text=text,
            text_sha256=hashlib.sha256(text.encode()).hexdigest(),
            at=now,
            held=False,
        )
        session.add(c)
        await session.flush()
        table_now = await seated(session, tp.run_id, tp.round, tp.table_no, lock=True)
        queued = await fan_out(session, relay, tp, table_now, c, now)
        await audit.append(
            session, events.POSTED, {**_seat_data(tp, by), "sha": text_digest(text)}, at=now
        )
        return queued

    return await _each_table(relay, round_no, table, change, now or utcnow())


async def _tell_table(session: AsyncSession, relay: Relay, tp: TablePrompt, compose, now) -> int:
    table = await seated(session, tp.run_id, tp.round, tp.table_no, lock=True)
    queued = 0
    for seat in table.active:
        queued += await say(
            session, relay.settings, seat, [compose(translator(seat.participant.language))], now
        )
    return queued


async def pause(
    relay: Relay,
    *,
    round_no: int,
    table: int | None = None,
    by: str = "facilitator",
    now: datetime | None = None,
) -> Changed:
    """See bot/services/deliberation/__init__.py."""

    async def change(session: AsyncSession, tp: TablePrompt, now: datetime) -> int | None:
        if tp.status != OPEN:
            return None
        tp.status, tp.paused_at = PAUSED, now
        await audit.append(session, events.PAUSED, _seat_data(tp, by), at=now)
        return await _tell_table(session, relay, tp, paused_notice, now)

    return await _each_table(relay, round_no, table, change, now or utcnow())


async def resume(
    relay: Relay,
    *,
    round_no: int,
    table: int | None = None,
    by: str = "facilitator",
    now: datetime | None = None,
) -> Changed:
    """See bot/services/deliberation/__init__.py."""

    async def change(session: AsyncSession, tp: TablePrompt, now: datetime) -> int | None:
        if tp.status != PAUSED:
            return None
        tp.status, tp.paused_at = OPEN, None
        await audit.append(session, events.RESUMED, _seat_data(tp, by), at=now)
        queued = await _tell_table(session, relay, tp, resumed_notice, now)
        return queued + await relay_table(session, relay, tp, now)

    return await _each_table(relay, round_no, table, change, now or utcnow())


async def end(
    relay: Relay,
    *,
    round_no: int,
    table: int | None = None,
    by: str = "facilitator",
    now: datetime | None = None,
) -> Changed:
    """See bot/services/deliberation/__init__.py."""

    async def change(session: AsyncSession, tp: TablePrompt, now: datetime) -> int:
        return await close_table(session, relay, tp, now, reason="facilitator", by=by)

    return await _each_table(relay, round_no, table, change, now or utcnow())


async def hide(
    relay: Relay, contribution_id: int, *, by: str = "facilitator", now: datetime | None = None
) -> Hidden:
    """See bot/services/deliberation/__init__.py."""
    now = now or utcnow()

    async def once() -> tuple[Hidden, int]:
        async with relay.sessions.begin() as session:
            found = await session.get(Contribution, contribution_id)
            if found is None:
                raise DeliberationError(f"No message has the number {contribution_id}.")
            tp = await lock_prompt(session, found.table_prompt_id)
            c = await session.get(Contribution, contribution_id, populate_existing=True)
            if c.kind != MESSAGE:
                raise DeliberationError(
                    f"Message {contribution_id} is a {c.kind}: only members' messages are hidden."
                )
            if c.hidden_at is not None:
                raise DeliberationError(f"Message {contribution_id} is already hidden.")
            c.hidden_at, c.hidden_by = now, by[:64]
            told = 0
            queued = 0
            if c.relayed_at is not None:  # the table saw it: say it was removed
                table = await seated(session, tp.run_id, tp.round, tp.table_no, lock=True)
                for seat in table.active:
                    t = translator(seat.participant.language)
                    queued += await say(
                        session, relay.settings, seat, [hidden_notice(t, c.letter)], now
                    )
                    told += 1
            await audit.append(
                session,
                events.HIDDEN,
                {**_seat_data(tp, by), "letter": c.letter, "contribution": c.id, "told": told},
                participant_id=c.participant_id,
                at=now,
            )
            return Hidden(c.id, tp.round, tp.table_no, c.letter, told), queued

    hidden, queued = await retry_conflicts(once)
    if queued:
        relay.outbox_signal.set()
    return hidden


async def speaking_counts(relay: Relay, round_no: int) -> dict[int, dict[str, Speaking]]:
    """See bot/services/deliberation/__init__.py."""
    async with relay.sessions() as session:
        run = await the_run(session)
        await tables_of_round(session, run, round_no)  # checks the round
        counts: dict[int, dict[str, dict]] = {}
        seats = (
            await session.execute(
                select(GroupSeat.table_no, GroupSeat.letter).where(
                    GroupSeat.run_id == run.run_id, GroupSeat.round == round_no
                )
            )
        ).all()
        for number, letter in seats:
            counts.setdefault(number, {})[letter] = {}
        rows = await session.execute(
            select(
                Contribution.table_no,
                Contribution.letter,
                Contribution.kind,
                Contribution.held & Contribution.relayed_at.is_(None),
                func.count(),
                func.max(Contribution.at),
            )
            .where(
                Contribution.run_id == run.run_id,
                Contribution.round == round_no,
                Contribution.kind.in_((MESSAGE, PASS)),
            )
            .group_by(
                Contribution.table_no,
                Contribution.letter,
                Contribution.kind,
                Contribution.held & Contribution.relayed_at.is_(None),
            )
        )
        for number, letter, kind, held, n, last in rows.all():
            one = counts.setdefault(number, {}).setdefault(letter, {})
            key = "passed" if kind == PASS else "messages"
            one[key] = one.get(key, 0) + n
            if held:
                one["held"] = one.get("held", 0) + n
            if last is not None and (one.get("last_at") is None or last > one["last_at"]):
                one["last_at"] = last
    return {
        number: {letter: Speaking(**values) for letter, values in sorted(letters.items())}
        for number, letters in sorted(counts.items())
    }


async def open_prompts(relay: Relay, round_no: int | None = None) -> list[PromptState]:
    """See bot/services/deliberation/__init__.py."""
    async with relay.sessions() as session:
        run = await the_run(session)
        query = select(TablePrompt).where(
            TablePrompt.run_id == run.run_id, TablePrompt.status != CLOSED
        )
        if round_no is not None:
            query = query.where(TablePrompt.round == round_no)
        found = []
        for tp in (
            await session.execute(query.order_by(TablePrompt.round, TablePrompt.table_no))
        ).scalars():
            table = await seated(session, tp.run_id, tp.round, tp.table_no)
            have = await answered(session, tp)
            found.append(
                PromptState(
                    id=tp.id,
                    round=tp.round,
                    table=tp.table_no,
                    prompt=tp.prompt_key,
                    status=tp.status,
                    opened_at=tp.opened_at,
                    closes_at=tp.closes_at,
                    answered=[s.letter for s in table.seats if s.participant.id in have],
                    waiting=[s.letter for s in table.active if s.participant.id not in have],
                )
            )
        return found


async def table_view(relay: Relay, round_no: int, table: int, *, last: int = 20) -> list[Line]:
    """See bot/services/deliberation/__init__.py."""
    async with relay.sessions() as session:
        run = await the_run(session)
        pick_tables(await tables_of_round(session, run, round_no), table, round_no)
        tp = (
            await session.execute(
                select(TablePrompt)
                .where(
                    TablePrompt.run_id == run.run_id,
                    TablePrompt.round == round_no,
                    TablePrompt.table_no == table,
                )
                .order_by(TablePrompt.id.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if tp is None:
            return []
        rows = (
            await session.execute(
                select(Contribution)
                .where(Contribution.table_prompt_id == tp.id)
                .order_by(Contribution.id.desc())
                .limit(last)
            )
        ).scalars()
        return [
            Line(c.id, c.at, c.letter, c.kind, c.text or "", c.hidden_at is not None, c.held)
            for c in reversed(list(rows))
        ]
