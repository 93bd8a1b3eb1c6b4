"""The members' side of a turn: what a seated member's open prompt is (a fact for the
flows), and what their words do (stored, repeated, reported) in the turn's transaction.

A member's message is stored here with the turn; it is relayed by the relay step right
after the commit (`wiring`), or by the next tick after a crash: nothing is lost, and the
turn never waits on the table's other members.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.deliberation.relaying import lines_after, say
from bot.services.deliberation.tables import seated
from bot.services.deliberation.types import Line, Report, ReportSink
from bot.services.turns import TURN_CONTACT
from bot.settings import Settings
from flows import events
from flows.deliberation import MODE_KEY, relay_mode, repeat_text
from flows.facts import TableFacts
from flows.i18n import translator
from flows.model import Turn
from store.deliberation import CLOSED, MESSAGE, PASS, PAUSED, Contribution, TablePrompt
from store.groups import CURRENT, GroupRun, GroupSeat
from store.models import Contact, Participant
from store.recruitment import CONFIRMED, Selection

REPORT_LINES = 10  # the table's last lines a REPORT sends


def _prompts_at_seats() -> Any:
    """The prompts at the tables of the current allocation, with the seat's letter and
    its member (one who left the panel talks to no table), the one to show first first."""
    return (
        select(TablePrompt, GroupSeat.letter, GroupSeat.participant_id)
        .join(
            GroupSeat,
            (GroupSeat.run_id == TablePrompt.run_id)
            & (GroupSeat.round == TablePrompt.round)
            & (GroupSeat.table_no == TablePrompt.table_no),
        )
        .join(GroupRun, GroupRun.run_id == TablePrompt.run_id)
        .join(Selection, Selection.participant_id == GroupSeat.participant_id)
        .where(Selection.status == CONFIRMED, GroupRun.status == CURRENT)
        .order_by((TablePrompt.status == CLOSED).asc(), TablePrompt.id.desc())
    )


_ONE = _prompts_at_seats().where(GroupSeat.participant_id == bindparam("participant_id")).limit(1)
_MANY = _prompts_at_seats().where(GroupSeat.participant_id.in_(bindparam("ids", expanding=True)))


async def table_facts(session: AsyncSession, participant: Participant) -> dict[str, Any] | None:
    """The prompt open (or paused) at this member's table in the current allocation."""
    row = (await session.execute(_ONE, {"participant_id": participant.id})).first()
    if row is None:
        return None
    return _table(session, participant, row[0], row[1])


async def table_facts_for_group(
    session: AsyncSession, participants: Sequence[Participant]
) -> Callable[[Participant], dict[str, Any] | None]:
    """`table_facts` for many people: their prompts in one query, each one's first kept."""
    ids = sorted({p.id for p in participants})
    first: dict[str, tuple[TablePrompt, str]] = {}
    if ids:
        for tp, letter, participant_id in await session.execute(_MANY, {"ids": ids}):
            first.setdefault(participant_id, (tp, letter))

    def facts_of(participant: Participant) -> dict[str, Any] | None:
        found = first.get(participant.id)
        return None if found is None else _table(session, participant, *found)

    return facts_of


def _table(
    session: AsyncSession, participant: Participant, tp: TablePrompt, letter: str
) -> dict[str, Any]:
    contact: Contact | None = session.info.get(TURN_CONTACT)
    chosen = (participant.state or {}).get("data", {}).get(MODE_KEY)
    return {
        "table": TableFacts(
            table_prompt=tp.id,
            round=tp.round,
            table=tp.table_no,
            letter=letter,
            paused=tp.status == PAUSED,
            relay_mode=relay_mode(chosen, contact.channel if contact else "sms"),
            closed_at=tp.closed_at if tp.status == CLOSED else None,
        )
    }


def turn_hook(sink: ReportSink, stored: Callable[[AsyncSession], None]):
    """The after-turn hook: `sink` is where REPORT goes; `stored(session)` is told
    when a contribution was stored (the relay step runs once the turn commits)."""

    async def hook(
        session: AsyncSession,
        settings: Settings,
        *,
        participant: Participant,
        contact: Contact,
        text: str,
        turn: Turn,
        now: datetime,
    ) -> int:
        queued = 0
        for event in turn.events:
            if event.kind in (events.CONTRIBUTED, events.PASSED):
                await _store(session, participant, contact, text, event.kind, event.data, now)
                stored(session)
            elif event.kind == events.REPEAT_ASKED:
                queued += await _repeat(session, settings, participant, event.data, now)
            elif event.kind == events.REPORTED:
                report = await _report(session, participant, event.data)
                if report is not None:
                    queued += await sink(session, settings, report, now)
        return queued

    return hook


async def _store(
    session: AsyncSession,
    participant: Participant,
    contact: Contact,
    text: str,
    kind: str,
    data: dict[str, Any],
    now: datetime,
) -> None:
    tp = await session.get(TablePrompt, data["table_prompt"])
    passed = kind == events.PASSED
    session.add(
        Contribution(
            table_prompt_id=tp.id,
            run_id=tp.run_id,
            round=tp.round,
            table_no=tp.table_no,
            prompt_key=tp.prompt_key,
            kind=PASS if passed else MESSAGE,
            participant_id=participant.id,
            letter=data["letter"],
            language=participant.language,
            channel=contact.channel,
            text=None if passed else text,
            text_sha256=""
            if passed
            else hashlib.sha256(text.encode("utf-8", "replace")).hexdigest(),
            at=now,
            held=False,
        )
    )


async def _repeat(
    session: AsyncSession,
    settings: Settings,
    participant: Participant,
    data: dict[str, Any],
    now: datetime,
) -> int:
    """What others said at the table since this member's last relayed message."""
    tp = await session.get(TablePrompt, data["table_prompt"])
    table = await seated(session, tp.run_id, tp.round, tp.table_no)
    seat = table.seat_of(participant.id)
    if seat is None or seat.contact is None:
        return 0
    mine = (
        await session.execute(
            select(func.max(Contribution.relay_no)).where(
                Contribution.table_prompt_id == tp.id,
                Contribution.participant_id == participant.id,
            )
        )
    ).scalar()
    lines = [text for _, text in await lines_after(session, tp, mine or 0, seat, table.known)]
    return await say(
        session,
        settings,
        seat,
        [repeat_text(translator(participant.language), lines)],
        now,
    )


async def last_lines(session: AsyncSession, tp: TablePrompt, limit: int) -> list[Line]:
    rows = (
        await session.execute(
            select(Contribution)
            .where(Contribution.table_prompt_id == tp.id, Contribution.hidden_at.is_(None))
            .order_by(Contribution.id.desc())
            .limit(limit)
        )
    ).scalars()
    return [
        Line(c.id, c.at, c.letter, c.kind, c.text or "", c.hidden_at is not None, c.held)
        for c in reversed(list(rows))
    ]


async def _report(
    session: AsyncSession, participant: Participant, data: dict[str, Any]
) -> Report | None:
    tp = await session.get(TablePrompt, data["table_prompt"])
    if tp is None:
        return None
    return Report(
        participant_id=participant.id,
        letter=data["letter"],
        round=tp.round,
        table=tp.table_no,
        prompt=tp.prompt_key,
        lines=await last_lines(session, tp, REPORT_LINES),
    )
