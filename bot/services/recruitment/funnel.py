"""The recruitment funnel: pool, invitations, consents, registrations, draw, per category."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from flows.assembly import Assembly
from store.models import (
    Contact,
)
from store.recruitment import (
    CONFIRMED,
    REGISTERED,
    SELECTED,
    Consent,
    Invitation,
    PoolEntry,
    RegistrationAnswer,
    Selection,
)

log = logging.getLogger(__name__)


@dataclass
class Funnel:
    pool: int
    pool_by_reach: Counter
    invitations: Counter  # status -> count
    invitations_by_channel: Counter
    consents: int
    selections: Counter
    not_invited: int

    @property
    def invited(self) -> int:
        return sum(self.invitations.values())


async def funnel(session: AsyncSession) -> Funnel:
    pool = (await session.execute(select(func.count(PoolEntry.id)))).scalar_one()
    with_phone = (
        await session.execute(
            select(func.count(func.distinct(Contact.participant_id)))
            .join(PoolEntry, PoolEntry.participant_id == Contact.participant_id)
            .where(Contact.channel == "sms")
        )
    ).scalar_one()
    with_handle = (
        await session.execute(
            select(func.count(PoolEntry.id)).where(PoolEntry.telegram_handle.is_not(None))
        )
    ).scalar_one()
    statuses = Counter(
        {
            s: n
            for s, n in await session.execute(
                select(Invitation.status, func.count()).group_by(Invitation.status)
            )
        }
    )
    channels = Counter(
        {
            c: n
            for c, n in await session.execute(
                select(Invitation.channel, func.count()).group_by(Invitation.channel)
            )
        }
    )
    consents = (
        await session.execute(select(func.count(Consent.id)).where(Consent.withdrawn_at.is_(None)))
    ).scalar_one()
    selections = Counter(
        {
            s: n
            for s, n in await session.execute(
                select(Selection.status, func.count()).group_by(Selection.status)
            )
        }
    )
    not_invited = (
        await session.execute(
            select(func.count(PoolEntry.id))
            .outerjoin(Invitation, Invitation.participant_id == PoolEntry.participant_id)
            .where(Invitation.id.is_(None))
        )
    ).scalar_one()
    return Funnel(
        pool,
        Counter({"phone": with_phone, "telegram handle": with_handle}),
        statuses,
        channels,
        consents,
        selections,
        not_invited,
    )


NO_VALUE = "(no answer)"


@dataclass
class CategoryFunnel:
    """One category of the draw: how many people are registered, selected (holding a
    place: not answered yet, or confirmed) and confirmed, per value."""

    category: str
    values: list[str]  # the assembly's order, then any other value met, NO_VALUE last
    registered: Counter
    selected: Counter
    confirmed: Counter


def funnel_categories(assembly: Assembly) -> dict[str, list[str]]:
    """The categories the status shows, with their values in the assembly's order: the
    quota categories of [selection], else every registration question."""
    if assembly.selection is not None and assembly.selection.quotas:
        return {category: list(values) for category, values in assembly.selection.quotas.items()}
    return {q.id: [o.key for o in q.options] for q in assembly.questions}


async def funnel_by_category(session: AsyncSession, assembly: Assembly) -> list[CategoryFunnel]:
    """The funnel per category value. A person's value is their registration answer, else
    what the pool file said; people withdrawn or erased count nowhere."""
    categories = funnel_categories(assembly)
    people = {
        pid: dict(attributes or {})
        for pid, attributes in await session.execute(
            select(PoolEntry.participant_id, PoolEntry.attributes)
            .join(Invitation, Invitation.participant_id == PoolEntry.participant_id)
            .where(Invitation.status == REGISTERED)
        )
    }
    for pid, question, answer in await session.execute(
        select(
            RegistrationAnswer.participant_id,
            RegistrationAnswer.question_id,
            RegistrationAnswer.answer,
        )
        .join(Invitation, Invitation.participant_id == RegistrationAnswer.participant_id)
        .where(Invitation.status == REGISTERED)
    ):
        people.setdefault(pid, {})[question] = answer
    drawn = dict(
        (
            await session.execute(
                select(Selection.participant_id, Selection.status).where(
                    Selection.status.in_((SELECTED, CONFIRMED))
                )
            )
        ).all()
    )
    result = []
    for category, values in categories.items():
        counts = CategoryFunnel(category, list(values), Counter(), Counter(), Counter())
        for pid, features in people.items():
            value = str(features.get(category) or NO_VALUE)
            counts.registered[value] += 1
            if pid in drawn:
                counts.selected[value] += 1
                if drawn[pid] == CONFIRMED:
                    counts.confirmed[value] += 1
        others = sorted(v for v in counts.registered if v not in values and v != NO_VALUE)
        counts.values += others + ([NO_VALUE] if NO_VALUE in counts.registered else [])
        result.append(counts)
    return result
