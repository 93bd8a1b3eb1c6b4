"""A deliberative poll's definition: `[[polls]]` in the assembly file, checked with every
mistake named by its place and line.

    [[polls]]
    id = "attitudes"
    title = { en = "Short questionnaire", fr = "...", es = "..." }
    reminder_hours = 24        # a reminder this long after a wave is sent (0: none)
    open_hours = 72            # answers are taken this long after a wave is sent

    [[polls.waves]]            # the same questions at each wave; the first and the last
    id = "before"              # are compared by `concorder poll report`
    session = "s1"             # this session's start (as moved) plus `hours` (negative:
    hours = -48                # before); or briefing = "b1" (its day, at the briefing
                               # time), or at = 2026-12-01T18:00:00Z

    [[polls.questions]]
    id = "buses-free"
    kind = "agree"             # a 1 to 5 agreement scale
    text = { en = "Buses should be free for under-18s.", ... }

    [[polls.questions]]
    id = "fare-share"
    kind = "knowledge"         # options A, B, C...; `answer` is the right one
    text = { en = "What share of the bus budget do fares pay?", ... }
    options = [{ key = "a", label = { en = "A tenth", ... } }, ...]
    answer = "b"
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, ValidationError, model_validator

from flows.config_file import AssemblyFile, ConfigError, Moment, Strict, place

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,23}$"
KINDS = ("agree", "knowledge")
LETTERS = "ABCDEFGH"
Localised = dict[str, str]


class PollError(ConfigError):
    """A poll definition that cannot be used; `problems` names each place."""


class PollOption(Strict):
    key: str = Field(pattern=ID_PATTERN)
    label: Localised


class PollQuestion(Strict):
    id: str = Field(pattern=ID_PATTERN)
    kind: str
    text: Localised
    options: list[PollOption] = Field(default_factory=list, max_length=len(LETTERS))
    answer: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> PollQuestion:
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r}: choose one of {', '.join(KINDS)}")
        keys = [o.key for o in self.options]
        if self.kind == "agree" and (self.options or self.answer):
            raise ValueError("an agree question has the 1 to 5 scale: no options, no answer")
        if self.kind == "knowledge":
            if len(keys) < 2:
                raise ValueError("a knowledge question needs at least two options")
            if len(set(keys)) != len(keys):
                raise ValueError("two options have the same key")
            if self.answer not in keys:
                raise ValueError(f"answer: give the key of the right option ({', '.join(keys)})")
        return self


class PollWave(Strict):
    id: str = Field(pattern=ID_PATTERN)
    session: str | None = None
    briefing: str | None = None
    hours: float = Field(0, ge=-24 * 60, le=24 * 60)
    at: Moment | None = None

    @model_validator(mode="after")
    def _one_anchor(self) -> PollWave:
        anchors = [a for a in (self.session, self.briefing, self.at) if a is not None]
        if len(anchors) > 1:
            raise ValueError("give one of session, briefing or at")
        if self.at is not None and self.hours:
            raise ValueError("hours counts from a session or a briefing, not from at")
        return self


class PollDef(Strict):
    id: str = Field(pattern=ID_PATTERN)
    title: Localised
    reminder_hours: float = Field(24, ge=0, le=24 * 14)
    open_hours: float = Field(72, gt=0, le=24 * 60)
    waves: list[PollWave] = Field(min_length=1, max_length=6)
    questions: list[PollQuestion] = Field(min_length=1, max_length=30)

    @model_validator(mode="after")
    def _unique(self) -> PollDef:
        for things, name in ((self.waves, "wave"), (self.questions, "question")):
            ids = [t.id for t in things]
            twice = sorted({i for i in ids if ids.count(i) > 1})
            if twice:
                raise ValueError(f"two {name}s have the id {twice[0]!r}")
        return self


class _List(Strict):
    polls: list[PollDef]


def _texts(poll: PollDef) -> list[tuple[tuple[Any, ...], Localised]]:
    out: list[tuple[tuple[Any, ...], Localised]] = [(("title",), poll.title)]
    for n, q in enumerate(poll.questions):
        out.append((("questions", n, "text"), q.text))
        out += [(("questions", n, "options", m, "label"), o.label) for m, o in enumerate(q.options)]
    return out


def polls_problems(
    polls: list[PollDef],
    languages: list[str],
    raw: list[Any],
    text: str,
    anchors: Anchors | None,
) -> list[str]:
    """What the field checks cannot see: a text missing in a language, an id used twice, a
    wave tied to a session or briefing the calendar does not have."""
    problems: list[str] = []
    data = {"polls": raw}
    seen: set[str] = set()
    for n, poll in enumerate(polls):
        if poll.id in seen:
            problems.append(
                _named(("polls", n, "id"), data, text, f"the id {poll.id!r} is used twice")
            )
        seen.add(poll.id)
        for where, texts in _texts(poll):
            for code in languages:
                if not (texts.get(code) or "").strip():
                    loc = ("polls", n, *where)
                    problems.append(_named(loc, data, text, f"no text in {code!r}"))
        for m, wave in enumerate(poll.waves if anchors is not None else []):
            for kind, wanted, known in (
                ("session", wave.session, anchors.sessions),
                ("briefing", wave.briefing, anchors.briefings),
            ):
                if wanted is not None and wanted not in known:
                    ids = ", ".join(sorted(known)) or "none"
                    message = f"no {kind} has the id {wanted!r} (ids: {ids})"
                    problems.append(_named(("polls", n, "waves", m, kind), data, text, message))
    return problems


class Anchors:
    """The session and briefing ids of the file's calendar (defaults s1, b1... as there)."""

    def __init__(self, raw: Any):
        def ids(table: str, prefix: str) -> set[str]:
            items = raw.get(table) if isinstance(raw.get(table), list) else []
            return {
                str(item.get("id", f"{prefix}{n}"))
                for n, item in enumerate(items, start=1)
                if isinstance(item, dict)
            }

        self.sessions = ids("sessions", "s")
        self.briefings = ids("briefings", "b")


def _named(loc: tuple[Any, ...], data: dict[str, Any], text: str, message: str) -> str:
    line = poll_line(text, loc)
    return f"{place(loc, data)}{f' (line {line})' if line else ''}: {message}"


def poll_line(text: str, loc: tuple[Any, ...]) -> int | None:
    """The line of a place inside `[[polls]]`, following the nested `[[polls.waves]]` and
    `[[polls.questions]]` tables (flows.config_file.line_of reads top-level tables only)."""
    lines = text.splitlines()
    if len(loc) < 2 or loc[0] != "polls" or not isinstance(loc[1], int):
        return None
    polls = [i for i, line in enumerate(lines) if re.match(r"^\s*\[\[\s*polls\s*\]\]", line)]
    if loc[1] >= len(polls):
        return None
    start = polls[loc[1]]
    end = polls[loc[1] + 1] if loc[1] + 1 < len(polls) else len(lines)
    rest = loc[2:]
    if len(rest) >= 2 and rest[0] in ("waves", "questions") and isinstance(rest[1], int):
        header = re.compile(rf"^\s*\[\[\s*polls\.{rest[0]}\s*\]\]")
        hits = [i for i in range(start, end) if header.match(lines[i])]
        if rest[1] < len(hits):
            start, rest = hits[rest[1]], rest[2:]
    key = next((k for k in rest if isinstance(k, str)), None)
    if key is not None:
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*[=.]")
        for i in range(start + 1, end):
            if lines[i].lstrip().startswith("["):  # the next table: the key is not there
                break
            if pattern.match(lines[i]):
                return i + 1
    return start + 1


def check(raw: Any, text: str, path: str, languages: list[str], calendar: Any) -> list[PollDef]:
    """The `polls` list of a parsed file, checked, or PollError naming every problem.
    `calendar` is the file's tables (for the session and briefing ids; None: unchecked)."""
    if not isinstance(raw, list):
        raise PollError(path, ["polls: write each poll as [[polls]]"])
    data = {"polls": raw}
    try:
        polls = _List.model_validate(data).polls
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown setting (check its spelling and its table)"
            problems.append(_named(tuple(error["loc"]), data, text, message))
        raise PollError(path, problems) from None
    anchors = Anchors(calendar) if calendar is not None else None
    problems = polls_problems(polls, languages, raw, text, anchors)
    if problems:
        raise PollError(path, problems)
    return polls


def polls_of(file: AssemblyFile, languages: list[str]) -> list[PollDef]:
    """The `[[polls]]` of an assembly file (none when it has none)."""
    if "polls" not in file.raw:
        return []
    return check(file.raw["polls"], file.text, file.path, languages, file.raw)


def plain(poll: PollDef) -> dict[str, Any]:
    """The definition as stored and as the conversation sees it (JSON)."""
    return poll.model_dump(mode="json")


def letter(n: int) -> str:
    """The letter of a knowledge question's option n (0: A)."""
    return LETTERS[n]
