"""The calendar part of the assembly file: `[[sessions]]`, `[[briefings]]`, `[schedule]`.

Times in the file are local to the schedule's time zone (a TOML local date-time such as
`2027-03-02T18:30`); an explicit offset is accepted too. Loading checks everything and
names the place of each mistake ("sessions #2 (id 's2') > end (line 41): ...").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from flows.config_file import CALENDAR_TABLES, AssemblyFile, ConfigError, Strict, problems_of

_DURATION_PART = re.compile(r"(\d+)\s*(d|h|m)")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
_CLOCK = re.compile(r"^\s*(\d{1,2})[:.hH](\d{2})\s*$")
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,23}$"  # short: job keys and Telegram callback data


class CalendarError(ConfigError):
    """The calendar cannot be used; `problems` lists each place and what is wrong."""


def parse_duration(value: Any) -> timedelta:
    """'24h', '2h', '30m', '1d', '1h30m' -> timedelta."""
    if isinstance(value, timedelta):
        return value
    text = str(value).strip().lower().replace(" ", "")
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(a + u for a, u in parts) != text:
        raise ValueError("write a duration as a number and a unit: '24h', '2h', '30m' or '1d'")
    return sum((timedelta(**{_UNITS[u]: int(a)}) for a, u in parts), timedelta())


def format_duration(value: timedelta) -> str:
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    text = (f"{days}d" if days else "") + (f"{hours}h" if hours else "")
    return text + (f"{minutes}m" if minutes or not text else "")


def parse_clock(value: Any) -> time:
    """'7:30', '07:30', '7.30', '7h30' -> time(7, 30)."""
    if isinstance(value, time):
        return value
    match = _CLOCK.match(str(value))
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"{value!r} is not a time of day; write it as HH:MM, e.g. '08:00'")
    return time(int(match[1]), int(match[2]))


def _zone(value: Any) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a time zone name such as 'Europe/Paris'") from None
    return str(value)


def _localised(value: Any) -> Any:
    # A plain string is the same text in every language.
    return {"*": value} if isinstance(value, str) else value


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Clock = Annotated[time, BeforeValidator(parse_clock)]
Zone = Annotated[str, BeforeValidator(_zone)]
Localised = Annotated[dict[str, str], BeforeValidator(_localised)]


def pick(texts: dict[str, str] | None, language: str, default: str = "en") -> str:
    """The text in `language`, else the default language, else any."""
    if not texts:
        return ""
    return (
        texts.get(language)
        or texts.get("*")
        or texts.get(default)
        or next(iter(texts.values()), "")
    )


class QuietHours(BaseModel):
    """Local hours when nothing non-urgent is sent; start > end wraps past midnight."""

    model_config = ConfigDict(frozen=True)
    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def _quiet(value: Any) -> Any:
    if value in (None, "", False):
        return QuietHours(start=time(0), end=time(0))
    if isinstance(value, str):
        start, sep, end = value.partition("-")
        if not sep:
            raise ValueError("write quiet hours as 'HH:MM-HH:MM', e.g. '21:00-08:00'")
        return QuietHours(start=parse_clock(start), end=parse_clock(end))
    if isinstance(value, dict):
        return QuietHours(start=parse_clock(value.get("start")), end=parse_clock(value.get("end")))
    return value


class Schedule(Strict):
    timezone: Zone = "UTC"
    reminders: list[Duration] = Field(
        default_factory=lambda: [timedelta(hours=24), timedelta(hours=2)]
    )
    quiet_hours: Annotated[QuietHours, BeforeValidator(_quiet)] = QuietHours(
        start=time(21), end=time(8)
    )
    briefing_time: Clock = time(8)
    # An SMS briefing is sent in pages of this many segments; MORE sends the next page.
    sms_page_segments: int = Field(3, ge=1, le=10)

    @field_validator("reminders")
    @classmethod
    def _positive(cls, value: list[timedelta]) -> list[timedelta]:
        if any(v <= timedelta(0) for v in value):
            raise ValueError("each reminder offset must be more than zero")
        if len(set(value)) != len(value):
            raise ValueError("a reminder offset appears twice")
        return sorted(value, reverse=True)


class Session(Strict):
    id: str = Field(pattern=ID_PATTERN)
    title: Localised
    start: datetime
    end: datetime | None = None
    place: Localised | None = None
    call_in: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Session:
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        if not self.place and not self.call_in:
            raise ValueError("give a place or call_in details")
        return self


class Source(Strict):
    title: Localised
    url: str | None = None


class Perspective(Strict):
    name: Localised
    summary: Localised


class Briefing(Strict):
    id: str = Field(pattern=ID_PATTERN)
    title: Localised
    # Delivered on this local day, or on the day of this session.
    day: date | None = None
    session: str | None = None
    text: Localised  # Markdown, per language
    sources: list[Source] = Field(default_factory=list)
    perspectives: list[Perspective] = Field(default_factory=list)
    audio: Localised | None = None

    @model_validator(mode="after")
    def _one_anchor(self) -> Briefing:
        if (self.day is None) == (self.session is None):
            raise ValueError("give either day (a date) or session (a session id), not both")
        return self


class Calendar(Strict):
    sessions: list[Session] = Field(default_factory=list)
    briefings: list[Briefing] = Field(default_factory=list)
    schedule: Schedule = Schedule()
    languages: list[str] = Field(default_factory=lambda: ["en"])
    default_language: str = "en"
    # What is derived from this calendar and costly to redo (rendered briefings).
    _memo: dict[Any, Any] = PrivateAttr(default_factory=dict)

    def memo(self) -> dict[Any, Any]:
        return self._memo

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.schedule.timezone)

    def session(self, key: str | int) -> Session | None:
        """A session by id, or by its number in the file (1 = the first)."""
        for session in self.sessions:
            if session.id == str(key):
                return session
        if str(key).isdigit() and 1 <= int(key) <= len(self.sessions):
            return self.sessions[int(key) - 1]
        return None

    def briefing(self, key: str) -> Briefing | None:
        return next((b for b in self.briefings if b.id == key), None)

    def localise(self, moment: datetime) -> datetime:
        """A time from the file as an aware datetime (naive = the schedule's time zone)."""
        return moment.replace(tzinfo=self.zone) if moment.tzinfo is None else moment


def _default_ids(raw: dict[str, Any]) -> None:
    for table, prefix in (("sessions", "s"), ("briefings", "b")):
        items = raw.get(table)
        if isinstance(items, list):
            for n, item in enumerate(items, start=1):
                if isinstance(item, dict):
                    item.setdefault("id", f"{prefix}{n}")


def _cross_checks(calendar: Calendar) -> list[str]:
    problems = []
    seen: set[str] = set()
    for n, session in enumerate(calendar.sessions, start=1):
        if session.id in seen:
            problems.append(f"sessions #{n} (id {session.id!r}) > id: used twice")
        seen.add(session.id)
    ids = {s.id for s in calendar.sessions}
    seen = set()
    languages = calendar.languages
    for n, briefing in enumerate(calendar.briefings, start=1):
        place = f"briefings #{n} (id {briefing.id!r})"
        if briefing.id in seen:
            problems.append(f"{place} > id: used twice")
        seen.add(briefing.id)
        if briefing.session is not None and briefing.session not in ids:
            problems.append(f"{place} > session: no session has the id {briefing.session!r}")
        if "*" not in briefing.text:
            for code in languages:
                if not briefing.text.get(code, "").strip():
                    problems.append(f"{place} > text: no text in {code!r}")
    return problems


def calendar_of(file: AssemblyFile) -> Calendar:
    """The calendar tables of an assembly file read once; CalendarError lists every
    mistake."""
    raw, path, text = file.tables(), file.path, file.text
    info = raw.get("assembly") if isinstance(raw.get("assembly"), dict) else {}
    data = {key: raw[key] for key in CALENDAR_TABLES if key in raw}
    _default_ids(data)
    schedule = data.get("schedule")
    if isinstance(schedule, dict) and "timezone" not in schedule and info.get("timezone"):
        schedule["timezone"] = info["timezone"]
    if isinstance(info.get("languages"), list):
        data["languages"] = info["languages"]
        data["default_language"] = info.get("default_language", info["languages"][0])
    try:
        calendar = Calendar.model_validate(data)
    except ValidationError as exc:
        raise CalendarError(path, problems_of(exc, data, text)) from None
    problems = _cross_checks(calendar)
    if problems:
        raise CalendarError(path, problems)
    return calendar


def parse_calendar(text: str, path: str = "assembly.toml") -> Calendar:
    """The calendar tables of an assembly file's text; CalendarError lists every mistake."""
    return calendar_of(AssemblyFile.parse(text, path, CalendarError))


def load_calendar(path: str | Path) -> Calendar:
    """Read and check the calendar tables of an assembly file."""
    return calendar_of(AssemblyFile.read(path, CalendarError))


# Where the running service's calendar is read (it may be reloaded while it runs).
CalendarSource = Callable[[], Calendar | None]
