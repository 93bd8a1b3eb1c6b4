"""Who a broadcast reaches: audiences, the drawn members and their contacts, counts.

An audience is `all` (everyone drawn: selected, confirmed and reserve), `selected` (the
panel: selected or confirmed), `reserve`, `group:NAME` (pool attribute "group") or
`lang:CODE`. People who opted out or cannot be reached are counted, never messaged.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.broadcast.common import BroadcastError
from bot.services.broadcast.timing import Timing
from flows.facts import AudienceFacts
from flows.i18n import shipped_languages
from store import contacts as contact_choice
from store.models import Participant
from store.recruitment import CONFIRMED, RESERVE, SELECTED, PoolEntry, Selection

AUDIENCE_FORMS = "all, selected, reserve, group:NAME or lang:CODE"


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
