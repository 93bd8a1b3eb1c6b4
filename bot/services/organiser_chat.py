"""Organisers in the conversations: what their commands know (audiences, a pending
broadcast, the sessions) and what their events do (previews kept, broadcasts sent, wrong
SMS codes counted); attendance notices are passed on in `attendance`."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import bindparam, case, func, null, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.attendance import report_attendance, scheduled_sessions
from bot.services.organiser_signin import send_link
from bot.services.organisers import organiser_contacts, organiser_of
from bot.services.outgoing import enqueue
from bot.services.people import read_with_person
from bot.services.turns import TURN_CONTACT
from bot.settings import Settings
from flows.engine import MAX_TEXT
from flows.events import SIGNIN_LINK_ASKED
from flows.facts import OrganiserFacts, PendingBroadcast
from flows.i18n import translator
from flows.model import Event, Outbound, Turn
from flows.organiser import (
    CODE_DIGITS,
    LOCK_MINUTES,
    MAX_CODE_FAILURES,
    PREVIEW_MINUTES,
    code_digest,
    is_urgent,
    parse_broadcast,
    split_command,
)
from scheduler.config import Calendar, CalendarSource
from store.models import Contact, OutboxMessage, OutboxStatus, Participant, utcnow
from store.organisers import BroadcastPreview, Organiser
from store.recruitment import CONFIRMED, SELECTED, Selection

PREVIEW_LIFETIME = timedelta(minutes=PREVIEW_MINUTES)


# The hash of the code offered in this turn, from the facts to the turn hook.
NEW_CODE_HASH = "organiser_new_code_hash"


_SEAT = (
    select(Selection.status)
    .where(Selection.participant_id == bindparam("participant_id"))
    .scalar_subquery()
)


def _organiser_at(column: Any) -> Any:
    return select(Organiser.id).where(column == bindparam("address")).limit(1).scalar_subquery()


# A participant's seat in the draw, and the organiser whose address a turn came in on.
_SEAT_AND_ORGANISER = {
    "telegram": select(_SEAT, _organiser_at(Organiser.telegram_id)),
    "sms": select(_SEAT, _organiser_at(Organiser.phone)),
}
_SEAT_ONLY = select(_SEAT, null())
# The same two, read with the person an inbound message comes from (`Hooks.person_columns`).
_PERSON_SEAT = (
    select(Selection.status).where(Selection.participant_id == Participant.id).scalar_subquery()
)
_PERSON_ORGANISER = case(
    (
        Contact.channel == "telegram",
        select(Organiser.id)
        .where(Organiser.telegram_id == Contact.address)
        .limit(1)
        .scalar_subquery(),
    ),
    (
        Contact.channel == "sms",
        select(Organiser.id).where(Organiser.phone == Contact.address).limit(1).scalar_subquery(),
    ),
    else_=null(),
)


async def _seat_and_organiser(
    session: AsyncSession, participant: Participant, contact: Contact | None
) -> tuple[str | None, int | None]:
    read = read_with_person(session, participant.id, contact and contact.id)
    if "organiser_seat" in read:
        return read["organiser_seat"], read["organiser_id"]
    channel = contact.channel if contact is not None else None
    return tuple(
        (
            await session.execute(
                _SEAT_AND_ORGANISER.get(channel, _SEAT_ONLY),
                {"participant_id": participant.id, "address": contact and contact.address},
            )
        ).one()
    )


async def organiser_facts(
    calendar_of: CalendarSource, session: AsyncSession, participant: Participant
) -> dict[str, Any]:
    from bot.services import broadcast

    now = utcnow()
    calendar = calendar_of()
    contact = session.info.get(TURN_CONTACT)
    # Most turns are not an organiser's: one read (or none) answers both questions for them.
    seat, organiser_id = await _seat_and_organiser(session, participant, contact)
    info = await organiser_of(session, contact) if organiser_id is not None else None
    if info is None:
        facts: dict[str, Any] = {"organiser": None, "panel": seat in (SELECTED, CONFIRMED)}
        if facts["panel"]:
            facts["sessions"], facts["timezone"] = await scheduled_sessions(session, calendar)
        return facts
    members = await broadcast.load_members(session)
    counts = broadcast.audience_counts(members, now, broadcast.timing_of(calendar))
    preview = await session.get(BroadcastPreview, info.id)
    sessions, zone = await scheduled_sessions(session, calendar)
    guard = await session.get(Organiser, info.id)
    facts = {
        "organiser": OrganiserFacts(
            id=info.id,
            sms_failures=guard.sms_failures,
            sms_locked_until=guard.sms_locked_until.isoformat() if guard.sms_locked_until else None,
        ),
        "audiences": {key: count.facts() for key, count in counts.items()},
        "pending_broadcast": None
        if preview is None
        else PendingBroadcast(
            audience=preview.audience,
            recipients=preview.recipients,
            expires_at=preview.expires_at.isoformat(),
            origin=preview.origin,
            code_hash=preview.code_hash,
        ),
        "sessions": sessions,
        "timezone": zone,
    }
    if contact.channel == "sms":
        # The code a preview made in this turn carries; only its hash is kept, for the
        # turn hook to store with the preview (flows get no randomness of their own).
        code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
        facts["confirmation_code"] = code
        session.info[NEW_CODE_HASH] = code_digest(secrets.token_hex(8), code)
    return facts


async def organiser_events(
    calendar_of: CalendarSource,
    session: AsyncSession,
    settings: Settings,
    *,
    participant: Participant,
    contact: Contact,
    text: str,
    turn: Turn,
    now: datetime,
) -> int:
    """Store previews, send confirmed broadcasts, drop discarded ones, forward notices."""
    from bot.services import broadcast

    calendar = calendar_of()
    queued = 0
    for event in turn.events:
        organiser_id = event.data.get("organiser")
        if event.kind == "broadcast.previewed":
            # The text as the flow saw it (the engine cuts long messages before flows).
            audience, body = parse_broadcast(split_command(text[:MAX_TEXT])[1])
            preview = await session.get(BroadcastPreview, organiser_id)
            if preview is None:
                preview = BroadcastPreview(organiser_id=organiser_id)
                session.add(preview)
            preview.text, preview.audience = body, audience
            preview.recipients = int(event.data.get("recipients", 0))
            preview.origin, preview.created_at = contact.channel, now
            preview.expires_at = now + PREVIEW_LIFETIME
            # The preview message asks for SEND within its lifetime: it lapses with it.
            await session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.contact_id == contact.id,
                    OutboxMessage.created_at == now,
                    OutboxMessage.status == OutboxStatus.QUEUED,
                )
                .values(expires_at=preview.expires_at)
            )
            preview.code_hash = (
                session.info.pop(NEW_CODE_HASH, None) if contact.channel == "sms" else None
            )
        elif event.kind == SIGNIN_LINK_ASKED:
            queued += await send_link(session, settings, organiser_id, now, asked_by=organiser_id)
        elif event.kind in ("organiser.code_rejected", "organiser.sms_locked"):
            queued += await _count_wrong_code(session, settings, event, now)
        elif event.kind in ("broadcast.confirmed", "broadcast.discarded"):
            preview = await session.get(BroadcastPreview, organiser_id, with_for_update=True)
            if preview is None:
                continue
            if event.kind == "broadcast.confirmed":
                if contact.channel == "sms":
                    (await session.get(Organiser, organiser_id)).sms_failures = 0
                row = await broadcast.create(
                    session,
                    settings,
                    broadcast.text_content(preview.text),
                    broadcast.parse_audience(preview.audience),
                    organiser_id=organiser_id,
                    origin=preview.origin,
                    urgent=is_urgent(preview.text),
                    now=now,
                    timing=broadcast.timing_of(calendar),
                )
                queued += await _count_rows(session, row.id)
            await session.delete(preview)
            await session.flush()
    queued += await report_attendance(
        session, settings, participant, text=text, turn=turn, now=now, calendar=calendar
    )
    return queued


async def _count_wrong_code(
    session: AsyncSession, settings: Settings, event: Event, now: datetime
) -> int:
    """Keep the count of wrong SMS codes; at a lock, tell the other organisers."""
    guard = await session.get(Organiser, event.data.get("organiser"), with_for_update=True)
    if guard is None:
        return 0
    if event.kind == "organiser.code_rejected":
        guard.sms_failures = int(event.data.get("failures", guard.sms_failures + 1))
        return 0
    guard.sms_failures = 0
    guard.sms_locked_until = datetime.fromisoformat(event.data["until"])
    await session.flush()
    queued = 0
    for info, organiser, organiser_contact in await organiser_contacts(
        session, settings.default_language
    ):
        if info.id == guard.id:
            continue
        t = translator(organiser.language)
        who = guard.name or t.gettext("organiser {id}", id=guard.id)
        text = t.gettext(
            "Organiser commands by SMS from {who} are locked for {minutes} minutes: {n} wrong "
            "confirmation codes were sent from their number. If it was not them, someone "
            "may be forging it.",
            who=who,
            minutes=LOCK_MINUTES,
            n=MAX_CODE_FAILURES,
        )
        queued += await enqueue(
            session,
            settings,
            organiser,
            organiser_contact,
            [Outbound(text=text, kind="security")],
            prompt_id=None,
            now=now,
        )
    return queued


async def _count_rows(session: AsyncSession, broadcast_id: int) -> int:
    return (
        await session.execute(
            select(func.count()).where(OutboxMessage.broadcast_id == broadcast_id)
        )
    ).scalar_one()


def register(relay) -> None:
    """Join the conversations: organisers' facts, then what their turns mean
    (`relay`: bot.relay.Relay)."""

    def calendar_of() -> Calendar | None:
        return relay.calendar

    relay.hooks.read_with_person("organiser_seat", _PERSON_SEAT)
    relay.hooks.read_with_person("organiser_id", _PERSON_ORGANISER)
    relay.hooks.provide_facts(partial(organiser_facts, calendar_of))
    relay.hooks.after_turn(partial(organiser_events, calendar_of))
