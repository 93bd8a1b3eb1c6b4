"""What a facilitator's commands may know (`Facts.facilitation`), filled by
bot.services.facilitation only for a chat that may facilitate and a message that looks
like one of their commands."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TableFacts:
    """One table of the round under way, as its facilitators see it."""

    number: int
    letters: list[str] = field(default_factory=list)  # the seats, in order
    spoken: dict[str, int] = field(default_factory=dict)  # letter -> messages this prompt
    passed: list[str] = field(default_factory=list)  # letters who said PASS
    prompt: str | None = None  # the prompt under way ("open" or "paused"), if any
    paused: bool = False


@dataclass(frozen=True)
class LineFacts:
    """One line of a table's prompt as SHOW lists it: its number (what HIDE takes)."""

    id: int
    letter: str  # "*" for a facilitator's post
    kind: str  # message | pass | post
    text: str
    held: bool = False  # kept back (fair share, or the table paused), not relayed yet


@dataclass(frozen=True)
class FacilitationFacts:
    """The round under way and the tables this chat may act on in it."""

    round: int | None  # None: no tables are allocated
    by: str = "facilitator"  # who acts, in the audit trail: "organiser:3", "facilitator:7"
    table_numbers: list[int] = field(default_factory=list)  # every table of the round
    mine: list[int] | None = None  # the tables this chat facilitates; None: every table
    tables: dict[int, TableFacts] = field(default_factory=dict)  # those it may act on
    # HIDE: the table of the message named, or None when there is no such message.
    hide_table: int | None = None
    hidden_before: bool = False  # that message was hidden already
    # MOVE by participant id: their table and letter in the round.
    member_seat: tuple[int, str] | None = None
    # SHOW: the last lines of each table's latest prompt this round.
    lines: dict[int, list[LineFacts]] = field(default_factory=dict)
