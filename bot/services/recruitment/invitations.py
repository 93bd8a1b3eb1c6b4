"""Invitations: planned and costed, then sent in resumable chunks through the outbox writer."""

from __future__ import annotations

import csv
import logging
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.render import render
from bot.services import invite_codes
from bot.services.recruitment.common import (
    CHUNK,
    PLACEHOLDER_BOT,
    RecruitmentError,
    check_one_assembly,
)
from bot.settings import Settings
from flows.assembly import Assembly
from flows.catalog import build_engine
from flows.engine import Engine
from flows.facts import Facts, RecruitmentFacts
from flows.model import Context, State
from scheduler.config import Schedule
from scheduler.plan import after_quiet_hours
from store import audit
from store import contacts as contact_choice
from store import outbox as outbox_writer
from store.models import (
    Participant,
    utcnow,
)
from store.recruitment import (
    FAILED,
    INVITED,
    Invitation,
    PoolEntry,
    hash_code,
)

log = logging.getLogger(__name__)


def invite_link(bot_username: str, code: str) -> str:
    return f"https://t.me/{bot_username}?start={code}"


async def resolve_bot_username(
    settings: Settings, assembly: Assembly | None, given: str | None = None
) -> tuple[str, str]:
    """The bot's username for links, and where it came from: the option, Telegram's
    getMe, the assembly file, or a placeholder (simulator only: such links go nowhere)."""
    if given:
        return given.lstrip("@"), "option"
    if settings.telegram_enabled:
        from bot.channels.telegram_client import close_bot, make_bot

        bot = make_bot(settings)
        try:
            me = await bot.get_me()
        finally:
            await close_bot(bot)
        return me.username, "telegram"
    if assembly is not None and assembly.recruitment.telegram_bot_username:
        return assembly.recruitment.telegram_bot_username, "assembly file"
    return PLACEHOLDER_BOT, "placeholder"


def _pending_query(limit: int | None, after_id: int = 0):
    """Pool entries with no invitation yet, of people who have not opted out (in pool
    order, after `after_id`: a run does not scan again what it has just invited)."""
    query = (
        select(
            PoolEntry.id,
            PoolEntry.participant_id,
            PoolEntry.language,
            PoolEntry.telegram_handle,
            Participant.state,
        )
        .join(Participant, Participant.id == PoolEntry.participant_id)
        .outerjoin(Invitation, Invitation.participant_id == PoolEntry.participant_id)
        .where(
            Invitation.id.is_(None),
            Participant.opted_out.is_(False),
            Participant.erase_requested_at.is_(None),
            PoolEntry.id > after_id,
        )
        .order_by(PoolEntry.id)
    )
    return query.limit(limit) if limit else query


async def _contacts_of(session: AsyncSession, pids: list[str]) -> dict[str, list[Any]]:
    return await contact_choice.contacts_of(session, pids)


def channel_for(contacts: list[Any], handle: str | None) -> tuple[str, Any | None]:
    """The one contact choice; failing it, a Telegram handle with no chat yet is invited
    by a link on a letter."""
    contact = contact_choice.choose(contacts)
    if contact is not None:
        return contact.channel, contact
    return ("letter", None) if handle else (FAILED, None)


@dataclass
class InvitePlan:
    """What an invitation run would do: people per channel and language, SMS cost."""

    by_channel_language: Counter = field(default_factory=Counter)
    sms_segments: int = 0
    sms_messages: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_channel_language.values())

    def cost(self, per_segment: float) -> float:
        return self.sms_segments * per_segment


def _facts(assembly: Assembly, link: str | None) -> Facts:
    facts = assembly.facts()
    facts["invite_link"] = link
    facts["invitation_status"] = INVITED
    return Facts(assembly_name=facts["name"], recruitment=RecruitmentFacts(**facts))


async def plan_invitations(
    session: AsyncSession,
    settings: Settings,
    assembly: Assembly,
    bot_username: str,
    limit: int | None = None,
    *,
    engine: Engine | None = None,
) -> InvitePlan:
    """Count without writing anything: who would be invited, how, and the SMS bill.
    `engine`: the service's conversations (the standard ones when not given)."""
    engine = engine or build_engine()
    plan = InvitePlan()
    sample_link = invite_link(bot_username, "x" * invite_codes.CODE_LENGTH)  # all as long
    segments_by_language: dict[str, int] = {}
    result = await session.stream(_pending_query(limit).execution_options(yield_per=CHUNK))
    async for batch in result.partitions(CHUNK):
        contacts = await _contacts_of(session, [r.participant_id for r in batch])
        for row in batch:
            channel, _contact = channel_for(
                contacts.get(row.participant_id, []), row.telegram_handle
            )
            language = State.from_json(row.state, language=row.language).language
            plan.by_channel_language[(channel, language)] += 1
            if channel == "sms":
                if language not in segments_by_language:
                    segments_by_language[language] = _sms_size(
                        settings, assembly, language, sample_link, engine
                    )
                plan.sms_segments += segments_by_language[language]
                plan.sms_messages += 1
    return plan


def _sms_size(
    settings: Settings, assembly: Assembly, language: str, link: str, engine: Engine
) -> int:
    ctx = Context(now=utcnow(), participant_id="P0", channel="sms", facts=_facts(assembly, link))
    turn = engine.start(State(language=language), "invitation", ctx)
    return sum(
        part.segments
        for message in turn.outbound
        for part in render(
            message, "sms", language, turn.state.prompt_id, settings.sms_max_segments
        )
    )


@dataclass
class InviteResult:
    invited: Counter = field(default_factory=Counter)  # by channel
    messages: int = 0
    letters: int = 0

    @property
    def total(self) -> int:
        return sum(self.invited.values())


async def send_invitations(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    assembly: Assembly,
    bot_username: str,
    *,
    limit: int | None = None,
    letters_path: str | Path | None = None,
    now: datetime | None = None,
    chunk: int = CHUNK,
    progress: Callable[[int], None] | None = None,
    engine: Engine | None = None,
) -> InviteResult:
    """Invite everyone in the pool not invited yet (at most `limit`), chunk by chunk.

    Each chunk is one transaction: the invitations, the participants' new conversation
    state, the outbox rows and the audit events commit together, so a stopped run resumes
    without inviting anyone twice. Letter links (handle only) are appended to
    `letters_path` and flushed to disk before their chunk commits.
    """
    now = now or utcnow()
    engine = engine or build_engine()
    result = InviteResult()
    async with sessions.begin() as session:
        await check_one_assembly(session, assembly)
    letters = None
    last_id = 0
    try:
        while limit is None or result.total < limit:
            size = chunk if limit is None else min(chunk, limit - result.total)
            async with sessions.begin() as session:
                await _roomy_cache(session)
                rows = (await session.execute(_pending_query(size, last_id))).all()
                if not rows:
                    break
                last_id = rows[-1].id
                if letters is None and letters_path and any(r.telegram_handle for r in rows):
                    letters = _open_letters(letters_path)
                done = await _invite_chunk(
                    session, settings, engine, assembly, bot_username, rows, now, letters, result
                )
                if letters is not None:
                    letters.flush()
                    os.fsync(letters.fileno())
            if progress:
                progress(done)
    finally:
        if letters is not None:
            letters.close()
    return result


async def _roomy_cache(session: AsyncSession) -> None:
    """Random keys (codes, hashes, pseudonyms) touch pages all over the indexes: SQLite's
    default 2 MB page cache would read them from the file again and again."""
    conn = await session.connection()
    if conn.dialect.name == "sqlite":
        await conn.exec_driver_sql("PRAGMA cache_size=-65536")  # 64 MB, this connection


def _open_letters(path: str | Path):
    path = Path(path)
    new = not path.exists() or path.stat().st_size == 0
    # Its links open invitations: readable by the organiser only, like the key.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    fp = os.fdopen(fd, "a", newline="", encoding="utf-8")
    if new:
        csv.writer(fp).writerow(["participant_id", "telegram_handle", "language", "link"])
    return fp


_CODE_MARK = "Q" * invite_codes.CODE_LENGTH  # where the code goes in a rendered invitation


def _rendered_invitation(
    settings: Settings,
    engine: Engine,
    assembly: Assembly,
    bot_username: str,
    state: State,
    channel: str,
    now: datetime,
):
    """The invitation turn for one person, rendered: the new state, the events, and the
    parts with _CODE_MARK where the person's code goes."""
    ctx = Context(
        now=now,
        participant_id="P0",
        channel=channel,
        facts=_facts(assembly, invite_link(bot_username, _CODE_MARK)),
    )
    turn = engine.start(state, "invitation", ctx)
    messages = [
        (
            message,
            render(
                message,
                channel,
                turn.state.language,
                turn.state.prompt_id,
                settings.sms_max_segments,
            ),
        )
        for message in turn.outbound
    ]
    return turn.state.to_json(), turn.events, messages


def quiet_hours_end(assembly: Assembly | None, now: datetime) -> datetime:
    """When an invitation written at `now` may go: after the quiet hours of the assembly's
    [schedule], in its time zone, as the calendar's own messages wait; `now` without one."""
    if assembly is None or assembly.schedule is None:
        return now
    try:
        schedule = Schedule.model_validate(assembly.schedule)
    except ValidationError as exc:
        raise RecruitmentError(f"the [schedule] table cannot be used: {exc}") from None
    return after_quiet_hours(now, ZoneInfo(schedule.timezone), schedule.quiet_hours)


async def _invite_chunk(
    session: AsyncSession,
    settings: Settings,
    engine: Engine,
    assembly: Assembly,
    bot_username: str,
    rows: list,
    now: datetime,
    letters,
    result: InviteResult,
) -> int:
    recruitment = assembly.recruitment
    contacts = await _contacts_of(session, [r.participant_id for r in rows])
    invitations, outbox, states, events = [], [], [], []
    writer = csv.writer(letters) if letters is not None else None
    # People who never wrote have the same fresh state: their invitation differs only by
    # the code, so it is rendered once per channel and language and the code filled in.
    fresh: dict[tuple[str, str], Any] = {}
    secret = invite_codes.server_key(settings)
    remind_at = now + recruitment.remind_after
    lapse_at = remind_at + recruitment.lapse_after
    not_before = quiet_hours_end(assembly, now)
    for row in rows:
        pid = row.participant_id
        channel, contact = channel_for(contacts.get(pid, []), row.telegram_handle)
        # The outbox keeps only the nonce; the code is made again as the message leaves.
        nonce = invite_codes.new_nonce()
        code = invite_codes.code_for(nonce, secret)
        code_marker = invite_codes.marker(nonce)
        state = State.from_json(row.state, language=row.language)
        if contact is not None:
            pristine = state.flow is None and not state.data
            key = (channel, state.language)
            if pristine and key in fresh:
                new_state, turn_events, messages = fresh[key]
            else:
                new_state, turn_events, messages = _rendered_invitation(
                    settings, engine, assembly, bot_username, state, channel, now
                )
                if pristine:
                    fresh[key] = (new_state, turn_events, messages)
            for message, parts in messages:
                for number, part in enumerate(parts, start=1):
                    outbox.append(
                        outbox_writer.Message(
                            contact,
                            part.text.replace(_CODE_MARK, code_marker),
                            buttons=part.buttons,
                            markdown=message.markdown,
                            kind="invitation",
                            part=number,
                            parts=len(parts),
                            segments=part.segments,
                            encoding=part.encoding,
                            not_before=not_before,
                        )
                    )
            states.append({"b_id": pid, "b_state": new_state, "b_at": now})
            events.extend((e.kind, e.data, pid) for e in turn_events)
        elif channel == "letter" and writer is not None:
            writer.writerow(
                [pid, row.telegram_handle, state.language, invite_link(bot_username, code)]
            )
            result.letters += 1
        failed = channel == FAILED
        invitations.append(
            {
                "participant_id": pid,
                "code_hash": hash_code(code),
                "channel": channel,
                "language": state.language,
                "status": FAILED if failed else INVITED,
                "sent_at": now,
                "remind_at": remind_at if contact is not None else None,
                "lapse_at": None if failed else lapse_at,
                "closed_at": now if failed else None,
            }
        )
        events.append(
            (
                "invitation.unreachable" if failed else "invitation.sent",
                {"channel": channel, "language": state.language},
                pid,
            )
        )
        result.invited[channel] += 1
    # Core statements: one executemany each, no ORM objects for a quarter million rows.
    conn = await session.connection()
    await conn.execute(Invitation.__table__.insert(), invitations)
    if outbox:
        await outbox_writer.write(session, outbox, now=now)
        participant_table = Participant.__table__
        await conn.execute(
            participant_table.update()
            .where(participant_table.c.id == bindparam("b_id"))
            .values(state=bindparam("b_state"), updated_at=bindparam("b_at")),
            states,
        )
    await audit.append_many(session, events, now)
    result.messages += len(outbox)
    return len(rows)
