"""The words of facilitators' chat commands, in every shipped language, and how a message
is read as one: "T4 text", "ALL text", "PAUSE T4", "SHOW T4", "HIDE 123", "MOVE 4C T5"...

The words are data, as keywords are: a facilitator may type any language's word whatever
their own language. END is an opt-out word (Twilio's and ours), so a prompt ends with
CLOSE, CLORE or CERRAR.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flows.text import fold

POST, PROMPT, PAUSE, RESUME, CLOSE, HIDE, MOVE, STATS, SHOW = (
    "post",
    "prompt",
    "pause",
    "resume",
    "close",
    "hide",
    "move",
    "stats",
    "show",
)

VERBS = {
    "pause": PAUSE,
    "pausa": PAUSE,
    "resume": RESUME,
    "continue": RESUME,
    "continuer": RESUME,
    "reprise": RESUME,
    "continuar": RESUME,
    "seguir": RESUME,
    "close": CLOSE,
    "clore": CLOSE,
    "fermer": CLOSE,
    "cerrar": CLOSE,
    "terminar": CLOSE,
    "hide": HIDE,
    "masquer": HIDE,
    "cacher": HIDE,
    "ocultar": HIDE,
    "esconder": HIDE,
    "move": MOVE,
    "deplacer": MOVE,
    "mover": MOVE,
    "who": STATS,
    "stats": STATS,
    "qui": STATS,
    "quien": STATS,
    "show": SHOW,
    "voir": SHOW,
    "ver": SHOW,
    "prompt": PROMPT,
    "question": PROMPT,
    "pregunta": PROMPT,
}
ALL_WORDS = {"all", "tous", "toutes", "todos", "todas"}
TABLE_WORDS = {"t", "table", "mesa"}
TO_WORDS = {"to", "a", "vers", "en"}  # MOVE C TO T5
HELP_WORDS = {"help", "info", "aide", "ayuda"}  # a facilitator's HELP lists their commands

ALL = "all"
_TABLE = re.compile(r"^(?:t|table|mesa)(\d{1,4})$")
_SEAT = re.compile(r"^(\d{1,4})?([a-z]{1,2})$")  # "4c" or "c"
_PERSON = re.compile(r"^p[0-9a-z]{4,15}$")
_REF = re.compile(r"^#?([0-9a-z]{1,16})$")


@dataclass(frozen=True)
class Command:
    """A facilitator's command as typed. `tables`: "all", table numbers, or () (not said).
    `problem`: what did not parse ('the message', 'a table', a word), for the flow to say."""

    action: str
    tables: str | tuple[int, ...] = ()
    text: str = ""
    ref: str = ""
    member: str = ""  # MOVE: "c", "4c" or a participant id ("P1A2B3C4D5E6")
    problem: str = ""


def _split(text: str) -> list[str]:
    """The message's words as typed, the first one without a Telegram slash or @Bot."""
    parts = text.strip().split()
    if parts:
        parts[0] = parts[0].lstrip("/").split("@", 1)[0]
    return parts


def _target(parts: list[str]) -> tuple[str | int | None, int]:
    """A table ('T4', 'table 4', 'mesa 4') or ALL at the start of `parts`, and how many
    words it took; (None, 0) when there is none."""
    if not parts:
        return None, 0
    first = fold(parts[0])
    if first in ALL_WORDS:
        return ALL, 1
    if match := _TABLE.match(first):
        return int(match[1]), 1
    if first in TABLE_WORDS and len(parts) > 1 and fold(parts[1]).isdigit():
        return int(fold(parts[1])), 2
    return None, 0


def _targets(parts: list[str]) -> tuple[str | tuple[int, ...], str]:
    """Every table named in `parts` ("T4 T5", "ALL"), and the first word that is not one."""
    found: list[int] = []
    while parts:
        target, used = _target(parts)
        if target is None:
            return tuple(found), parts[0]
        if target == ALL:
            return ALL, (parts[1] if len(parts) > 1 else "")
        found.append(int(target))
        parts = parts[used:]
    return tuple(found), ""


def _rest(text: str, words: int) -> str:
    """The text after the first `words` words, spacing and lines kept."""
    rest = text.strip()
    for _ in range(words):
        rest = rest.split(None, 1)[1] if len(rest.split(None, 1)) > 1 else ""
    return rest.strip()


def parse(text: str) -> Command | None:
    """The facilitator's command a message is, or None when it is not shaped like one."""
    parts = _split(text)
    if not parts:
        return None
    target, used = _target(parts)
    if target is not None:  # "T4 text", "ALL text"
        tables = ALL if target == ALL else (int(target),)
        return Command(POST, tables, text=_rest(text, used))
    action = VERBS.get(fold(parts[0]))
    if action is None:
        return None
    rest = parts[1:]
    if action in (PAUSE, RESUME, CLOSE, STATS, SHOW):
        tables, stray = _targets(rest)
        return Command(action, tables, problem=stray)
    if action == PROMPT:
        target, used = _target(rest)
        tables = () if target is None else ALL if target == ALL else (int(target),)
        return Command(action, tables, text=_rest(text, 1 + used))
    if action == HIDE:
        match = _REF.match(fold(rest[0])) if rest else None
        return Command(
            action, ref=match[1].upper() if match else "", problem="" if match else "ref"
        )
    return _move(rest)


def _move(rest: list[str]) -> Command:
    """MOVE 4C T5, MOVE C T5 (one's only table), MOVE P1A2B3C4D5E6 T5; TO is allowed."""
    if not rest:
        return Command(MOVE, problem="member")
    member = fold(rest[0])
    if not (_SEAT.match(member) or _PERSON.match(member)):
        return Command(MOVE, problem="member")
    after = [w for w in rest[1:] if fold(w) not in TO_WORDS]
    target, used = _target(after)
    if not isinstance(target, int) or used != len(after):
        return Command(MOVE, member=member, problem="table")
    return Command(MOVE, (target,), member=member)


def looks_like_command(text: str) -> bool:
    """Worth finding out whether the sender facilitates: a command's shape, or HELP."""
    return parse(text) is not None or fold(text) in HELP_WORDS
