"""What the conversation's service functions return, and the error they raise."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.settings import Settings


class DeliberationError(RuntimeError):
    """Bad input from an organiser or facilitator, said plainly (no table, no such round,
    nothing open): a command prints it and exits 1."""


@dataclass
class Opened:
    """A prompt opened at some tables of a round."""

    round: int
    prompt: str  # the [[prompts]] id, or "now-<n>"
    tables: list[int] = field(default_factory=list)  # opened now
    already: list[int] = field(default_factory=list)  # this prompt was open or done there
    busy: list[int] = field(default_factory=list)  # another prompt is still open there
    messages: int = 0  # outbox rows queued


@dataclass
class Changed:
    """Tables a facilitator's pause, resume, end or post touched."""

    round: int
    tables: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)  # nothing open (or already so)
    messages: int = 0


@dataclass
class Hidden:
    contribution: int
    round: int
    table: int
    letter: str
    told: int  # members told "a message from C was removed"


@dataclass(frozen=True)
class Speaking:
    """How much one seat has spoken in a round (every prompt of it)."""

    messages: int = 0
    passed: int = 0
    last_at: datetime | None = None
    held: int = 0  # over the fair share, not yet relayed


@dataclass(frozen=True)
class PromptState:
    """A table's prompt as facilitators see it (no member's text)."""

    id: int  # the table prompt's row id
    round: int
    table: int
    prompt: str
    status: str  # open | paused | closed
    opened_at: datetime
    closes_at: datetime
    answered: list[str]  # letters that wrote or passed
    waiting: list[str]  # seated, reachable letters that have not


@dataclass(frozen=True)
class Line:
    """One message at a table as a facilitator reads it (`table_view`, REPORT)."""

    id: int  # the contribution id that `hide` takes
    at: datetime
    letter: str  # "*" for a facilitator's post
    kind: str  # message | pass | post
    text: str  # what the member wrote; "" once erased or for a pass
    hidden: bool
    held: bool


@dataclass(frozen=True)
class Report:
    """A member's REPORT: which seat asked, where, and the table's last lines."""

    participant_id: str
    letter: str
    round: int
    table: int
    prompt: str
    lines: list[Line]


# Where a REPORT goes: called inside the member's turn transaction, returns rows queued.
# The default tells every organiser (bot/services/notices.py); `register` takes another.
ReportSink = Callable[[AsyncSession, Settings, Report, datetime], Awaitable[int]]
