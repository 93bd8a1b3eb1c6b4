"""Briefings and reminders as participants see them, and their replies.

TIME 7:30, MORE, READ and the buttons under briefings and reminders work in whatever
conversation a panel member is in: they are engine commands, taken only when the context
carries the calendar (`ctx.facts.calendar`, given to panel members). What they mean for
the store travels as events: briefing.time_changed, briefing.paged, briefing.read, and
attendance.reported (the same event as a typed LATE or CAN'T COME, which flows.organiser
takes; the organisers are told by bot.services.organisers).
"""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from flows import events
from flows.engine import Conversation
from flows.facts import CalendarFacts, CalendarSession
from flows.i18n import Translator
from flows.model import Choice, Inbound, Outbound
from flows.text import fold

# Button keys, distinct from any flow's choice keys; the prompt part of the data is ignored.
READ, LATE, ABSENT = "cal_read", "cal_late", "cal_absent"
PROMPT = "cal"

_TIME_COMMAND = re.compile(r"^(time|heure|hora)(?![^\W\d_])\s*:?\s*(.*)$", re.IGNORECASE)
MORE_WORDS = {"more", "suite", "plus", "mas", "siguiente"}
READ_WORDS = {"read", "lu", "leido"}
_CLOCK = re.compile(
    r"^\s*(\d{1,2})(?:\s*[:.hH]\s*|\s+)?(\d{2})?\s*([ap])?\.?\s*m?\.?\s*$", re.IGNORECASE
)


def parse_time_of_day(text: str) -> time | None:
    """'7:30', '07.30', '7h30', '730', '7 30', '19', '7:30pm', '7 am' -> a time, else None."""
    raw = text.strip()
    if re.fullmatch(r"\d{3,4}", raw):
        raw = f"{raw[:-2]}:{raw[-2:]}"
    match = _CLOCK.match(raw)
    if not match:
        return None
    hour, minute, half = int(match[1]), int(match[2] or 0), (match[3] or "").lower()
    if half:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half == "p" else 0)
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


# --- what is sent ---------------------------------------------------------------------


def briefing_document(
    t: Translator,
    *,
    title: str,
    text: str,
    perspectives: list[dict[str, str]],
    sources: list[dict[str, Any]],
    audio: str | None,
) -> str:
    """The whole briefing in Markdown: title, text, the perspectives presented, sources."""
    _ = t.gettext
    parts = [f"**{title}**", text.strip()]
    if perspectives:
        heading = _("Perspectives presented")
        lines = [f"**{heading}**"]
        lines += [f"- **{p['name']}**: {p['summary']}" for p in perspectives]
        parts.append("\n".join(lines))
    if sources:
        heading = _("Sources")
        lines = [f"**{heading}**"]
        lines += [
            f"- [{s['title']}]({s['url']})" if s.get("url") else f"- {s['title']}" for s in sources
        ]
        parts.append("\n".join(lines))
    if audio:
        parts.append(_("Listen to this briefing: {link}", link=audio))
    return "\n\n".join(parts)


def more_suffix(t: Translator, page: int, pages: int) -> str:
    """What ends every SMS page but the last."""
    return t.gettext("({page}/{pages}) Reply MORE for the next part.", page=page, pages=pages)


def briefing_messages(t: Translator, channel: str, briefing: dict[str, Any]) -> list[Outbound]:
    """Telegram: the whole briefing, formatted, with a button to say it was read.
    SMS: its first page; MORE sends the next."""
    if channel == "telegram":
        return [
            Outbound(
                text=briefing["document"],
                markdown=True,
                urgent=False,
                kind="briefing",
                choices=(Choice(READ, t.gettext("I have read it")),),
            )
        ]
    return [Outbound(text=briefing["pages"][0], urgent=False, kind="briefing")]


def local_start(session: dict[str, Any], zone: str) -> datetime:
    return datetime.fromisoformat(session["start"]).astimezone(ZoneInfo(zone))


def session_when(t: Translator, session: dict[str, Any], calendar: dict[str, Any]) -> str:
    """The session's date and time in the person's own zone, naming it when it is not the
    assembly's."""
    when = t.datetime(local_start(session, calendar["timezone"]))
    if calendar["timezone"] != calendar["default_timezone"]:
        when = f"{when} ({calendar['timezone']})"
    return when


def reminder_messages(
    t: Translator, channel: str, session: dict[str, Any], calendar: dict[str, Any]
) -> list[Outbound]:
    _ = t.gettext
    lines = [
        _(
            "Reminder: {title}, {when}.",
            title=session["title"],
            when=session_when(t, session, calendar),
        )
    ]
    if session.get("place"):
        lines.append(_("Place: {place}", place=session["place"]))
    if session.get("call_in"):
        lines.append(_("To join remotely: {details}", details=session["call_in"]))
    if channel == "telegram":
        choices = (Choice(LATE, _("I will be late")), Choice(ABSENT, _("I can't come")))
        return [Outbound(text="\n".join(lines), choices=choices, urgent=False, kind="reminder")]
    lines.append(_("Reply LATE if you will be late, or CANT COME if you cannot come."))
    return [Outbound(text="\n".join(lines), urgent=False, kind="reminder")]


def session_moved_text(t: Translator, session: dict[str, Any], calendar: dict[str, Any]) -> str:
    """The notice for a moved session, for the broadcast feature's session-moved template."""
    return t.gettext(
        "Change of time: {title} is now on {when}.",
        title=session["title"],
        when=session_when(t, session, calendar),
    )


# --- replies ----------------------------------------------------------------------------


def _memory(conv: Conversation) -> dict[str, Any]:
    return conv.state.data.setdefault("calendar", {})


def reminded_session(conv: Conversation, calendar: CalendarFacts) -> CalendarSession | None:
    """The session a LATE or CAN'T COME is about: the one last reminded of while it has
    not ended, else the next one."""
    now = conv.ctx.now
    live = []
    for session in calendar.sessions:
        end = session.end or session.start
        if datetime.fromisoformat(end) > now:
            live.append(session)
    reminded = _memory(conv).get("session")
    for session in live:
        if session.id == reminded:
            return session
    return min(live, key=lambda s: s.start, default=None)


def _attendance(conv: Conversation, calendar: CalendarFacts, kind: str) -> None:
    session = reminded_session(conv, calendar)
    if session is None:
        conv.say(conv._("There is no upcoming session to tell the organisers about."))
        return
    conv.emit(events.ATTENDANCE_REPORTED, report=kind, session=session.id)
    conv.say(conv._("Thank you for letting us know. The organisers have been told."))


def _more(conv: Conversation, calendar: CalendarFacts) -> None:
    memory = _memory(conv)
    briefing = calendar.briefings.get(memory.get("briefing") or "")
    if briefing is None:
        conv.say(conv._("There is no briefing to continue at the moment."))
        return
    pages = briefing.pages if conv.ctx.channel == "sms" else [briefing.document]
    page = int(memory.get("page", 1))
    if page >= len(pages):
        conv.say(conv._("That was the last part of the briefing."))
        return
    page += 1
    memory["page"] = page
    conv.emit(events.BRIEFING_PAGED, briefing=memory["briefing"], page=page, pages=len(pages))
    conv.say(pages[page - 1], kind="briefing")


def _time(conv: Conversation, calendar: CalendarFacts, rest: str) -> None:
    example = conv._("Reply TIME followed by the time you want, for example TIME 7:30.")
    if not rest.strip():
        current = time.fromisoformat(calendar.briefing_time)
        conv.say(
            " ".join(
                [
                    conv._("Your daily briefing arrives at {time}.", time=_clock(conv, current)),
                    example,
                ]
            )
        )
        return
    chosen = parse_time_of_day(rest)
    if chosen is None:
        conv.say(" ".join([conv._("Sorry, I could not read that time."), example]))
        return
    conv.emit(events.BRIEFING_TIME_CHANGED, time=f"{chosen:%H:%M}")
    conv.say(conv._("Your daily briefing will now arrive at {time}.", time=_clock(conv, chosen)))


def _clock(conv: Conversation, clock: time) -> str:
    return conv.t.time(datetime.combine(conv.ctx.now.date(), clock))


def _read(conv: Conversation) -> None:
    briefing = _memory(conv).get("briefing")
    if briefing is None:
        conv.say(conv._("There is no briefing to confirm at the moment."))
        return
    conv.emit(events.BRIEFING_READ, briefing=briefing, channel=conv.ctx.channel)
    conv.say(conv._("Thank you for reading the briefing."))


def calendar_replies(conv: Conversation, inbound: Inbound) -> bool:
    """Take the calendar's replies, in any conversation, from panel members only."""
    calendar = conv.ctx.facts.calendar
    if calendar is None:
        return False
    if inbound.button is not None:
        key = inbound.button.rpartition(":")[2]
        actions = {
            READ: lambda: _read(conv),
            LATE: lambda: _attendance(conv, calendar, "late"),
            ABSENT: lambda: _attendance(conv, calendar, "absent"),
        }
        if key not in actions:
            return False
        actions[key]()
        return True
    text = inbound.text.strip()
    asked = _TIME_COMMAND.match(text)
    if asked:
        _time(conv, calendar, asked[2])
        return True
    word = fold(text)
    if word in MORE_WORDS:
        _more(conv, calendar)
    elif word in READ_WORDS:
        _read(conv)
    else:
        return False
    return True
