"""Organiser broadcasts: who gets them, how each person's copy reads, what it will cost,
and putting them all in the outbox at once.

An audience is `all` (everyone drawn: selected, confirmed and reserve), `selected` (the
panel: selected or confirmed), `reserve`, `group:NAME` (pool attribute "group") or
`lang:CODE`. People who opted out or cannot be reached are counted, never messaged.

Quiet hours: a broadcast that is not urgent waits, per participant, until their quiet hours
are over (their own time zone, else the assembly's). Free text is not urgent unless the
organiser says so; the session-moved template is urgent by default, since a changed start
time may matter before the next morning.

Sending is one transaction: the broadcast row, every outbox row (carrying broadcast_id)
and the audit event commit together, so a crash sends all of it or none of it.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.render import render
from bot.relay import Relay
from bot.services.organisers import forward_attendance, record
from bot.settings import Settings
from flows import segments
from flows.briefing import session_moved_text
from flows.facts import AudienceFacts
from flows.i18n import shipped_languages, translator
from flows.model import Outbound
from scheduler import timers
from scheduler.config import Calendar, QuietHours, pick
from scheduler.plan import after_quiet_hours
from store import contacts as contact_choice
from store import outbox as outbox_writer
from store.models import OutboxMessage, OutboxStatus, Participant, utcnow
from store.organisers import Broadcast
from store.recruitment import CONFIRMED, RESERVE, SELECTED, PoolEntry, Selection

log = logging.getLogger(__name__)

AUDIENCE_FORMS = "all, selected, reserve, group:NAME or lang:CODE"
MAX_TEXT = 1600  # ten SMS segments of GSM-7 text
SESSION_MOVED = "session-moved"
TEMPLATES = (SESSION_MOVED,)


class BroadcastError(ValueError):
    """A broadcast that cannot be made; the message says what to change."""


# --- audiences -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Audience:
    kind: str  # all | selected | reserve | group | lang
    value: str | None = None

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}" if self.value else self.kind

    def includes(self, member: Member) -> bool:
        if self.kind == "all":
            return True
        if self.kind == "selected":
            return member.selection in (SELECTED, CONFIRMED)
        if self.kind == "reserve":
            return member.selection == RESERVE
        if self.kind == "lang":
            return member.language == self.value
        # group: names match whatever their case ('to:group:North' typed in chat)
        return member.group is not None and member.group.casefold() == self.value.casefold()


def parse_audience(text: str) -> Audience:
    raw = (text or "").strip()
    kind, _, value = raw.partition(":")
    kind, value = kind.casefold(), value.strip()
    if kind in ("all", "selected", "reserve") and not value:
        return Audience(kind)
    if kind == "lang" and value:
        code = value.casefold()
        if code not in shipped_languages():
            raise BroadcastError(
                f"no language {value!r}; use one of {', '.join(shipped_languages())}"
            )
        return Audience("lang", code)
    if kind == "group" and value:
        return Audience("group", value)
    raise BroadcastError(f"unknown audience {raw!r}; use {AUDIENCE_FORMS}")


@dataclass
class Member:
    """One drawn participant and the contact a broadcast would use (None: unreachable)."""

    participant_id: str
    language: str
    timezone: str | None
    opted_out: bool
    selection: str
    group: str | None
    contact: ContactRef | None = None


@dataclass
class ContactRef:
    """The columns of a contact a broadcast needs (plain rows: 10,000 ORM objects are slow)."""

    id: int
    participant_id: str
    channel: str
    address: str
    next_seq: int
    unreachable_at: datetime | None
    opted_out_at: datetime | None
    sms_consent: bool


# The people a broadcast can reach: everyone with a live row in the draw's selections table.
DRAWN = (SELECTED, CONFIRMED, RESERVE)


async def load_members(session: AsyncSession, *, lock: bool = False) -> list[Member]:
    """Every drawn participant with their preferred usable contact.

    With `lock`, their contacts are locked (PostgreSQL) so the outbox sequence numbers we
    hand out cannot collide with a reply being queued at the same moment."""
    rows = (
        await session.execute(
            select(
                Participant.id,
                Participant.language,
                Participant.timezone,
                Participant.opted_out,
                Selection.status,
                PoolEntry.attributes,
            )
            .join(Selection, Selection.participant_id == Participant.id)
            .outerjoin(PoolEntry, PoolEntry.participant_id == Participant.id)
            .where(Selection.status.in_(DRAWN))
            .order_by(Participant.id)
        )
    ).all()
    drawn = select(Selection.participant_id).where(Selection.status.in_(DRAWN))
    chosen = await contact_choice.preferred_contacts(session, drawn, lock=lock)
    members = []
    for pid, language, tz, opted_out, status, attributes in rows:
        group = (attributes or {}).get("group")
        contact = chosen.get(pid)
        members.append(
            Member(
                pid,
                language,
                tz,
                opted_out,
                status,
                str(group) if group is not None else None,
                ContactRef(*contact) if contact is not None else None,
            )
        )
    return members


def preferred(contacts: list[ContactRef]) -> ContactRef | None:
    """Telegram when it still works, else SMS the person agreed to (as service does)."""
    return contact_choice.choose(contacts)


@dataclass
class AudienceCount:
    total: int = 0  # people in the audience
    reachable: int = 0
    by_channel: Counter = field(default_factory=Counter)
    opted_out: int = 0
    unreachable: int = 0
    held: int = 0  # reachable, but in their quiet hours now (non-urgent copies wait)

    def add(self, member: Member, held: bool = False) -> None:
        self.total += 1
        if member.opted_out:
            self.opted_out += 1
        elif member.contact is None:
            self.unreachable += 1
        else:
            self.reachable += 1
            self.held += held
            self.by_channel[member.contact.channel] += 1

    def facts(self) -> AudienceFacts:
        return AudienceFacts(
            total=self.total,
            reachable=self.reachable,
            held=self.held,
            telegram=self.by_channel["telegram"],
            sms=self.by_channel["sms"],
        )


def audience_counts(
    members: list[Member], now: datetime, timing: Timing | None = None
) -> dict[str, AudienceCount]:
    """Counts for every audience that has someone in it (what a chat preview shows)."""
    timing = timing or Timing()
    counts: dict[str, AudienceCount] = {}
    quiet: dict[str | None, bool] = {}
    for member in members:
        if member.timezone not in quiet:
            quiet[member.timezone] = timing.release(now, timing.zone(member.timezone)) > now
        keys = [
            "all",
            "selected" if member.selection in (SELECTED, CONFIRMED) else "reserve",
            f"lang:{member.language}",
        ]
        if member.group:
            keys.append(f"group:{member.group.casefold()}")
        for key in keys:
            counts.setdefault(key, AudienceCount()).add(member, quiet[member.timezone])
    return counts


# --- content ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Content:
    """Free text, or a template with its parameters (rendered per language and zone)."""

    text: str | None = None
    template: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def for_person(self, language: str, tz: ZoneInfo) -> str:
        if self.template is None:
            return self.text or ""
        t = translator(language)
        if self.params.get("title"):
            # The calendar's own wording, as its reminders put it (zone named if not ours).
            session = {"title": pick(self.params["title"], language), "start": self.params["start"]}
            zones = {"timezone": tz.key, "default_timezone": self.params.get("zone", tz.key)}
            return session_moved_text(t, session, zones)
        start = datetime.fromisoformat(self.params["start"]).astimezone(tz)
        return t.gettext(
            "Change of schedule: session {number} now starts on {start}.",
            number=self.params["session"],
            start=t.datetime(start),
        )


def text_content(text: str) -> Content:
    text = (text or "").strip()
    if not text:
        raise BroadcastError("the broadcast text is empty")
    if len(text) > MAX_TEXT:
        raise BroadcastError(f"the text is {len(text)} characters; keep it under {MAX_TEXT}")
    return Content(text=text)


def session_moved(
    session_number: int,
    start: datetime,
    title: dict[str, str] | None = None,
    zone: str | None = None,
) -> Content:
    """The session-moved template. With the session's `title` (from the calendar) it reads
    as the calendar's reminders do; `zone` is the assembly's."""
    if session_number < 1:
        raise BroadcastError("sessions are numbered from 1")
    if start.tzinfo is None:
        raise BroadcastError("the new start needs a time zone")
    params: dict[str, Any] = {"session": session_number, "start": start.astimezone(UTC).isoformat()}
    if title:
        params["title"] = dict(title)
        params["zone"] = zone or "UTC"
    return Content(template=SESSION_MOVED, params=params)


def content_of(broadcast: Broadcast) -> Content:
    return Content(broadcast.text, broadcast.template, dict(broadcast.params or {}))


def gsm_spaces(text: str) -> str:
    """The SMS copy of a text, as the renderer will send it (plain spaces and quotes)."""
    return segments.gsm_friendly(text)


# --- time --------------------------------------------------------------------------------------

DEFAULT_QUIET = QuietHours(start=time(21, 0), end=time(8, 0))


@dataclass(frozen=True)
class Timing:
    """What broadcasts need of the assembly's calendar: its zone and quiet hours."""

    timezone: str = "UTC"
    quiet: QuietHours = DEFAULT_QUIET

    def zone(self, name: str | None) -> ZoneInfo:
        for candidate in (name, self.timezone):
            if candidate:
                try:
                    return ZoneInfo(candidate)
                except (ZoneInfoNotFoundError, ValueError):
                    continue
        return ZoneInfo("UTC")

    def release(self, now: datetime, tz: ZoneInfo) -> datetime:
        """`now`, or the end of the quiet hours `now` falls in (in zone `tz`)."""
        return after_quiet_hours(now, tz, self.quiet)


def timing_of(cal: Calendar | None) -> Timing:
    """The zone and quiet hours of an assembly's calendar (defaults without one)."""
    if cal is None:
        return Timing()
    return Timing(cal.schedule.timezone, cal.schedule.quiet_hours)


# --- dry run -------------------------------------------------------------------------------


@dataclass
class DryRun:
    audience: str
    count: AudienceCount
    by_language: Counter  # (channel, language) -> people
    sms_messages: int = 0  # outbox rows on SMS (long texts make several)
    sms_segments: int = 0
    cost: float = 0.0
    held: int = 0  # people whose copy waits for the end of their quiet hours
    samples: dict[str, str] = field(default_factory=dict)  # language -> their text


class _Renderer:
    """Each (language, zone, channel) copy rendered once, however many people share it."""

    def __init__(
        self, content: Content, settings: Settings, urgent: bool, timing: Timing, now: datetime
    ):
        self.content, self.settings, self.urgent, self.timing, self.now = (
            content,
            settings,
            urgent,
            timing,
            now,
        )
        self._parts: dict[tuple[str, str | None, str], list] = {}
        self._release: dict[str | None, datetime] = {}

    def text(self, language: str, tz: str | None) -> str:
        return self.content.for_person(language, self.timing.zone(tz))

    def parts(self, language: str, tz: str | None, channel: str) -> list:
        key = (language, tz if self.content.template else None, channel)
        if key not in self._parts:
            text = self.text(language, tz)
            if channel == "sms":
                text = gsm_spaces(text)
            message = Outbound(text=text, urgent=self.urgent, kind="broadcast")
            self._parts[key] = render(
                message, channel, language, None, self.settings.sms_max_segments
            )
        return self._parts[key]

    def not_before(self, tz: str | None) -> datetime:
        if self.urgent:
            return self.now
        if tz not in self._release:
            self._release[tz] = self.timing.release(self.now, self.timing.zone(tz))
        return self._release[tz]


async def dry_run(
    session: AsyncSession,
    settings: Settings,
    content: Content,
    audience: Audience,
    *,
    urgent: bool = False,
    now: datetime | None = None,
    timing: Timing | None = None,
) -> DryRun:
    now = now or utcnow()
    renderer = _Renderer(content, settings, urgent, timing or Timing(), now)
    result = DryRun(str(audience), AudienceCount(), Counter())
    for member in await load_members(session):
        if not audience.includes(member):
            continue
        result.count.add(member)
        if member.opted_out or member.contact is None:
            continue
        channel = member.contact.channel
        result.by_language[(channel, member.language)] += 1
        result.samples.setdefault(member.language, renderer.text(member.language, member.timezone))
        if renderer.not_before(member.timezone) > now:
            result.held += 1
        if channel == "sms":
            parts = renderer.parts(member.language, member.timezone, "sms")
            result.sms_messages += len(parts)
            result.sms_segments += sum(p.segments for p in parts)
    result.cost = round(result.sms_segments * settings.sms_cost_per_segment, 4)
    return result


# --- sending ---------------------------------------------------------------------------------


async def create(
    session: AsyncSession,
    settings: Settings,
    content: Content,
    audience: Audience,
    *,
    organiser_id: int | None,
    origin: str,
    urgent: bool = False,
    at: datetime | None = None,
    now: datetime | None = None,
    timing: Timing | None = None,
) -> Broadcast:
    """Store a broadcast; queue it at once unless `at` is in the future (then it waits)."""
    now = now or utcnow()
    if at is not None and at.tzinfo is None:
        raise BroadcastError("the time needs a time zone")
    row = Broadcast(
        text=content.text,
        template=content.template,
        params=content.params,
        audience=str(audience),
        urgent=urgent,
        scheduled_at=at,
        status="scheduled",
        created_by=organiser_id,
        origin=origin,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    if at is not None and at > now:
        await record(
            session,
            "broadcast.scheduled",
            organiser_id,
            broadcast=row.id,
            audience=str(audience),
            template=content.template,
            urgent=urgent,
            origin=origin,
            at=at.astimezone(UTC).isoformat(),
        )
        return row
    await queue(session, settings, row, now=now, timing=timing)
    return row


async def queue(
    session: AsyncSession,
    settings: Settings,
    row: Broadcast,
    *,
    now: datetime | None = None,
    timing: Timing | None = None,
) -> int:
    """Write one outbox row per message part for every reachable member of the audience."""
    now = now or utcnow()
    audience = parse_audience(row.audience)
    renderer = _Renderer(content_of(row), settings, row.urgent, timing or Timing(), now)
    outbox: list[outbox_writer.Message] = []
    people = 0
    for member in await load_members(session, lock=True):
        contact = member.contact
        if member.opted_out or contact is None or not audience.includes(member):
            continue
        people += 1
        parts = renderer.parts(member.language, member.timezone, contact.channel)
        not_before = renderer.not_before(member.timezone)
        outbox += [
            outbox_writer.Message(
                contact,
                part.text,
                buttons=part.buttons,
                kind="broadcast",
                broadcast_id=row.id,
                part=number,
                parts=len(parts),
                segments=part.segments,
                encoding=part.encoding,
                not_before=not_before,
            )
            for number, part in enumerate(parts, start=1)
        ]
    await outbox_writer.write(session, outbox, now=now)
    row.status, row.recipients, row.queued_at = "queued", people, now
    await session.flush()
    await record(
        session,
        "broadcast.queued",
        row.created_by,
        broadcast=row.id,
        audience=row.audience,
        template=row.template,
        urgent=row.urgent,
        origin=row.origin,
        recipients=people,
        messages=len(outbox),
    )
    return len(outbox)


async def release_due(
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    now: datetime | None = None,
    timing: Timing | None = None,
) -> list[int]:
    """Queue every scheduled broadcast whose time has come, each in its own transaction.

    The row is locked (skipped if another instance holds it) and its status checked again,
    so two service instances never queue one broadcast twice."""
    released = []
    while True:
        current = now or utcnow()
        async with sessions.begin() as session:
            row = (
                await session.execute(
                    select(Broadcast)
                    .where(Broadcast.status == "scheduled", Broadcast.scheduled_at <= current)
                    .order_by(Broadcast.scheduled_at, Broadcast.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
            ).scalar_one_or_none()
            if row is None:
                return released
            await queue(session, settings, row, now=current, timing=timing)
            released.append(row.id)


async def discard(
    session: AsyncSession,
    broadcast_id: int,
    *,
    organiser_id: int | None = None,
    origin: str = "cli",
) -> Broadcast:
    """Drop a broadcast that is still waiting for its time."""
    row = await session.get(Broadcast, broadcast_id, with_for_update=True)
    if row is None:
        raise BroadcastError(f"no broadcast {broadcast_id}")
    if row.status != "scheduled":
        raise BroadcastError(
            f"broadcast {broadcast_id} is {row.status}; only a scheduled broadcast can be discarded"
        )
    row.status = "discarded"
    await record(session, "broadcast.discarded", organiser_id, broadcast=row.id, origin=origin)
    return row


# --- status ---------------------------------------------------------------------------------

STATUS_GROUPS = {
    OutboxStatus.QUEUED: OutboxStatus.QUEUED,
    OutboxStatus.SENDING: OutboxStatus.QUEUED,
    OutboxStatus.SENT: OutboxStatus.SENT,
    OutboxStatus.DELIVERED: OutboxStatus.DELIVERED,
    OutboxStatus.FAILED: OutboxStatus.FAILED,
    OutboxStatus.UNDELIVERABLE: OutboxStatus.FAILED,
    OutboxStatus.CANCELLED: OutboxStatus.CANCELLED,
}


@dataclass
class Status:
    broadcast: Broadcast
    messages: Counter  # queued / sent / delivered / failed / cancelled -> outbox rows
    people: Counter  # the same, counting each person once (by their least advanced part)


async def status(session: AsyncSession, broadcast_id: int) -> Status:
    row = await session.get(Broadcast, broadcast_id)
    if row is None:
        raise BroadcastError(f"no broadcast {broadcast_id}")
    messages: Counter = Counter()
    for state, n in await session.execute(
        select(OutboxMessage.status, func.count())
        .where(OutboxMessage.broadcast_id == row.id)
        .group_by(OutboxMessage.status)
    ):
        messages[STATUS_GROUPS.get(state, state)] += n
    order = [
        OutboxStatus.FAILED,
        OutboxStatus.CANCELLED,
        OutboxStatus.QUEUED,
        OutboxStatus.SENT,
        OutboxStatus.DELIVERED,
    ]
    worst: dict[str, int] = {}
    for pid, state in await session.execute(
        select(OutboxMessage.participant_id, OutboxMessage.status).where(
            OutboxMessage.broadcast_id == row.id
        )
    ):
        rank = order.index(STATUS_GROUPS.get(state, OutboxStatus.QUEUED))
        worst[pid] = min(worst.get(pid, rank), rank)
    people = Counter(order[rank] for rank in worst.values())
    return Status(row, messages, people)


async def recent(session: AsyncSession, limit: int = 20) -> list[Broadcast]:
    return list(
        (
            await session.execute(select(Broadcast).order_by(Broadcast.id.desc()).limit(limit))
        ).scalars()
    )


# --- the background task: scheduled broadcasts go out when due ---------------------------

RELEASE_EVERY = 15.0  # seconds


async def release_once(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, calendar: Calendar | None = None
) -> int:
    """Scheduled broadcasts that are due, and attendance notices no organiser was told of
    yet (there was none when they came in). Returns how many of both went out."""
    released = await release_due(sessions, settings, timing=timing_of(calendar))
    if released:
        log.info("released %d scheduled broadcast(s)", len(released))
    async with sessions.begin() as session:
        forwarded = await forward_attendance(session, settings, utcnow(), calendar=calendar)
    return len(released) + forwarded


def install(app, relay: Relay, dispatch: bool) -> None:
    """Release scheduled broadcasts with the service (not when tests drive the outbox)."""
    if not dispatch:
        return

    async def tick() -> None:
        if await release_once(relay.sessions, relay.settings, relay.calendar):
            relay.outbox_signal.set()

    timers.add(app, "broadcasts: release the scheduled ones", RELEASE_EVERY, tick)
