"""Finding one person from what an organiser gives: a participant id, a phone number in any
usual spelling, or a Telegram chat id. `concorder withdraw`, `erase` and `person export`
all look people up here, so they agree on who a reference names."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.addresses import BadAddress, inbound_sender, normalise
from bot.services.recruitment.pool import pool_phone
from store.models import Contact, Participant

_FILINGS = (
    ("telegram", lambda ref, region: normalise("telegram", ref)),
    ("sms", inbound_sender),
    ("sms", pool_phone),
)


class PersonNotFound(LookupError):
    """Nobody, or more than one person, answers to the reference."""


async def find_participant(session: AsyncSession, ref: str, region: str = "GB") -> Participant:
    ref = (ref or "").strip()
    for pid in dict.fromkeys((ref, ref.upper())):
        found = await session.get(Participant, pid) if pid else None
        if found is not None:
            return found
    clauses = []
    # A number is looked for as an inbound SMS files it (numbers outside the numbering
    # plans included), as a pool file files it (the reserved fictional ranges included),
    # and as a Telegram chat id.
    for channel, filed in _FILINGS:
        try:
            address = filed(ref, region)
        except (BadAddress, ValueError):
            continue
        clauses.append((Contact.channel == channel) & (Contact.address == address))
    if clauses:
        ids = set(
            (await session.execute(select(Contact.participant_id).where(or_(*clauses)))).scalars()
        )
        if len(ids) > 1:
            raise PersonNotFound(
                "That number is both a phone number and a Telegram id of different people: "
                "give the participant id instead."
            )
        if ids:
            return await session.get(Participant, ids.pop())
    if ref.upper().startswith("P") and len(ref) == 13:
        raise PersonNotFound(f"No participant has the id {ref.upper()}.")
    raise PersonNotFound(
        "Nobody with that participant id, phone number or Telegram id (or they were erased)."
    )
