"""Relaying a table's messages: what a member wrote reaches the others, under their seat
letter, scrubbed of addresses, in the order the table receives it.

Every transaction of a table takes its prompt's row first (FOR NO KEY UPDATE), then the
members' contacts in id order: two relays of one table run one after the other, and a
member's own turn (which only inserts their contribution) never waits on a relay.

Fair share: a member's messages beyond the prompt's `fair_share` are kept back (`held`,
with a private note) until the limit lifts: when everyone seated but `close_missing` has
answered (a message or PASS; at least two of them at a table of two or more). From then
the prompt closes `grace_minutes` later, or at its timer if that comes first. At the close
whatever is still kept back is relayed, so nothing a member wrote is lost.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.addresses import can_receive_sms
from bot.channels.render import render
from bot.relay import Relay
from bot.services.deliberation.tables import Seated, Table, seated
from bot.services.outgoing import NO_SMS_REPLY, enqueue
from bot.settings import Settings
from flows import events
from flows.deliberation import (
    EVERY,
    digest_text,
    fair_share_note,
    passed_line,
    post_line,
    relay_line,
    removed_placeholder,
)
from flows.deliberation_scrub import scrub
from flows.i18n import translator
from flows.model import Outbound
from scheduler.deliberation import add_job, move_job
from store import audit, outbox
from store.deliberation import (
    JOB_DIGEST,
    MESSAGE,
    PASS,
    PAUSED,
    PENDING,
    POST,
    Contribution,
    DeliberationJob,
    PromptMember,
    TablePrompt,
)
from store.models import OutboxStatus

KIND = "deliberation"  # the outbox kind of everything the conversation sends


async def say(
    session: AsyncSession, settings: Settings, seat: Seated, texts: list[str], now: datetime
) -> int:
    """Queue `texts` to one seated member, in order; rows queued."""
    if seat.contact is None or not texts:
        return 0
    return await enqueue(
        session,
        settings,
        seat.participant,
        seat.contact,
        [Outbound(text=text, kind=KIND) for text in texts],
        prompt_id=None,
        now=now,
    )


async def say_each(
    session: AsyncSession, settings: Settings, lines: list[tuple[Seated, str]], now: datetime
) -> int:
    """Queue one text to each of several members in one outbox write (a fan-out: one
    insert for the table, not one per reader); rendered as `enqueue` renders."""
    rows: list[outbox.Message] = []
    for seat, text in lines:
        contact = seat.contact
        if contact is None:
            continue
        parts = render(
            Outbound(text=text, kind=KIND),
            contact.channel,
            seat.participant.language,
            None,
            settings.sms_max_segments,
        )
        silent = contact.channel == "sms" and not can_receive_sms(contact.address)
        for number, part in enumerate(parts, start=1):
            rows.append(
                outbox.Message(
                    contact,
                    part.text,
                    buttons=part.buttons,
                    kind=KIND,
                    part=number,
                    parts=len(parts),
                    segments=part.segments,
                    encoding=part.encoding,
                    **({"status": OutboxStatus.CANCELLED, "error": NO_SMS_REPLY} if silent else {}),
                )
            )
    await outbox.write(session, rows, now=now)
    return sum(1 for row in rows if row.status != OutboxStatus.CANCELLED)


def line_for(c: Contribution, language: str, known: list[str]) -> str:
    """What a reader sees of one contribution, in their language."""
    t = translator(language)
    if c.kind == PASS:
        return passed_line(t, c.letter)
    if c.kind == POST:
        return post_line(t, c.text or "")
    text, _removed = scrub(c.text or "", removed_placeholder(t), known)
    return relay_line(c.letter, text)


async def marks(
    session: AsyncSession, tp: TablePrompt, participant_ids: list[str]
) -> dict[str, PromptMember]:
    """Each member's marks in this prompt, made on first need."""
    found = {
        m.participant_id: m
        for m in (
            await session.execute(
                select(PromptMember).where(
                    PromptMember.table_prompt_id == tp.id,
                    PromptMember.participant_id.in_(participant_ids),
                )
            )
        ).scalars()
    }
    for pid in participant_ids:
        if pid not in found:
            found[pid] = PromptMember(table_prompt_id=tp.id, participant_id=pid, relayed_upto=0)
            session.add(found[pid])
    return found


async def answered(session: AsyncSession, tp: TablePrompt) -> set[str]:
    """Who has answered this prompt: written (relayed or not) or passed."""
    return set(
        (
            await session.execute(
                select(Contribution.participant_id).where(
                    Contribution.table_prompt_id == tp.id,
                    Contribution.kind.in_((MESSAGE, PASS)),
                )
            )
        ).scalars()
    )


def share_reached(tp: TablePrompt, table: Table, have_answered: set[str]) -> bool:
    """Everyone seated and reachable but `close_missing` has answered (at least two when
    two or more sit there): the fair share lifts and the close comes."""
    active = {s.participant.id for s in table.active}
    if not active:
        return False
    done = active & have_answered
    return len(active - done) <= tp.close_missing and len(done) >= min(2, len(active))


async def _relayed_messages(session: AsyncSession, tp: TablePrompt) -> dict[str, int]:
    rows = await session.execute(
        select(Contribution.participant_id, func.count())
        .where(
            Contribution.table_prompt_id == tp.id,
            Contribution.kind == MESSAGE,
            Contribution.relayed_at.is_not(None),
        )
        .group_by(Contribution.participant_id)
    )
    return dict(rows.all())


async def _pending(session: AsyncSession, tp: TablePrompt) -> list[Contribution]:
    return list(
        (
            await session.execute(
                select(Contribution)
                .where(Contribution.table_prompt_id == tp.id, Contribution.relayed_at.is_(None))
                .order_by(Contribution.id)
            )
        ).scalars()
    )


async def relay_table(
    session: AsyncSession,
    relay: Relay,
    tp: TablePrompt,
    now: datetime,
    *,
    table: Table | None = None,
    closing: bool = False,
) -> int:
    """Relay what is waiting at one table, in order (the caller holds the prompt's lock).
    `closing` relays everything kept back, whatever the fair share or a pause says."""
    table = table or await seated(session, tp.run_id, tp.round, tp.table_no, lock=True)
    queued = 0
    progress = True
    while progress:
        progress = False
        counts = await _relayed_messages(session, tp)
        for c in await _pending(session, tp):
            if c.hidden_at is not None:
                continue  # hidden before it went out: never relayed
            if tp.status == PAUSED and not closing:
                break
            over = (
                c.kind == MESSAGE
                and not closing
                and tp.limit_lifted_at is None
                and counts.get(c.participant_id, 0) >= tp.fair_share
            )
            if over:
                queued += await _hold(session, relay, tp, table, c, now)
                continue
            queued += await fan_out(session, relay, tp, table, c, now)
            if c.kind == MESSAGE:
                counts[c.participant_id] = counts.get(c.participant_id, 0) + 1
        if tp.limit_lifted_at is None and share_reached(tp, table, await answered(session, tp)):
            await lift_limit(session, tp, now)
            progress = not closing  # what was kept back may go now
    return queued


async def _hold(
    session: AsyncSession, relay: Relay, tp: TablePrompt, table: Table, c: Contribution, now
) -> int:
    if c.held:
        return 0
    c.held = True
    await audit.append(
        session,
        events.HELD,
        {
            "table_prompt": tp.id,
            "round": tp.round,
            "table": tp.table_no,
            "letter": c.letter,
            "contribution": c.id,
        },
        participant_id=c.participant_id,
        at=now,
    )
    author = table.seat_of(c.participant_id)
    if author is None:
        return 0
    return await say(
        session,
        relay.settings,
        author,
        [fair_share_note(translator(author.participant.language), tp.fair_share)],
        now,
    )


async def lift_limit(session: AsyncSession, tp: TablePrompt, now: datetime) -> None:
    """The closing share has answered: no more holding back; close after the grace."""
    tp.limit_lifted_at = now
    close_at = min(tp.closes_at, now + timedelta(minutes=tp.grace_minutes))
    if close_at < tp.closes_at:
        await move_job(session, f"close:{tp.id}", close_at)


async def fan_out(
    session: AsyncSession, relay: Relay, tp: TablePrompt, table: Table, c: Contribution, now
) -> int:
    """Send one contribution to every other reachable member (at once, or into their
    next digest) and record it relayed."""
    tp.relayed_count += 1
    c.relay_no, c.relayed_at, c.held = tp.relayed_count, now, False
    others = [s for s in table.active if s.participant.id != c.participant_id]
    member_marks = await marks(session, tp, [s.participant.id for s in others])
    at_once: list[tuple[Seated, str]] = []
    lines: dict[str, str] = {}  # scrubbed once per language
    for seat in others:
        mark = member_marks[seat.participant.id]
        if seat.mode == EVERY:
            language = seat.participant.language
            if language not in lines:
                lines[language] = line_for(c, language, table.known)
            at_once.append((seat, lines[language]))
            mark.relayed_upto = c.relay_no
        elif not await _digest_waiting(session, tp, seat):
            await add_job(
                session,
                JOB_DIGEST,
                f"digest:{tp.id}:{seat.participant.id}:{c.relay_no}",
                now + timedelta(minutes=tp.digest_minutes),
                table_prompt_id=tp.id,
                participant_id=seat.participant.id,
                now=now,
            )
    await audit.append(
        session,
        events.RELAYED,
        {
            "table_prompt": tp.id,
            "round": tp.round,
            "table": tp.table_no,
            "letter": c.letter,
            "contribution": c.id,
            "kind": c.kind,
            "at_once": len(at_once),
            "in_digest": len(others) - len(at_once),
        },
        participant_id=c.participant_id,
        at=now,
    )
    return await say_each(session, relay.settings, at_once, now)


async def _digest_waiting(session: AsyncSession, tp: TablePrompt, seat: Seated) -> bool:
    return (
        await session.execute(
            select(DeliberationJob.id)
            .where(
                DeliberationJob.kind == JOB_DIGEST,
                DeliberationJob.table_prompt_id == tp.id,
                DeliberationJob.participant_id == seat.participant.id,
                DeliberationJob.status == PENDING,
            )
            .limit(1)
        )
    ).first() is not None


async def send_digest(
    session: AsyncSession, relay: Relay, tp: TablePrompt, table: Table, seat: Seated, now
) -> int:
    """Everything relayed at the table since this member's last digest, as one message."""
    mark = (await marks(session, tp, [seat.participant.id]))[seat.participant.id]
    lines = await lines_after(session, tp, mark.relayed_upto, seat, table.known)
    if not lines:
        return 0
    mark.relayed_upto = lines[-1][0]
    texts = [text for _, text in lines]
    await audit.append(
        session,
        events.DIGEST_SENT,
        {
            "table_prompt": tp.id,
            "round": tp.round,
            "table": tp.table_no,
            "letter": seat.letter,
            "lines": len(texts),
        },
        participant_id=seat.participant.id,
        at=now,
    )
    t = translator(seat.participant.language)
    return await say(session, relay.settings, seat, [digest_text(t, tp.table_no, texts)], now)


async def lines_after(
    session: AsyncSession, tp: TablePrompt, after: int, seat: Seated, known: list[str]
) -> list[tuple[int, str]]:
    """(relay_no, line) of what others said at the table after relay number `after`."""
    rows = (
        await session.execute(
            select(Contribution)
            .where(
                Contribution.table_prompt_id == tp.id,
                Contribution.relay_no > after,
                Contribution.hidden_at.is_(None),
            )
            .order_by(Contribution.relay_no)
        )
    ).scalars()
    language = seat.participant.language
    return [
        (c.relay_no, line_for(c, language, known))
        for c in rows
        if c.participant_id != seat.participant.id
    ]
