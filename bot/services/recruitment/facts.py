"""What the recruitment flows know about a person: the assembly, their invitation, answers and
place."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import bindparam, select
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
    return _facts(assembly, timezone, participant, invitation, entry, selection)


async def recruitment_facts_for_group(
    assembly: Assembly,
    timezone: Callable[[], str],
    session: AsyncSession,
    participants: Sequence[Participant],
) -> Callable[[Participant], dict[str, Any]]:
    """`recruitment_facts` for many people: their invitations, answers and places in one
    query (each person has at most one of each)."""
    query = (
        select(Participant.id, Invitation, PoolEntry.attributes, Selection)
        .outerjoin(Invitation, Invitation.participant_id == Participant.id)
        .outerjoin(PoolEntry, PoolEntry.participant_id == Participant.id)
        .outerjoin(Selection, Selection.participant_id == Participant.id)
        .where(Participant.id.in_(bindparam("ids", expanding=True)))
    )
    ids = sorted({p.id for p in participants})
    rows = {row[0]: row[1:] for row in await session.execute(query, {"ids": ids})} if ids else {}

    def facts_of(participant: Participant) -> dict[str, Any]:
        invitation, entry, selection = rows.get(participant.id, (None, None, None))
        return _facts(assembly, timezone, participant, invitation, entry, selection)

    return facts_of


def _facts(
    assembly: Assembly,
    timezone: Callable[[], str],
    participant: Participant,
    invitation: Invitation | None,
    entry: dict[str, Any] | None,
    selection: Selection | None,
) -> dict[str, Any]:
    facts = assembly.facts()
    question_ids = {q["id"] for q in facts["questions"]}
    facts["known"] = {k: v for k, v in (entry or {}).items() if k in question_ids}
    facts["invitation_status"] = invitation.status if invitation else None
    if selection is not None:
        facts["selection"] = SelectionFacts(selection.status, selection.confirm_by)
    facts["outcome"] = _outcome(invitation, selection)
    facts["timezone"] = participant.timezone or timezone()
    result: dict[str, Any] = {
        "assembly_name": facts["name"],
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
