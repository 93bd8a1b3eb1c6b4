"""Simulated participants: who they are and how they behave, drawn from the seed.

Each person gets true answers in the assembly's categories and a behaviour (prompt or
late, a wrong first reply, another language, a switch from SMS to Telegram, a drop-out,
how they vote). What they send follows from what the service delivered to them, never
from a script (bot/services/rehearsal/answers.py).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import datetime
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
