"""Telegram invitation links: a /start code binds the chat to the invited person."""

from __future__ import annotations

import logging
import re
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.addresses import is_simulated
from bot.services import people
from bot.services.recruitment.common import RECRUITMENT_FLOWS
from flows.model import State
from store import audit
from store.models import (
    Contact,
    InboundMessage,
)
from store.recruitment import (
    FAILED,
    LAPSED,
    WITHDRAWN,
    Invitation,
    PoolEntry,
    hash_code,
)

log = logging.getLogger(__name__)


STORED_START = "/start [code not kept]"
_START = re.compile(r"^/start(?:@\w+)?\s+([A-Za-z0-9_-]{1,64})\s*$")


async def forget_code(session: AsyncSession, record_id: int) -> None:
    """A Telegram '/start <code>' no longer to be handled (its turn failed for good) keeps
    the command, not the code: an unused code must not wait in the database. The person's
    link still works; opening it again binds the chat."""
    await session.execute(
        update(InboundMessage)
        .where(
            InboundMessage.id == record_id,
            InboundMessage.channel == "telegram",
            InboundMessage.text.startswith("/start"),
            InboundMessage.text != STORED_START,
        )
        .values(text=STORED_START)
    )


def _binds(channel: str, address: str, text: str) -> bool:
    # A simulated chat never takes over an invited person, whatever code it types.
    return channel == "telegram" and not is_simulated(address) and bool(_START.match(text.strip()))


async def invitation_links_in(session: AsyncSession, messages, known) -> set[int]:
    """For a batch of inbound messages: those that carry an invitation link (no query)."""
    return {n for n, message in enumerate(messages) if _binds(*message)}


async def bind_invitation_link(
    session: AsyncSession,
    *,
    record_id: int,
    channel: str,
    address: str,
    text: str,
    language: str,
    now: datetime,
) -> None:
    """'/start <code>' from a Telegram chat binds that chat to the invited person, once."""
    # A simulated chat never takes over an invited person, whatever code it types.
    real_chat = channel == "telegram" and not is_simulated(address)
    match = _START.match(text.strip()) if real_chat else None
    if match is None:
        return
    # The stored inbound message keeps the command, not the code: a code refused here (this
    # chat speaks for someone else) stays unbound, and usable by whoever reads it.
    await session.execute(
        update(InboundMessage).where(InboundMessage.id == record_id).values(text=STORED_START)
    )
    invitation = (
        await session.execute(
            select(Invitation)
            .where(Invitation.code_hash == hash_code(match.group(1)))
            .with_for_update()
        )
    ).scalar_one_or_none()
    contact = (
        await session.execute(
            select(Contact).where(Contact.channel == "telegram", Contact.address == address)
        )
    ).scalar_one_or_none()
    # The chat's contact is written before the audit chain's head is locked, as every
    # inbound message does: two writers taking them in opposite orders would deadlock.
    if invitation is None or invitation.status in (LAPSED, WITHDRAWN, FAILED):
        await _mark_refused(session, contact, address, language, "invalid")
        await audit.append(
            session, "invitation.code_invalid", {"known": invitation is not None}, at=now
        )
        return
    if invitation.bound_contact_id is not None:
        if contact is not None and contact.id == invitation.bound_contact_id:
            return  # the same account opening its link again
        await _mark_refused(session, contact, address, language, "used")
        await audit.append(
            session,
            "invitation.code_refused",
            {"reason": "used by another account"},
            participant_id=invitation.participant_id,
            at=now,
        )
        return
    if contact is None:
        try:
            async with session.begin_nested():
                contact = Contact(
                    participant_id=invitation.participant_id, channel="telegram", address=address
                )
                session.add(contact)
                await session.flush()
        except IntegrityError:
            # The chat's other message, sent at the same moment, created it first.
            contact = await people.contact_at(session, "telegram", address)
            if contact is None:
                raise
    if contact.participant_id != invitation.participant_id:
        if await _is_recruited(session, contact.participant_id):
            # One account, one person: it already speaks for someone of the pool.
            await audit.append(
                session,
                "invitation.code_refused",
                {"reason": "account linked to another person"},
                participant_id=invitation.participant_id,
                at=now,
            )
            await _mark_refused(session, contact, address, language, "other")
            return
        # This chat wrote before opening its link: it belongs to the invited person now.
        await audit.append(
            session,
            "contact.moved",
            {"from": contact.participant_id},
            participant_id=invitation.participant_id,
            at=now,
        )
        contact.participant_id = invitation.participant_id
    invitation.bound_contact_id, invitation.bound_at = contact.id, now
    # Opening the link is an answer (no reminder, no lapse); the invitation question
    # itself is asked next, in the chat.
    invitation.responded_at = invitation.responded_at or now
    await audit.append(
        session,
        "invitation.link_opened",
        {"channel": invitation.channel},
        participant_id=invitation.participant_id,
        at=now,
    )


async def _is_recruited(session: AsyncSession, participant_id: str) -> bool:
    found = await session.scalar(
        select(PoolEntry.id).where(PoolEntry.participant_id == participant_id)
    )
    return found is not None


async def _mark_refused(
    session: AsyncSession, contact: Contact | None, address: str, language: str, reason: str
) -> None:
    """Let the invitation flow tell this chat why its link did not work."""
    if contact is None:
        contact = await people.find_or_create_contact(session, "telegram", address, language)
    participant = await people.lock_participant(session, contact.participant_id)
    state = State.from_json(participant.state, language=participant.language)
    if state.flow not in RECRUITMENT_FLOWS or state.step is None:
        state.flow, state.step, state.offered = "invitation", None, []
    # Else the person is in the middle of their own recruitment: the flow says why the
    # link was refused and asks its current question again.
    state.data["invitation_refused"] = reason
    participant.state = state.to_json()
