"""Withdrawals: the organisers told of each one, and an organiser's own `concorder withdraw`.

A withdrawal (WITHDRAW, STOP, or the command) is recorded by the recruitment's event
handler (bot/services/recruitment/answers.py: record_withdrawal), which frees any place on
the panel; `concorder replace` then fills it. The organisers hear of it here, in the same
transaction. The command runs the same flow as WITHDRAW (flows/rights.py, "withdrawal"),
so the person is told in their own language and everything else follows from its event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.relay import Relay
from bot.services.notices import tell_organisers, who
from bot.services.people import preferred_contact
from bot.services.recruitment.answers import Withdrawal
from bot.services.turns import apply_turn, facts_for
from bot.settings import Settings
from flows.i18n import Translator
from flows.model import Context, State
from store.models import Participant, utcnow
from store.organisers import Organiser
from store.recruitment import (
    CONFIRMED,
    DECLINED,
    REGISTERED,
    RESERVE,
    SELECTED,
    WITHDRAWN,
    Invitation,
    PoolEntry,
    Selection,
)

# The organiser's reason, from the command to the notice (it is never audited: free text).
REASON = "withdrawal_reason"


class WithdrawError(LookupError):
    """The person cannot be found, or is not someone a withdrawal applies to."""


def _headline(t: Translator, change: Withdrawal, name: str) -> str:
    if change.by == "organiser":
        return t.gettext("{who} has been withdrawn from the assembly by an organiser.", who=name)
    if change.by == "stop":
        return t.gettext("{who} replied STOP and has left the assembly.", who=name)
    return t.gettext("{who} replied WITHDRAW and has left the assembly.", who=name)


def _where_they_were(t: Translator, change: Withdrawal) -> str:
    if change.seat in (SELECTED, CONFIRMED):
        held = (
            t.gettext("They were a confirmed member of the panel: their place is free.")
            if change.seat == CONFIRMED
            else t.gettext("They had been selected and had not yet confirmed: their place is free.")
        )
        return " ".join([held, t.gettext("Run `concorder replace --seed SEED` to fill it.")])
    if change.seat == RESERVE:
        return t.gettext("They were on the reserve list.")
    if change.stage == REGISTERED:
        return t.gettext("They were registered for the draw.")
    if change.stage is None:
        return t.gettext("They had not been invited yet.")
    return t.gettext("They had not registered.")


async def tell_of_withdrawal(
    settings: Settings, session: AsyncSession, change: Withdrawal, now: datetime
) -> None:
    """Every organiser hears who left, how, and whether a place on the panel is free."""
    name = await who(session, change.participant_id)
    reason = session.info.get(REASON)

    def compose(t: Translator) -> str:
        lines = [_headline(t, change, name), _where_they_were(t, change)]
        if reason:
            lines.append(t.gettext("Reason given: {reason}", reason=reason))
        return "\n".join(lines)

    await tell_organisers(session, settings, compose, kind="withdrawal", now=now)


# ------------------------------------------------------------------ `concorder withdraw`


@dataclass(frozen=True)
class Plan:
    """What `concorder withdraw` does (or did) for one person."""

    participant_id: str
    stage: str | None  # the invitation's status; None: in the pool, not invited
    seat: str | None  # selected, confirmed or reserve; None: no place held
    done_already: bool
    told_on: str | None  # the channel the person is told on; None: they cannot be told
    organisers: int

    @property
    def frees_a_place(self) -> bool:
        return self.seat in (SELECTED, CONFIRMED)


async def plan_withdrawal(session: AsyncSession, participant: Participant) -> Plan:
    """What withdrawing `participant` would do; WithdrawError if they are not in the
    recruitment (no pool entry, no invitation)."""
    stage = (
        await session.execute(
            select(Invitation.status).where(Invitation.participant_id == participant.id)
        )
    ).scalar_one_or_none()
    pooled = (
        await session.execute(
            select(PoolEntry.id).where(PoolEntry.participant_id == participant.id)
        )
    ).scalar_one_or_none()
    if stage is None and pooled is None:
        raise WithdrawError(
            f"{participant.id} is not in the recruitment (no pool entry, no invitation): "
            "there is nothing to withdraw them from."
        )
    seat = (
        await session.execute(
            select(Selection.status).where(
                Selection.participant_id == participant.id, Selection.status != DECLINED
            )
        )
    ).scalar_one_or_none()
    # Someone never invited has never heard from us: a withdrawal is not their first news.
    told = stage is not None and not participant.opted_out
    contact = await preferred_contact(session, participant) if told else None
    organisers = len((await session.execute(select(Organiser.id))).all())
    return Plan(
        participant.id,
        stage,
        seat,
        # As the event handler judges it: withdrawn from the invitation, or, never invited,
        # marked already; and no place left to give up.
        done_already=seat is None
        and (stage == WITHDRAWN or (stage is None and participant.erase_requested_at is not None)),
        told_on=contact.channel if contact is not None else None,
        organisers=organisers,
    )


async def withdraw_person(
    session: AsyncSession,
    relay: Relay,
    participant: Participant,
    *,
    reason: str | None = None,
    now: datetime | None = None,
) -> Plan:
    """Withdraw `participant` as if they had replied WITHDRAW, in the caller's transaction:
    they are told (if they can be), their place is freed, the organisers hear of it."""
    now = now or utcnow()
    plan = await plan_withdrawal(session, participant)
    if plan.done_already:
        return plan
    contact = await preferred_contact(session, participant) if plan.told_on else None
    state = State.from_json(participant.state, language=participant.language)
    state.opted_out = False  # the engine says nothing to someone opted out; it must run
    ctx = Context(
        now=now,
        participant_id=participant.id,
        channel=contact.channel if contact is not None else None,
        facts=await facts_for(session, relay, participant, contact),
    )
    turn = relay.engine.start(state, "withdrawal", ctx)
    if contact is None:
        turn.outbound = []  # nobody to tell: the withdrawal is recorded all the same
    session.info[REASON] = (reason or "").strip() or None
    try:
        await apply_turn(session, relay, participant, contact, turn, now)
    finally:
        session.info.pop(REASON, None)
    return plan
