"""Recruitment flow events become rows: invitations answered, consents, registrations, withdrawals,
replies to the draw."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.hooks import Hooks
from flows import events
from flows.model import Event
from store.recruitment import (
    CONFIRMED,
    CONSENTED,
    DECLINED,
    NOT_INTERESTED,
    REGISTERED,
    RESPONDED,
    WITHDRAWN,
    Consent,
    Invitation,
    PoolEntry,
    RegistrationAnswer,
    Selection,
)

log = logging.getLogger(__name__)


async def _invitation_of(session: AsyncSession, participant_id: str) -> Invitation | None:
    return (
        await session.execute(
            select(Invitation).where(Invitation.participant_id == participant_id).with_for_update()
        )
    ).scalar_one_or_none()


async def _accepted(session, participant, event: Event, now: datetime) -> None:
    invitation = await _invitation_of(session, participant.id)
    if invitation is not None:
        invitation.responded_at = invitation.responded_at or now
        invitation.status = RESPONDED


async def _close(session, participant, now: datetime, status: str) -> None:
    invitation = await _invitation_of(session, participant.id)
    if invitation is not None:
        invitation.responded_at = invitation.responded_at or now
        invitation.status, invitation.closed_at = status, now


async def _declined(session, participant, event: Event, now: datetime) -> None:
    await _close(session, participant, now, NOT_INTERESTED)


async def _consent_refused(session, participant, event: Event, now: datetime) -> None:
    await _close(session, participant, now, NOT_INTERESTED)


async def _consent_given(session, participant, event: Event, now: datetime) -> None:
    session.add(
        Consent(
            participant_id=participant.id,
            text_version=str(event.data.get("version", "")),
            language=str(event.data.get("language", participant.language)),
            channel=str(event.data.get("channel", "")),
            given_at=now,
        )
    )
    invitation = await _invitation_of(session, participant.id)
    if invitation is not None:
        invitation.responded_at = invitation.responded_at or now
        invitation.consented_at, invitation.status = now, CONSENTED


async def _registered(session, participant, event: Event, now: datetime) -> None:
    state = dict(participant.state)
    data = dict(state.get("data") or {})
    progress = data.pop("registration", None) or {}
    # The answers move from the conversation state to their table, and only there.
    state["data"] = data
    participant.state = state
    await session.execute(
        RegistrationAnswer.__table__.delete().where(
            RegistrationAnswer.participant_id == participant.id
        )
    )
    for question_id, answer in (progress.get("answers") or {}).items():
        session.add(
            RegistrationAnswer(
                participant_id=participant.id,
                question_id=question_id,
                answer=answer,
                answered_at=now,
            )
        )
    invitation = await _invitation_of(session, participant.id)
    if invitation is not None:
        invitation.registered_at, invitation.status = now, REGISTERED


@dataclass(frozen=True)
class Withdrawal:
    """What a withdrawal changed: the stage the person had reached and the place they gave
    up ("selected", "confirmed" or "reserve"; None if they held none)."""

    participant_id: str
    stage: str | None  # the invitation's status before, None without an invitation
    seat: str | None
    by: str  # "participant" (WITHDRAW), "stop" (STOP) or "organiser"


# Told of every withdrawal that changed something, in the same transaction.
WithdrawalListener = Callable[[AsyncSession, Withdrawal, datetime], Awaitable[None]]


async def record_withdrawal(
    session: AsyncSession, participant, event: Event, now: datetime
) -> Withdrawal | None:
    """WITHDRAW, STOP or an organiser's command: stop everything, give up any place and
    mark the person's data for erasure. None when nothing changed (not in the recruitment,
    or withdrawn already)."""
    invitation = await _invitation_of(session, participant.id)
    entry = (
        await session.execute(
            select(PoolEntry.id).where(PoolEntry.participant_id == participant.id)
        )
    ).scalar_one_or_none()
    if invitation is None and entry is None:
        return None
    # Left before: withdrawn from the invitation, or (never invited) already marked.
    left = invitation.status == WITHDRAWN if invitation else participant.erase_requested_at
    participant.erase_requested_at = participant.erase_requested_at or now
    seat = (
        await session.execute(
            select(Selection.status)
            .where(Selection.participant_id == participant.id, Selection.status != DECLINED)
            .with_for_update()
        )
    ).scalar_one_or_none()
    stage = invitation.status if invitation is not None else None
    if invitation is not None and invitation.status != WITHDRAWN:
        invitation.status, invitation.closed_at = WITHDRAWN, now
    await session.execute(
        update(Consent)
        .where(Consent.participant_id == participant.id, Consent.withdrawn_at.is_(None))
        .values(withdrawn_at=now)
    )
    # The place is free from now: `concorder replace` fills what the panel lacks.
    await session.execute(
        update(Selection)
        .where(Selection.participant_id == participant.id, Selection.status != DECLINED)
        .values(status=DECLINED, reason="withdrawn", responded_at=now)
    )
    if left and seat is None:
        return None
    by = "stop" if event.kind == events.OPTED_OUT else str(event.data.get("by") or "participant")
    return Withdrawal(participant.id, stage, seat, by)


async def _answer_selection(session, participant, now: datetime, status: str) -> None:
    selection = (
        await session.execute(
            select(Selection).where(Selection.participant_id == participant.id).with_for_update()
        )
    ).scalar_one_or_none()
    if selection is not None:
        selection.status, selection.responded_at = status, now
        selection.reason = "declined" if status == DECLINED else None


async def _confirmed(session, participant, event: Event, now: datetime) -> None:
    await _answer_selection(session, participant, now, CONFIRMED)


async def _selection_declined(session, participant, event: Event, now: datetime) -> None:
    await _answer_selection(session, participant, now, DECLINED)


def register(hooks: Hooks, on_withdrawal: WithdrawalListener | None = None) -> None:
    """What each recruitment event means for the store; `on_withdrawal` hears of each
    withdrawal that changed something (the organisers are told)."""

    async def _withdrew(session, participant, event: Event, now: datetime) -> None:
        change = await record_withdrawal(session, participant, event, now)
        if change is not None and on_withdrawal is not None:
            await on_withdrawal(session, change, now)

    hooks.on_event(events.INVITATION_ACCEPTED, _accepted)
    hooks.on_event(events.INVITATION_DECLINED, _declined)
    hooks.on_event(events.CONSENT_REFUSED, _consent_refused)
    hooks.on_event(events.CONSENT_GIVEN, _consent_given)
    hooks.on_event(events.REGISTRATION_COMPLETED, _registered)
    hooks.on_event(events.WITHDREW, _withdrew)
    hooks.on_event(events.OPTED_OUT, _withdrew)
    hooks.on_event(events.SELECTION_CONFIRMED, _confirmed)
    hooks.on_event(events.SELECTION_DECLINED, _selection_declined)
