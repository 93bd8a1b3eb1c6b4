"""The people of the demo: the example's pool, registered for the draw as simulated people,
the example's respondents registered on paper, by phone and on the web, and the visitor.

The simulated people come in through the organisers' own imports (the pool file, then a
respondents import of their answers), so the draw reads them as it reads anyone.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.relay import Relay
from bot.services import recruitment, respondents
from bot.services.demo import example
from bot.services.respondents import OutsideRow
from store import audit
from store.models import AuditEvent, Contact, utcnow
from store.recruitment import Invitation, PoolEntry

SEEDED = "demo.seeded"  # the audit event that marks a database as the demo's own
VISITOR_ID = "DEMO-VISITOR"  # the visitor's reference in the pool, as an organiser's id
VISITOR_PHONE = "+447700900700"  # Ofcom's drama range: nobody's number
VISITOR_CHAT = "700000001"
VISITOR_REGION = "centre"
ANSWERS_SEED = "riverside demo"  # the simulated people's answers are the same every run


@dataclass(frozen=True)
class Visitor:
    participant_id: str
    channel: str
    address: str
    language: str


async def seeded(session: AsyncSession) -> bool:
    return (
        await session.scalar(select(AuditEvent.id).where(AuditEvent.kind == SEEDED).limit(1))
    ) is not None


async def seed(relay: Relay) -> None:
    """The pool, the simulated registrations and the outside respondents, once."""
    assembly = relay.assembly
    async with relay.sessions() as session:
        if await seeded(session):
            return
    pool = recruitment.parse_pool(example.POOL, assembly, relay.settings.default_region)
    await recruitment.import_pool(relay.sessions, assembly, pool.rows, key=relay.invite_key)
    # Those on the pool with a phone answered; those reached only by letter did not.
    answered = [row for row in pool.rows if row.phone and row.external_id]
    await respondents.import_respondents(relay.sessions, assembly, _answers(assembly, answered))
    known = {q.id: {o.key for o in q.options} for q in assembly.questions}
    known["region"] = {"north", "south", "centre"}
    outside = respondents.parse_respondents(
        example.OUTSIDE, known, assembly.languages, relay.settings.default_region
    )
    await respondents.import_respondents(relay.sessions, assembly, outside.rows)
    # The rest get their invitation by letter (not written anywhere: nobody answers it).
    await _invite(relay)
    async with relay.sessions.begin() as session:
        await audit.append(session, SEEDED, {"people": len(answered) + len(outside.rows)})


def _answers(assembly, rows) -> list[OutsideRow]:
    """Plausible registration answers, drawn from a fixed seed; what the pool already
    knows (region, sometimes age) is kept."""
    rng = random.Random(ANSWERS_SEED)
    out = []
    for n, row in enumerate(rows, start=1):
        answers = dict(row.attributes)
        for question in assembly.questions:
            if question.id not in answers:
                # Mostly women and men, now and then another answer, as in life.
                keys = [o.key for o in question.options]
                weights = [10 if k in ("woman", "man") else 1 for k in keys]
                answers[question.id] = rng.choices(keys, weights)[0]
        out.append(
            OutsideRow(
                line=n,
                external_id=row.external_id,
                source="web",
                consent_ref=f"simulated {row.external_id}",
                answers=answers,
                language=row.language,
            )
        )
    return out


async def visitor(relay: Relay) -> Visitor | None:
    async with relay.sessions() as session:
        pid = await session.scalar(
            select(PoolEntry.participant_id).where(PoolEntry.external_id == VISITOR_ID)
        )
        if pid is None:
            return None
        contact = (
            await session.execute(select(Contact).where(Contact.participant_id == pid))
        ).scalar_one()
        entry_language = await session.scalar(
            select(PoolEntry.language).where(PoolEntry.participant_id == pid)
        )
        return Visitor(pid, contact.channel, contact.address, entry_language)


async def invite_visitor(relay: Relay, channel: str, language: str) -> Visitor:
    """Put the visitor on the pool and invite them, as `pool import` and `invite` do.
    By SMS they are a phone number of the pool; on Telegram a chat that already spoke to
    the bot (a real one would first open the link of a letter). Joining twice changes
    nothing."""
    found = await visitor(relay)
    if found is not None:
        return found
    assembly = relay.assembly
    row = recruitment.PoolRow(
        lines=[0],
        phone=VISITOR_PHONE if channel == "sms" else None,
        telegram=None if channel == "sms" else "demo_visitor",
        language=language,
        household="DEMO-VISITOR",
        external_id=VISITOR_ID,
        attributes={"region": VISITOR_REGION},
    )
    await recruitment.import_pool(relay.sessions, assembly, [row], key=relay.invite_key)
    if channel == "telegram":
        async with relay.sessions.begin() as session:
            pid = await session.scalar(
                select(PoolEntry.participant_id).where(PoolEntry.external_id == VISITOR_ID)
            )
            session.add(
                Contact(
                    participant_id=pid,
                    channel="telegram",
                    address=VISITOR_CHAT,
                    created_at=utcnow(),
                    next_seq=1,
                )
            )
    await _invite(relay)
    found = await visitor(relay)
    assert found is not None
    return found


async def _invite(relay: Relay) -> None:
    """Everyone on the pool not invited yet, as `concorder invite` does."""
    bot = recruitment.PLACEHOLDER_BOT
    await recruitment.send_invitations(
        relay.sessions, relay.settings, relay.assembly, bot, engine=relay.engine
    )
    relay.outbox_signal.set()


async def invitation_status(session: AsyncSession, participant_id: str) -> str | None:
    return await session.scalar(
        select(Invitation.status).where(Invitation.participant_id == participant_id)
    )
