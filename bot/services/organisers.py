"""Who the organisers are, how a message is recognised as coming from one, and the audit
of everything they do. Organisers are known by a Telegram user id and/or an E.164 phone."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import bindparam, case, func, null, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.addresses import BadAddress, normalise
from bot.services.outgoing import enqueue
from bot.services.people import find_or_create_contact, read_with_person
from bot.services.turns import TURN_CONTACT
from bot.settings import Settings
from flows.engine import MAX_TEXT
from flows.facts import OrganiserFacts, PendingBroadcast, ScheduledSession
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
from scheduler.facts import load_moves
from scheduler.plan import timed_sessions
from store import audit
from store.calendar import AttendanceNotice
from store.models import Contact, OutboxMessage, OutboxStatus, Participant, utcnow
from store.organisers import BroadcastPreview, Organiser
from store.recruitment import CONFIRMED, SELECTED, PoolEntry, Selection


class OrganiserError(ValueError):
    """An organiser command that cannot be done; the message says why."""


@dataclass(frozen=True)
class OrganiserInfo:
    """What the rest of the service needs about an organiser (no ORM object)."""

    id: int
    name: str | None
    telegram_id: str | None
    phone: str | None

    @classmethod
    def of(cls, row: Organiser) -> OrganiserInfo:
        return cls(row.id, row.name, row.telegram_id, row.phone)

    @property
    def channels(self) -> list[str]:
        return [c for c, a in (("telegram", self.telegram_id), ("sms", self.phone)) if a]


async def record(session: AsyncSession, action: str, organiser_id: int | None, **data: Any) -> None:
    """Audit one organiser action ('organiser.added', 'broadcast.queued', ...).

    `organiser_id` None means the command line. Data holds ids and counts, never text,
    names or numbers."""
    await audit.append(session, action, {"organiser": organiser_id, **data})


def normalised_addresses(
    telegram_id: str | None, phone: str | None, default_region: str
) -> tuple[str | None, str | None]:
    if not telegram_id and not phone:
        raise OrganiserError("give --telegram-id or --phone (or both)")
    try:
        tg = normalise("telegram", telegram_id) if telegram_id else None
        if tg is not None and int(tg) <= 0:
            raise BadAddress("a Telegram user id is a positive number")
        number = normalise("sms", phone, default_region) if phone else None
    except BadAddress as exc:
        raise OrganiserError(str(exc)) from None
    return tg, number


async def add_organiser(
    session: AsyncSession,
    *,
    telegram_id: str | None = None,
    phone: str | None = None,
    name: str | None = None,
    default_region: str = "GB",
    now: datetime | None = None,
) -> OrganiserInfo:
    tg, number = normalised_addresses(telegram_id, phone, default_region)
    clash = (
        (
            await session.execute(
                select(Organiser).where(
                    or_(
                        Organiser.telegram_id == tg if tg else False,
                        Organiser.phone == number if number else False,
                    )
                )
            )
        )
        .scalars()
        .first()
    )
    if clash is not None:
        raise OrganiserError(
            f"organiser {clash.id} already has this "
            f"{'Telegram id' if tg and clash.telegram_id == tg else 'phone'}"
        )
    name = (name or "").strip()[:120] or None
    row = Organiser(name=name, telegram_id=tg, phone=number, created_at=now or utcnow())
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        raise OrganiserError("another organiser was just added with this address") from None
    info = OrganiserInfo.of(row)
    await record(session, "organiser.added", None, added=row.id, channels=info.channels)
    return info


async def find_organiser(
    session: AsyncSession, ref: str, default_region: str = "GB"
) -> Organiser | None:
    """An organiser by id ('3'), Telegram id or phone number."""
    ref = (ref or "").strip()
    if ref.isdigit():
        found = await session.get(Organiser, int(ref))
        if found is not None:
            return found
    clauses = []
    if ref.lstrip("-").isdigit():
        clauses.append(Organiser.telegram_id == str(int(ref)))
    try:
        clauses.append(Organiser.phone == normalise("sms", ref, default_region))
    except BadAddress:
        pass
    if not clauses:
        return None
    return (await session.execute(select(Organiser).where(or_(*clauses)))).scalars().first()


async def remove_organiser(
    session: AsyncSession, ref: str, default_region: str = "GB"
) -> OrganiserInfo:
    row = await find_organiser(session, ref, default_region)
    if row is None:
        raise OrganiserError("no organiser with that id, Telegram id or phone number")
    info = OrganiserInfo.of(row)
    await session.delete(row)
    await session.flush()
    await record(session, "organiser.removed", None, removed=info.id)
    return info


async def list_organisers(session: AsyncSession) -> list[OrganiserInfo]:
    rows = (await session.execute(select(Organiser).order_by(Organiser.id))).scalars().all()
    return [OrganiserInfo.of(r) for r in rows]


async def organiser_of(session: AsyncSession, contact: Contact | None) -> OrganiserInfo | None:
    """The organiser whose Telegram id or phone is this very contact, if any.

    Rights follow the address a message came in on, never the participant it belongs to:
    an invitation link can move an organiser's chat to someone else, and a pool import can
    give that person a phone of their own."""
    if contact is None:
        return None
    if contact.channel == "telegram":
        found = Organiser.telegram_id == contact.address
    elif contact.channel == "sms":
        found = Organiser.phone == contact.address
    else:
        return None
    row = (await session.execute(select(Organiser).where(found))).scalars().first()
    return OrganiserInfo.of(row) if row else None


async def organiser_contacts(
    session: AsyncSession, default_language: str
) -> list[tuple[OrganiserInfo, Participant, Contact]]:
    """How to write to each organiser: Telegram when they have it, else SMS.

    An organiser who never wrote to the bot gets a contact (and a pseudonymous participant)
    now, so messages to them go through the outbox like any other."""
    found = []
    for info in await list_organisers(session):
        channel, address = (
            ("telegram", info.telegram_id) if info.telegram_id else ("sms", info.phone)
        )
        contact = await find_or_create_contact(session, channel, address, default_language)
        participant = await session.get(Participant, contact.participant_id)
        if participant is None or participant.opted_out or contact.opted_out_at:
            continue
        if channel == "sms":
            contact.sms_consent = True  # an organiser registered this number to be told
        found.append((info, participant, contact))
    return found


# --- chat: what the organiser commands know, and what their events do ------------------------

PREVIEW_LIFETIME = timedelta(minutes=PREVIEW_MINUTES)


async def _sessions(
    session: AsyncSession, cal: Calendar | None
) -> tuple[list[ScheduledSession], str]:
    """The sessions of the running calendar (moves applied, in time order), and its zone.
    The flow picks the coming ones by its own clock."""
    if cal is None:
        return [], "UTC"
    found = []
    for number, timed in enumerate(timed_sessions(cal, await load_moves(session)), start=1):
        item = timed.session
        found.append(
            ScheduledSession(
                number=number,
                id=item.id,
                title=dict(item.title),
                start=timed.start,
                end=timed.end or timed.start,
                place=dict(item.place) if item.place else None,
                call_in=item.call_in,
            )
        )
    found.sort(key=lambda s: s.start)
    return found, cal.schedule.timezone


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
            facts["sessions"], facts["timezone"] = await _sessions(session, calendar)
        return facts
    members = await broadcast.load_members(session)
    counts = broadcast.audience_counts(members, now, broadcast.timing_of(calendar))
    preview = await session.get(BroadcastPreview, info.id)
    sessions, zone = await _sessions(session, calendar)
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
    if any(event.kind == "attendance.reported" for event in turn.events):
        for event in turn.events:
            if event.kind == "attendance.reported":
                session.add(
                    AttendanceNotice(
                        participant_id=participant.id,
                        session_id=event.data.get("session"),
                        kind=_report_kind(event.data),
                        at=now,
                    )
                )
        await session.flush()
        queued += await forward_attendance(
            session, settings, now, calendar=calendar, words={participant.id: text}
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


def _report_kind(data: dict[str, Any]) -> str:
    """'late' or 'absent'. Emitters name it `report` (`kind` would clash with emit's own
    first argument); `kind` is read too, for events built without emit."""
    return "late" if (data.get("report") or data.get("kind")) == "late" else "absent"


async def _count_rows(session: AsyncSession, broadcast_id: int) -> int:
    return (
        await session.execute(
            select(func.count()).where(OutboxMessage.broadcast_id == broadcast_id)
        )
    ).scalar_one()


async def forward_attendance(
    session: AsyncSession,
    settings: Settings,
    now: datetime,
    *,
    calendar: Calendar | None = None,
    words: dict[str, str] | None = None,
) -> int:
    """Tell every organiser about LATE / CAN'T COME notices not yet forwarded.

    Notices are locked (skipped if another instance holds them), so each goes out once; they
    stay unforwarded while there is no organiser to tell."""
    notices = (
        (
            await session.execute(
                select(AttendanceNotice)
                .where(AttendanceNotice.forwarded_at.is_(None))
                .order_by(AttendanceNotice.id)
                .with_for_update(skip_locked=True)
            )
        )
        .scalars()
        .all()
    )
    if not notices:
        return 0
    recipients = await organiser_contacts(session, settings.default_language)
    if not recipients:
        return 0
    numbers = {s.id: s.number for s in (await _sessions(session, calendar))[0]}
    refs = dict(
        (
            await session.execute(
                select(PoolEntry.participant_id, PoolEntry.external_id).where(
                    PoolEntry.participant_id.in_([n.participant_id for n in notices])
                )
            )
        ).all()
    )
    queued = 0
    for notice in notices:
        who = notice.participant_id + (
            f" ({refs[notice.participant_id]})" if refs.get(notice.participant_id) else ""
        )
        said = (words or {}).get(notice.participant_id)
        for _info, organiser, organiser_contact in recipients:
            t = translator(organiser.language)
            number = numbers.get(notice.session_id or "")
            if notice.kind == "late":
                line = (
                    t.gettext("{who} will be late for session {number}.", who=who, number=number)
                    if number
                    else t.gettext("{who} will be late.", who=who)
                )
            else:
                line = (
                    t.gettext("{who} cannot come to session {number}.", who=who, number=number)
                    if number
                    else t.gettext("{who} cannot come.", who=who)
                )
            if said:
                line += "\n" + t.gettext("Their message: {text}", text=said)
            queued += await enqueue(
                session,
                settings,
                organiser,
                organiser_contact,
                [Outbound(text=line, kind="attendance")],
                prompt_id=None,
                now=now,
            )
        notice.forwarded_at = now
        await record(
            session,
            "attendance.forwarded",
            None,
            notice=notice.id,
            kind=notice.kind,
            organisers=len(recipients),
        )
    return queued


def register(relay) -> None:
    """Join the conversations: organisers' facts, then what their turns mean
    (`relay`: bot.relay.Relay)."""

    def calendar_of() -> Calendar | None:
        return relay.calendar

    relay.hooks.read_with_person("organiser_seat", _PERSON_SEAT)
    relay.hooks.read_with_person("organiser_id", _PERSON_ORGANISER)
    relay.hooks.provide_facts(partial(organiser_facts, calendar_of))
    relay.hooks.after_turn(partial(organiser_events, calendar_of))
