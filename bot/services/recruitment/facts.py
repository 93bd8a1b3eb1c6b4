"""What the recruitment flows know about a person: the assembly, their invitation, answers and
place."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from flows.assembly import Assembly
from flows.facts import RecruitmentFacts, SelectionFacts
from store.models import (
    Participant,
)
from store.recruitment import (
    AWAITING_REPLY,
    CONSENTED,
    LAPSED,
    REGISTERED,
    RESPONDED,
    SELECTED,
    WITHDRAWN,
    Invitation,
    PoolEntry,
    Selection,
)

log = logging.getLogger(__name__)


async def recruitment_facts(
    assembly: Assembly, timezone: Callable[[], str], session: AsyncSession, participant: Participant
) -> dict[str, Any]:
    """What the recruitment flows know: the assembly's questions, this person's
    invitation, answers and place in the draw; deadlines in the assembly's `timezone()`."""
    facts = assembly.facts()
    invitation = (
        await session.execute(select(Invitation).where(Invitation.participant_id == participant.id))
    ).scalar_one_or_none()
    entry = (
        await session.execute(
            select(PoolEntry.attributes).where(PoolEntry.participant_id == participant.id)
        )
    ).scalar_one_or_none()
    selection = (
        await session.execute(select(Selection).where(Selection.participant_id == participant.id))
    ).scalar_one_or_none()
    question_ids = {q["id"] for q in facts["questions"]}
    facts["known"] = {k: v for k, v in (entry or {}).items() if k in question_ids}
    facts["invitation_status"] = invitation.status if invitation else None
    if selection is not None:
        facts["selection"] = SelectionFacts(selection.status, selection.confirm_by)
    facts["outcome"] = _outcome(invitation, selection)
    facts["timezone"] = participant.timezone or timezone()
    result: dict[str, Any] = {
        "assembly_name": assembly.name,
        "recruitment": RecruitmentFacts(**facts),
    }
    default = _default_flow(invitation, selection)
    if default:
        result["default_flow"] = default
    return result


def _outcome(invitation: Invitation | None, selection: Selection | None) -> str | None:
    """What the draw decided for this person, once they have been told."""
    if selection is not None:
        return selection.status
    if invitation is not None and invitation.outcome_sent_at is not None:
        return "not_selected"
    return None


def _default_flow(invitation: Invitation | None, selection: Selection | None) -> str | None:
    """Where a message lands when no question is waiting for an answer."""
    if selection is not None and selection.status == SELECTED and selection.responded_at is None:
        return "confirmation"
    if invitation is not None and invitation.status == WITHDRAWN:
        return None
    if _outcome(invitation, selection) is not None:
        return "outcome"
    if invitation is None:
        return None
    if invitation.status in (*AWAITING_REPLY, LAPSED):
        return "invitation"
    if invitation.status == RESPONDED:
        return "consent"
    if invitation.status in (CONSENTED, REGISTERED):
        return "registration"
    return None
