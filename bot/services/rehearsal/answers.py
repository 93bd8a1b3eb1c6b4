"""What a simulated person sends: read from the last message the service delivered to them
(its buttons on Telegram, its numbered options by SMS) and where their conversation waits,
shaped by their behaviour (bot/services/rehearsal/people.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bot.services.rehearsal.people import LANGUAGE_WORDS, WRONG, Person
from flows.assembly import Assembly
from flows.leaving import LEAVING

SAYINGS = {
    "en": ["More buses in the evening, please.", "Safer crossings near the schools."],
    "fr": ["Plus de bus le soir, s'il vous plaît.", "Des passages plus sûrs près des écoles."],
    "es": ["Más autobuses por la tarde, por favor.", "Cruces más seguros cerca de las escuelas."],
}
# "1 Yes" or a poll's "A. About a tenth": what to send, then the label.
NUMBERED = re.compile(r"^(\d{1,2}|[A-Z](?=\.))\.? (.+)$")


def options_of(message: dict[str, Any]) -> list[tuple[str, str]]:
    """(what to send, label) for each option a message offers: its buttons on Telegram,
    its numbered (or lettered) lines by SMS."""
    if message.get("buttons"):
        return [("button:" + b["data"], b["label"]) for b in message["buttons"]]
    found = []
    for line in message["text"].split("\n"):
        match = NUMBERED.match(line.strip())
        if match:
            found.append((match[1], match[2].strip()))
    return found


def labels_of(assembly: Assembly) -> dict[str, tuple[str, str]]:
    """Every option label of the questions, in every language -> (category, key)."""
    known = {}
    for question in assembly.questions:
        for option in question.options:
            for text in _texts(option.label):
                known[text] = (question.id, option.key)
    return known


def _texts(label: Any) -> list[str]:
    if isinstance(label, str):
        return [label]
    if isinstance(label, dict):
        return [str(v) for v in label.values()]
    return [str(v) for v in getattr(label, "values", lambda: [])()]


@dataclass(frozen=True)
class Reply:
    """What a person sends: text (or a button press) on a channel; `why` names a wrong
    or deliberate message in the report; `silence_expected` when no answer is due."""

    channel: str
    text: str = ""
    button: str | None = None
    why: str = "answer"
    silence_expected: bool = False


def decide(
    person: Person, flow: str | None, step: str | None, labels: dict[str, tuple[str, str]]
) -> Reply | None:
    """What the person sends now, given the last message that asked them something and
    where their conversation waits (flow, step); None to stay silent."""
    b = person.behaviour
    message = person.last
    if message is not None and person.dropped and flow == LEAVING and options_of(message):
        # Someone holding a place is asked before WITHDRAW takes it: they meant it.
        return _send(person, options_of(message)[0], why="WITHDRAW confirmed")
    if message is None or person.dropped or person.stopped:
        return None
    if b.drop and flow == b.drop_at:
        return _drop(person, flow)
    if b.switches and person.code and not person.switched and person.handle is None:
        person.switched, person.channel = True, "telegram"
        return Reply("telegram", f"/start {person.code}", why="switched to Telegram")
    if b.speaks and not person.spoke_language:
        person.spoke_language = True
        return Reply(person.channel, LANGUAGE_WORDS[b.speaks], why="another language")
    options = options_of(message)
    if b.mistake and not person.mistaken and options:
        person.mistaken = True
        return Reply(person.channel, WRONG[b.mistake], why=f"wrong first ({b.mistake})")
    if flow == "ballot" and step == "choose":
        return _vote(person, options)
    if not options:
        return None
    pick = _choice(person, flow, options, labels)
    return _send(person, pick)


def _drop(person: Person, flow: str | None) -> Reply | None:
    b = person.behaviour
    person.dropped = True
    if b.drop == "stop":
        person.stopped = True
        return Reply(person.channel, "STOP", why="STOP")
    if b.drop == "withdraw":
        return Reply(person.channel, "WITHDRAW", why="WITHDRAW")
    if b.drop == "decline":
        options = options_of(person.last or {"text": ""})
        if flow in ("invitation", "consent", "confirmation") and len(options) >= 2:
            return _send(person, options[1], why="declined")
        return Reply(person.channel, "WITHDRAW", why="WITHDRAW")
    return None  # silence from here on


def _choice(person, flow, options, labels) -> tuple[str, str]:
    """Their true answer to a question, else the first option (yes, I agree, confirm)."""
    for option in options:
        known = labels.get(option[1])
        if known and person.answers.get(known[0]) == known[1]:
            return option
    if flow == "poll":
        return person.rng.choice(options)
    return options[0]


def _vote(person: Person, options: list[tuple[str, str]]) -> Reply:
    if person.behaviour.vote == "invalid" and not person.wrong_vote_sent:
        person.wrong_vote_sent = True
        return Reply(person.channel, "99", why="invalid vote")
    if options:
        return _send(person, person.rng.choice(options), why="vote")
    return Reply(person.channel, str(person.rng.randint(1, 5)), why="vote")


def _send(person: Person, option: tuple[str, str], why: str = "answer") -> Reply:
    value = option[0]
    if value.startswith("button:"):
        return Reply("telegram", button=value.removeprefix("button:"), why=why)
    return Reply(person.channel, value, why=why)


def saying(person: Person, language: str) -> str:
    return person.rng.choice(SAYINGS.get(language) or SAYINGS["en"])


def delay(person: Person, minutes: tuple[int, int] = (1, 20)) -> timedelta:
    """How long the person takes to reply, in whole five minutes (people who reply in
    the same five minutes are taken together, which keeps the clock's moments few)."""
    return timedelta(minutes=5 * (person.rng.randint(*minutes) // 5 + 1))


def late_by(person: Person, reminder_after: timedelta | None) -> timedelta:
    """How long a late person leaves a question: past the reminder when there is one."""
    base = reminder_after or timedelta(hours=20)
    return base + timedelta(hours=person.rng.randint(2, 20))
