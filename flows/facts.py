"""What a flow may know about the world, as typed values: `Context.facts`.

The service's facts providers (bot/recruitment.py, bot/organisers.py, scheduler/facts.py)
each return some of these fields by name; bot/service.py builds one `Facts` from them, so
a field nobody declared is an error rather than a value no flow reads. Every field is None
when its provider has nothing to say (no assembly, not an organiser, not on the panel).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flows.facilitation_facts import FacilitationFacts

Localised = dict[str, str]  # language code -> text ("*": the same in every language)


@dataclass(frozen=True)
class SelectionFacts:
    """This person's seat after the draw."""

    status: str  # store.recruitment: selected, reserve, confirmed, declined...
    confirm_by: datetime | None = None  # the deadline to CONFIRM, for the selected


@dataclass(frozen=True)
class RecruitmentFacts:
    """The assembly as the recruitment flows see it, and where this person stands in it
    (bot/recruitment.py; the first seven fields are Assembly.facts()). With no assembly,
    every field is empty."""

    name: Localised | None = None  # the assembly's, per language
    languages: list[str] = field(default_factory=list)
    default_language: str = "en"
    consent_version: str = ""
    consent_text: Localised = field(default_factory=dict)
    # Each {"id", "text": Localised, "options": [{"key", "label": Localised}]}.
    questions: list[dict[str, Any]] = field(default_factory=list)
    registration_deadline: datetime | None = None
    known: dict[str, str] | None = None  # answers the pool file already gives, by question
    invitation_status: str | None = None  # None: nobody we invited
    selection: SelectionFacts | None = None
    outcome: str | None = None  # what the draw decided, once it has
    timezone: str | None = None  # the person's, else the assembly's
    invite_link: str | None = None  # the Telegram link, only when an invitation is sent


@dataclass(frozen=True)
class OrganiserFacts:
    """A registered organiser writing from one of their own chats or numbers."""

    id: int
    sms_failures: int = 0  # wrong SMS confirmation codes in a row
    sms_locked_until: str | None = None  # ISO time; SMS commands are refused until then


@dataclass(frozen=True)
class AudienceFacts:
    """How many people a broadcast to one audience would reach (bot/broadcast.py)."""

    total: int = 0
    reachable: int = 0
    held: int = 0  # reachable, but in their quiet hours now
    telegram: int = 0
    sms: int = 0


@dataclass(frozen=True)
class PendingBroadcast:
    """The organiser's previewed broadcast waiting for SEND or DISCARD."""

    audience: str
    recipients: int
    expires_at: str  # ISO time
    origin: str | None = None  # the channel it was previewed on
    code_hash: str | None = None  # an SMS preview's code, as code_digest() stores it


@dataclass(frozen=True)
class ScheduledSession:
    """A session of the running calendar, moves applied, for /schedule and LATE."""

    number: int  # its place in the file, 1 = the first
    id: str
    title: Localised
    start: datetime
    end: datetime  # the start when the file gives no end
    place: Localised | None = None
    call_in: str | None = None


@dataclass(frozen=True)
class CalendarSession:
    """A session in the member's language, times as ISO UTC strings."""

    id: str
    title: str
    start: str
    end: str | None = None
    place: str | None = None
    call_in: str | None = None


@dataclass(frozen=True)
class CalendarBriefing:
    """A briefing rendered in the member's language: whole (Telegram) and in SMS pages."""

    title: str
    document: str
    pages: list[str]


@dataclass(frozen=True)
class CalendarFacts:
    """The calendar a panel member's replies (TIME, MORE, READ, LATE) are about."""

    timezone: str  # the member's, else the assembly's
    default_timezone: str  # the assembly's
    briefing_time: str  # HH:MM, the member's choice or the schedule's
    quiet_hours: str
    sessions: list[CalendarSession]
    briefings: dict[str, CalendarBriefing]

    @classmethod
    def from_plain(cls, plain: dict[str, Any]) -> CalendarFacts:
        """From scheduler.facts.calendar_facts, whose plain form the jobs use too."""
        return cls(
            timezone=plain["timezone"],
            default_timezone=plain["default_timezone"],
            briefing_time=plain["briefing_time"],
            quiet_hours=plain["quiet_hours"],
            sessions=[CalendarSession(**s) for s in plain["sessions"]],
            briefings={key: CalendarBriefing(**b) for key, b in plain["briefings"].items()},
        )


@dataclass(frozen=True)
class BallotFacts:
    """A ballot this person is on the roll of (bot/services/ballots/voting.py)."""

    id: str
    status: str  # open | closed
    definition: dict[str, Any]  # flows.ballot_spec.plain
    # A Belenios ballot's private credential for this voter, while it is open.
    credential: str | None = None
    voted: bool = False


@dataclass(frozen=True)
class PollFacts:
    """A poll wave this person was asked (bot/services/polls/answering.py)."""

    id: str
    wave: str
    status: str  # open | closed
    definition: dict[str, Any]  # flows.poll_spec.plain


@dataclass(frozen=True)
class StatementFacts:
    """A statement sent to the panel, and this person's current answer to it."""

    id: int
    texts: Localised
    vote: int | None = None  # 1 agree, -1 disagree, 0 pass; None: not answered


@dataclass(frozen=True)
class TableFacts:
    """A seated member's table while a prompt is open there (bot/services/deliberation)."""

    table_prompt: int  # the open prompt's row id
    round: int
    table: int
    letter: str
    paused: bool = False
    relay_mode: str = "every"  # what they get now: "every" message, or a "digest"
    closed_at: datetime | None = None  # set: none is open, the last one closed then


@dataclass(frozen=True)
class Facts:
    """Everything a flow may know beyond the participant's own state."""

    service_name: str | None = None  # what HELP calls the service (default Concorder Relay)
    assembly_name: Localised | None = None  # per language (HELP names it)
    default_flow: str | None = None  # where someone with no flow open starts (else welcome)
    recruitment: RecruitmentFacts | None = None
    calendar: CalendarFacts | None = None  # panel members only
    panel: bool | None = None  # holds a seat (selected or confirmed)
    organiser: OrganiserFacts | None = None
    audiences: dict[str, AudienceFacts] | None = None  # by audience ("all", "group:x")
    pending_broadcast: PendingBroadcast | None = None
    confirmation_code: str | None = None  # for an SMS preview made in this turn
    sessions: list[ScheduledSession] | None = None  # organisers and panel members
    timezone: str | None = None  # the calendar's, with `sessions`
    ballots: list[BallotFacts] | None = None  # open or closed ballots this person is on
    # A fresh receipt code, for a vote cast in this turn; in a Belenios ballot the prepared
    # ballot's tracker, None when it could not be encrypted.
    ballot_tracker: str | None = None
    poll: PollFacts | None = None  # the poll wave this person is answering
    table: TableFacts | None = None  # a prompt is open at this member's table
    statements: list[StatementFacts] | None = None  # the opinion map's, once sent to them
    facilitation: FacilitationFacts | None = None  # a facilitator's command
