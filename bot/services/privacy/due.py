"""What is due for erasure: the `[retention]` periods applied to the markers that exist.

- after_end: everyone, that long after the assembly ends (its last session's end, or
  `[retention] assembly_end` for a file without a calendar);
- after_withdrawal: from the first withdrawal marker (a consent withdrawn, an invitation
  closed as withdrawn, a panel place given up as withdrawn, an erasure asked for);
- after_stop: someone who never registered and opted out (STOP, or the carrier's opt-out),
  from the opt-out;
- organisers: organisers' numbers and ids, that long after the assembly ends.
Each person is due under the rule that falls first. With no `[retention]`, nothing is due.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from flows import events
from flows.retention import Period, Retention
from scheduler.config import Calendar
from store.models import AuditEvent, Contact, Participant
from store.organisers import BroadcastPreview, Organiser
from store.recruitment import (
    REGISTERED,
    WITHDRAWN,
    Consent,
    Invitation,
    RegistrationAnswer,
    Selection,
)

AFTER_END, AFTER_WITHDRAWAL, AFTER_STOP = "after_end", "after_withdrawal", "after_stop"
REQUEST = "request"  # `concorder erase PERSON`: an erasure asked for, not a period ended


@dataclass(frozen=True)
class Due:
    participant_id: str
    rule: str
    since: datetime  # the marker the period runs from
    due_at: datetime


def assembly_end(retention: Retention, calendar: Calendar | None) -> datetime | None:
    """When the assembly ends: the file's own date, else its last session's end."""
    if retention.assembly_end is not None:
        return retention.assembly_end.astimezone(UTC)
    if calendar is None or not calendar.sessions:
        return None
    ends = [calendar.localise(s.end or s.start) for s in calendar.sessions]
    return max(ends).astimezone(UTC)


async def due_people(
    session: AsyncSession, retention: Retention, end: datetime | None, now: datetime
) -> list[Due]:
    """Everyone not erased yet whose data a period says must go by `now`, earliest first."""
    found: dict[str, Due] = {}

    def offer(pid: str, rule: str, since: datetime | None, period: Period) -> None:
        if since is None:
            return
        due_at = period.after(since)
        if due_at <= now and (pid not in found or due_at < found[pid].due_at):
            found[pid] = Due(pid, rule, since, due_at)

    for pid, since in (await _withdrawals(session)).items():
        offer(pid, AFTER_WITHDRAWAL, since, retention.after_withdrawal)
    for pid, since in (await _stops_of_unregistered(session)).items():
        offer(pid, AFTER_STOP, since, retention.after_stop)
    if end is not None and retention.after_end.after(end) <= now:
        for pid in (await session.execute(_not_erased())).scalars():
            offer(pid, AFTER_END, end, retention.after_end)
    return sorted(found.values(), key=lambda d: (d.due_at, d.participant_id))


def _not_erased():
    return select(Participant.id).where(Participant.erased_at.is_(None))


async def _withdrawals(session: AsyncSession) -> dict[str, datetime]:
    """The first withdrawal marker of each person not erased yet."""
    queries = [
        select(Consent.participant_id, func.min(Consent.withdrawn_at))
        .where(Consent.withdrawn_at.is_not(None))
        .group_by(Consent.participant_id),
        select(Invitation.participant_id, Invitation.closed_at).where(
            Invitation.status == WITHDRAWN, Invitation.closed_at.is_not(None)
        ),
        select(Selection.participant_id, Selection.responded_at).where(
            Selection.reason == WITHDRAWN, Selection.responded_at.is_not(None)
        ),
        # WITHDRAW and STOP during recruitment ask for erasure.
        select(Participant.id, Participant.erase_requested_at).where(
            Participant.erase_requested_at.is_not(None)
        ),
    ]
    return await _earliest(session, queries)


async def _stops_of_unregistered(session: AsyncSession) -> dict[str, datetime]:
    """People who opted out and never registered, with when they opted out."""
    registered = (
        select(Invitation.participant_id)
        .where(or_(Invitation.status == REGISTERED, Invitation.registered_at.is_not(None)))
        .union(select(RegistrationAnswer.participant_id), select(Selection.participant_id))
    )
    queries = [
        select(Contact.participant_id, func.min(Contact.opted_out_at))
        .where(Contact.opted_out_at.is_not(None))
        .group_by(Contact.participant_id),
        # STOP in a conversation: the latest opt-out event of someone still opted out.
        select(AuditEvent.participant_id, func.max(AuditEvent.at))
        .join(Participant, Participant.id == AuditEvent.participant_id)
        .where(AuditEvent.kind == events.OPTED_OUT, Participant.opted_out.is_(True))
        .group_by(AuditEvent.participant_id),
    ]
    stops = await _earliest(session, queries)
    left_out = set((await session.execute(registered)).scalars())
    return {pid: at for pid, at in stops.items() if pid not in left_out}


async def _earliest(session: AsyncSession, queries: list) -> dict[str, datetime]:
    erased = set(
        (
            await session.execute(select(Participant.id).where(Participant.erased_at.is_not(None)))
        ).scalars()
    )
    found: dict[str, datetime] = {}
    for query in queries:
        for pid, at in await session.execute(query):
            if pid is None or at is None or pid in erased:
                continue
            at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
            found[pid] = min(found.get(pid, at), at)
    return found


async def due_organisers(
    session: AsyncSession, retention: Retention, end: datetime | None, now: datetime
) -> list[int]:
    """Organisers whose numbers and ids are due to go (all of them, once it is time)."""
    if end is None or retention.organisers.after(end) > now:
        return []
    with_data = select(Organiser.id).where(
        or_(
            Organiser.name.is_not(None),
            Organiser.phone.is_not(None),
            Organiser.telegram_id.is_not(None),
            Organiser.id.in_(select(BroadcastPreview.organiser_id)),
        )
    )
    return list((await session.execute(with_data.order_by(Organiser.id))).scalars())
