"""Simulated participants: who they are and how they behave, drawn from the seed.

Each person gets true answers in the assembly's categories and a behaviour (prompt or
late, a wrong first reply, another language, a switch from SMS to Telegram, a drop-out,
how they vote). They decide what to send from the last message the service delivered to
them (its buttons or numbered options) and from where their conversation waits, never
from a script: when the service asks something unexpected, they answer what was asked.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.addresses import BadAddress
from bot.services.recruitment import pool_phone
from flows.assembly import Assembly

# Steps of the conversation a person may drop out at (the flows' names), in order.
DROP_STEPS = ("invitation", "consent", "registration", "confirmation", "ballot")
WRONG = {
    "garbage": "asdf qwer",
    "emoji": "\U0001f44d\U0001f642",
    "long": "Well, I am not sure what you mean, could you tell me more about it first? " * 4,
    "misspelt": "yse",
}
LANGUAGE_WORDS = {"en": "english", "fr": "francais", "es": "espanol"}
SAYINGS = {
    "en": ["More buses in the evening, please.", "Safer crossings near the schools."],
    "fr": ["Plus de bus le soir, s'il vous plaît.", "Des passages plus sûrs près des écoles."],
    "es": ["Más autobuses por la tarde, por favor.", "Cruces más seguros cerca de las escuelas."],
}
NUMBERED = re.compile(r"^(\d{1,2}) (.+)$")
CODE = re.compile(r"start=([A-Za-z0-9_-]+)")


@dataclass
class Behaviour:
    timing: str  # "prompt" | "late" (after a reminder, or a day later) | "silent"
    mistake: str | None  # a wrong first reply: one of WRONG
    speaks: str | None  # switches the conversation to this shipped language
    switches: bool  # SMS to Telegram through the invitation's link
    drop: str | None  # "stop" | "withdraw" | "decline" | "silence"
    drop_at: str | None  # the step (a flow's name) where they drop
    vote: str  # "valid" | "invalid" (then valid) | "revote"
    speaks_at_table: bool


@dataclass
class Person:
    """One simulated participant and what has happened to them so far."""

    label: str  # "S001": what the report calls them until the service names them
    language: str  # their phone's language, as the pool lists it
    phone: str | None
    handle: str | None  # a Telegram handle: invited by letter when there is no phone
    household: str
    answers: dict[str, str]  # their true value in each category
    behaviour: Behaviour
    rng: random.Random
    pool_attributes: dict[str, str] = field(default_factory=dict)
    participant_id: str | None = None
    chat: str = ""  # their Telegram chat id, once they use Telegram
    channel: str = "sms"
    due: datetime | None = None  # when they next reply
    read: list[dict[str, Any]] = field(default_factory=list)  # messages not acted on
    last: dict[str, Any] | None = None  # the latest message that asked something
    code: str | None = None  # the invitation code they can open in Telegram
    mistaken: bool = False
    spoke_language: bool = False
    switched: bool = False
    dropped: bool = False
    stopped: bool = False
    voted: int = 0  # votes cast (a revote casts two)
    wrong_vote_sent: bool = False
    contributed: set[str] = field(default_factory=set)  # prompts spoken at
    prompt: str | None = None  # a table's question they have not spoken to yet
    waited: set[str] = field(default_factory=set)  # steps a late person has put off

    @property
    def address(self) -> str:
        return self.chat if self.channel == "telegram" else (self.phone or "")


def make_people(
    assembly: Assembly, count: int, seed: str, pool_rows: list[dict[str, str]], region: str = "GB"
) -> list[Person]:
    """`count` people with behaviours drawn from `seed`: the pool file's rows (shuffled)
    when it has that many, else people generated in the draw's categories."""
    rng = random.Random(f"people:{seed}")
    categories = _categories(assembly)
    languages = list(assembly.assembly.languages)
    rows = _one_row_each(pool_rows, region)
    rng.shuffle(rows)
    people = []
    for n in range(count):
        own = random.Random(f"{seed}:{n}")
        if count <= len(rows):
            row = rows[n]
            language = row.get("language") or assembly.assembly.default_language
            pool = {c: row[c] for c in categories if row.get(c)}
            phone, handle = row.get("phone") or None, row.get("telegram") or None
            household = row.get("household") or f"H{n:05d}"
        else:
            language = languages[0] if own.random() < 0.7 else own.choice(languages)
            pool = _pool_values(assembly, categories, own)
            handle = f"sim_person_{n:05d}" if own.random() < 0.1 else None
            phone = None if handle and own.random() < 0.5 else f"+4477009{n:05d}"
            household = f"H{n // 2:05d}" if own.random() < 0.1 else f"H{n:05d}x"
        answers = {c: pool.get(c) or _pick(own, w) for c, w in categories.items()}
        people.append(
            Person(
                label=f"S{n + 1:03d}",
                language=language,
                phone=phone,
                handle=handle,
                household=household,
                answers=answers,
                behaviour=_behaviour(own, languages, language),
                rng=own,
                pool_attributes=pool,
                chat=str(7_100_000 + n),
                channel="sms" if phone else "telegram",
            )
        )
    return people


def _one_row_each(rows: list[dict[str, str]], region: str) -> list[dict[str, str]]:
    """A person listed twice (the same phone or handle) is one person, as the import has it."""
    seen: set[str] = set()
    kept = []
    for row in rows:
        keys = {k for k in (_phone(row.get("phone"), region), row.get("telegram")) if k}
        if keys & seen:
            continue
        seen |= keys
        kept.append(row)
    return kept


def _phone(number: str | None, region: str) -> str | None:
    try:
        return pool_phone(number, region) if number else None
    except BadAddress:
        return number


def _categories(assembly: Assembly) -> dict[str, dict[str, float]]:
    """Every category a person has a value in (the questions' and the quotas'), each value
    weighted by the middle of its quota, so that people come roughly as the panel wants."""
    values: dict[str, dict[str, float]] = {}
    for question in assembly.questions:
        values[question.id] = {o.key: 1.0 for o in question.options}
    for category, quota in _quotas(assembly).items():
        weights = {value: (q.min + q.max) / 2 for value, q in quota.items() if hasattr(q, "min")}
        if weights and sum(weights.values()) > 0:
            values[category] = {**values.get(category, {}), **weights}
    return values


def _quotas(assembly: Assembly) -> dict[str, dict[str, Any]]:
    return (assembly.selection.quotas or {}) if assembly.selection else {}


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    keys = list(weights)
    return rng.choices(keys, [weights[k] for k in keys])[0]


def _pool_values(assembly: Assembly, categories: dict[str, dict[str, float]], rng) -> dict:
    """What a pool file knows: the quota categories no question asks, and sometimes more."""
    asked = {q.id for q in assembly.questions}
    known = {c: _pick(rng, w) for c, w in categories.items() if c not in asked}
    for category in sorted(asked & set(_quotas(assembly))):
        if rng.random() < 0.5:
            known[category] = _pick(rng, categories[category])
    return known


def _behaviour(rng: random.Random, languages: list[str], own: str) -> Behaviour:
    roll = rng.random()
    drop = None
    if roll < 0.06:
        drop = "stop"
    elif roll < 0.11:
        drop = "withdraw"
    elif roll < 0.17:
        drop = "decline"
    elif roll < 0.21:
        drop = "silence"
    drop_at = rng.choice(DROP_STEPS) if drop else None
    if drop == "withdraw" and drop_at == "invitation":
        drop_at = "registration"
    others = [code for code in languages if code != own and code in LANGUAGE_WORDS]
    timing = rng.choices(["prompt", "late", "silent"], [0.72, 0.2, 0.08])[0]
    return Behaviour(
        timing=timing,
        mistake=rng.choice(list(WRONG)) if rng.random() < 0.25 else None,
        speaks=rng.choice(others) if others and rng.random() < 0.1 else None,
        switches=rng.random() < 0.15,
        drop=drop,
        drop_at=drop_at,
        vote=rng.choices(["valid", "invalid", "revote"], [0.7, 0.2, 0.1])[0],
        speaks_at_table=rng.random() < 0.85,
    )


# ---------------------------------------------------------------- reading and replying


def options_of(message: dict[str, Any]) -> list[tuple[str, str]]:
    """(what to send, label) for each option a message offers: its buttons on Telegram,
    its numbered lines by SMS."""
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
