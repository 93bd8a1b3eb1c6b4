"""Reminders, lapsed invitations, and telling people the outcome of the draw."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.relay import Relay
from bot.services import people
from bot.services import turns as service
from bot.services.recruitment.invitations import quiet_hours_end
from flows.assembly import Assembly
from store import audit
from store.models import (
    utcnow,
)
from store.recruitment import (
    AWAITING_REPLY,
    DECLINED,
    INVITED,
    LAPSED,
    REGISTERED,
    REMINDED,
    RESERVE,
    SELECTED,
    Invitation,
    Selection,
)
from store.respondents import without_contact

log = logging.getLogger(__name__)


async def due_invitation_reminders(
    session: AsyncSession, now: datetime, limit: int | None = None
) -> list[Invitation]:
    """Invitations sent by message with no reply, whose one reminder is due."""
    query = (
        select(Invitation)
        .where(
            Invitation.status == INVITED,
            Invitation.responded_at.is_(None),
            Invitation.reminded_at.is_(None),
            Invitation.remind_at <= now,
        )
        .order_by(Invitation.remind_at, Invitation.id)
    )
    return list((await session.execute(query.limit(limit) if limit else query)).scalars())


async def send_invitation_reminders(
    relay: Relay, now: datetime | None = None, chunk: int = 500
) -> int:
    """Send every due reminder (one per invitation, ever), a chunk per transaction."""
    now = now or utcnow()
    not_before = quiet_hours_end(relay.assembly, now)
    sent = 0
    while True:
        async with relay.sessions.begin() as session:
            due = await due_invitation_reminders(session, now, chunk)
            for invitation in due:
                participant = await people.lock_participant(session, invitation.participant_id)
                invitation.reminded_at, invitation.status = now, REMINDED
                if participant.opted_out or participant.erase_requested_at:
                    continue
                await service.start_flow(
                    session,
                    relay,
                    participant,
                    "invitation",
                    step="reminder",
                    now=now,
                    not_before=not_before,
                )
                await audit.append(
                    session, "invitation.reminded", {}, participant_id=participant.id, at=now
                )
                sent += 1
        if len(due) < chunk:
            return sent


async def lapse_invitations(session: AsyncSession, now: datetime) -> int:
    """Close the invitations nobody answered, even after the reminder. Returns how many."""
    ids = list(
        (
            await session.execute(
                select(Invitation.id, Invitation.participant_id).where(
                    Invitation.status.in_(AWAITING_REPLY),
                    Invitation.responded_at.is_(None),
                    Invitation.lapse_at <= now,
                )
            )
        ).all()
    )
    if not ids:
        return 0
    for start in range(0, len(ids), 5000):
        part = ids[start : start + 5000]
        await session.execute(
            update(Invitation)
            .where(Invitation.id.in_([i for i, _ in part]))
            .values(status=LAPSED, closed_at=now)
        )
        await audit.append_many(session, [("invitation.lapsed", {}, pid) for _, pid in part], now)
    return len(ids)


# ------------------------------------------------------------ the draw's outcome


async def notify_draw_outcome(
    relay: Relay, assembly: Assembly, now: datetime | None = None
) -> Counter:
    """Tell people what the draw wrote: the selected are asked to CONFIRM by a deadline,
    reserves hear they are reserves, everyone else registered is thanked. Each person is
    told once; rows the draw adds later (a reserve promoted to selected) are told then."""
    now = now or utcnow()
    told: Counter = Counter()
    async with relay.sessions.begin() as session:
        await expire_selections(session, now)
        selections = (
            (
                await session.execute(
                    # Not told yet, or a reserve promoted to selected (no deadline yet).
                    select(Selection)
                    .where(
                        (
                            Selection.notified_at.is_(None)
                            & Selection.status.in_((SELECTED, RESERVE))
                        )
                        | ((Selection.status == SELECTED) & Selection.confirm_by.is_(None))
                    )
                    .order_by(Selection.id)
                    .with_for_update()
                )
            )
            .scalars()
            .all()
        )
        for selection in selections:
            if selection.status == SELECTED and selection.confirm_by is None:
                selection.confirm_by = now + assembly.recruitment.confirm_within
            selection.notified_at = now
            participant = await people.lock_participant(session, selection.participant_id)
            if await without_contact(session, [participant.id]):
                # Registered outside the chat with no phone: the organisers tell them
                # (`concorder respondents to-contact`) and record the answer.
                await audit.append(
                    session,
                    "selection.for_organisers",
                    {"status": selection.status},
                    participant_id=participant.id,
                    at=now,
                )
                told[f"{selection.status}, no contact: for the organisers"] += 1
                continue
            step = "confirm" if selection.status == SELECTED else "reserve"
            await service.start_flow(
                session, relay, participant, "confirmation", step=step, now=now
            )
            await audit.append(
                session,
                "selection.notified",
                {"status": selection.status},
                participant_id=participant.id,
                at=now,
            )
            told[selection.status] += 1
        drawn = (await session.execute(select(func.count(Selection.id)))).scalar_one()
        if drawn:
            others = (
                (
                    await session.execute(
                        select(Invitation)
                        .outerjoin(Selection, Selection.participant_id == Invitation.participant_id)
                        .where(
                            Invitation.status == REGISTERED,
                            Invitation.outcome_sent_at.is_(None),
                            Selection.id.is_(None),
                        )
                        .with_for_update(of=Invitation)
                    )
                )
                .scalars()
                .all()
            )
            unreachable = set(await without_contact(session, [i.participant_id for i in others]))
            for invitation in others:
                invitation.outcome_sent_at = now
                if invitation.participant_id in unreachable:
                    told["not selected, no contact"] += 1
                    continue
                participant = await people.lock_participant(session, invitation.participant_id)
                await service.start_flow(
                    session, relay, participant, "confirmation", step="thanks", now=now
                )
                told["not selected"] += 1
            if others:
                await audit.append(session, "selection.thanked", {"people": len(others)}, at=now)
    return told


async def expire_selections(session: AsyncSession, now: datetime) -> int:
    """The selected who did not answer by their deadline lose their place (the draw
    engineer's reserve promotion then fills it)."""
    late = (
        await session.execute(
            select(Selection.id, Selection.participant_id).where(
                Selection.status == SELECTED,
                Selection.confirm_by < now,
                Selection.responded_at.is_(None),
            )
        )
    ).all()
    if late:
        await session.execute(
            update(Selection)
            .where(Selection.id.in_([i for i, _ in late]))
            .values(status=DECLINED, reason="no_reply")
        )
        await audit.append_many(session, [("selection.expired", {}, pid) for _, pid in late], now)
    return len(late)
