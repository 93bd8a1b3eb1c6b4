"""What a broadcast says: free text or a template, and each person's copy of it.

Free text is not urgent unless the organiser says so; the session-moved template is urgent
by default, since a changed start time may matter before the next morning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.channels.render import render
from bot.services.broadcast.common import BroadcastError
from bot.services.broadcast.timing import Timing
from bot.settings import Settings
from flows import segments
from flows.briefing import session_moved_text
from flows.i18n import translator
from flows.model import Outbound
from scheduler.config import pick
from store.organisers import Broadcast

MAX_TEXT = 1600  # ten SMS segments of GSM-7 text
SESSION_MOVED = "session-moved"
TEMPLATES = (SESSION_MOVED,)


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


class Renderer:
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
