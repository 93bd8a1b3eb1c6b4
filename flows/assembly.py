"""The assembly file (TOML): who is recruiting, the consent text, the registration questions.

Loading it checks everything a conversation will need, in every language the assembly
offers, and names the place of each problem ("questions #2 (id 'age') > options #1 >
label: no text in 'fr'"). The tables `sessions`, `briefings` and `schedule` belong to the
calendar and are kept as they are.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainValidator,
    ValidationError,
    model_validator,
)

from flows.config_file import AssemblyFile, ConfigError, Moment, Strict, line_of, problems_of
from flows.deliberation_config import Prompt, prompt_problems
from flows.i18n import ProperName, shipped_languages
from flows.retention import Retention, consent_problems, render_consent
from flows.text import fold

_DURATION = re.compile(r"^\s*(\d+)\s*(d|h|m)\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}
KEY_PATTERN = r"^[a-z0-9][a-z0-9_+-]{0,39}$"  # short: Telegram callback data is 64 bytes
# Words the recruitment flows answer themselves: an option may not be one of them.
RESERVED_KEYS = {
    "back",
    "withdraw",
    "retirer",
    "retirarme",
    "retiro",
    "mydata",
    "mesdonnees",
    "misdatos",
    "stop",
    "start",
    "help",
    "cancel",
    "end",
    "quit",
    "yes",
}


class AssemblyError(ConfigError):
    """The assembly file cannot be used; `problems` lists each place and what is wrong."""


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError("write a duration as a number and a unit: '3d', '12h' or '30m'")
    amount, unit = match.groups()
    return timedelta(**{_UNITS[unit]: int(amount)})


Duration = Annotated[timedelta, BeforeValidator(_duration)]
Localised = dict[str, str]  # language code -> text
EVERY_LANGUAGE = "*"  # the key of a text written once for every language


def _one_or_per_language(value: Any) -> Any:
    # A plain string is the same text in every language.
    if isinstance(value, str):
        return {EVERY_LANGUAGE: value}
    if not isinstance(value, dict):
        raise ValueError('give one text, or one per language: { en = "...", fr = "..." }')
    return value


_ARTICLE = re.compile(r"[^\W\d_]{1,6}['’]?")


def _article(value: str) -> str:
    if not _ARTICLE.fullmatch(value):
        raise ValueError("an article is one short word, such as le, la, l' or el")
    return value


# The assembly's name and its organiser: one string, or a table of the assembly's languages.
Title = Annotated[dict[str, str], BeforeValidator(_one_or_per_language)]
NAME_LENGTH = 120


class AssemblyInfo(Strict):
    name: Title
    # The article the name takes in running text, per language: { fr = "le", es = "el" }
    # gives "participer au Jury citoyen...", "retirarse del Jurado..." (flows/i18n.py).
    article: dict[str, Annotated[str, AfterValidator(_article)]] = Field(default_factory=dict)
    organiser: Title | None = None
    languages: list[str] = Field(default_factory=lambda: ["en"], min_length=1)
    default_language: str = "en"

    @model_validator(mode="after")
    def _known_languages(self) -> AssemblyInfo:
        shipped = shipped_languages()
        for code in self.languages:
            if code not in shipped:
                raise ValueError(
                    f"language {code!r} has no translation catalog "
                    f"(available: {', '.join(shipped)})"
                )
        if self.default_language not in self.languages:
            raise ValueError(f"default_language {self.default_language!r} is not in languages")
        for code in self.article:
            if code not in self.languages:
                raise ValueError(f"article: {code!r} is not one of the assembly's languages")
        return self

    def in_each_language(self, texts: Localised | None) -> Localised:
        """A name or organiser as {language: text} over exactly the assembly's languages."""
        if not texts:
            return {}
        return {code: localised(texts, code, self.default_language) for code in self.languages}


class Recruitment(Strict):
    # A person who has not replied gets one reminder this long after the invitation...
    remind_after: Duration = timedelta(days=3)
    # ...and the invitation lapses this long after the reminder.
    lapse_after: Duration = timedelta(days=4)
    registration_deadline: Moment | None = None
    # After the draw, the selected have this long to CONFIRM.
    confirm_within: Duration = timedelta(days=3)
    # Used for invitation links when the bot's own name cannot be asked of Telegram.
    telegram_bot_username: str | None = Field(None, pattern=r"^[A-Za-z][A-Za-z0-9_]{3,31}$")


class Consent(Strict):
    version: str = Field(min_length=1, max_length=64)
    text: Localised


class Option(Strict):
    key: str = Field(pattern=KEY_PATTERN)
    label: Localised


class Question(Strict):
    id: str = Field(pattern=KEY_PATTERN)
    text: Localised
    options: list[Option] = Field(min_length=2, max_length=12)

    @model_validator(mode="after")
    def _distinct_options(self) -> Question:
        seen: set[str] = set()
        for option in self.options:
            if option.key in RESERVED_KEYS:
                raise ValueError(
                    f"option key {option.key!r} is a reply word the service "
                    "keeps for itself; choose another"
                )
            if option.key in seen:
                raise ValueError(f"option key {option.key!r} appears twice")
            seen.add(option.key)
        return self


class QuotaRange(Strict):
    min: int = Field(ge=0)
    max: int = Field(ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> QuotaRange:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is more than max ({self.max})")
        return self


def _quota(value: Any) -> QuotaRange | float:
    """A value's quota: seats as {min, max}, or a target share of the panel (0.25)."""
    if isinstance(value, QuotaRange):
        return value
    if isinstance(value, dict):
        try:
            return QuotaRange.model_validate(value)
        except ValidationError as exc:
            raise ValueError(
                "; ".join(
                    f"{'.'.join(map(str, e['loc'])) + ': ' if e['loc'] else ''}"
                    f"{e['msg'].removeprefix('Value error, ')}"
                    for e in exc.errors()
                )
            ) from None
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 1:
        return float(value)
    raise ValueError("give seats as { min = 2, max = 4 } or a share of the panel such as 0.25")


Quota = Annotated[QuotaRange | float, PlainValidator(_quota)]


class Selection(Strict):
    """The stratified draw: panel and reserve sizes, households, quotas per category.

    A category is a registration question's id (values are its option keys) or an
    attribute known from the pool file (values as written there)."""

    panel_size: int = Field(ge=1, le=100_000)
    reserve_size: int = Field(0, ge=0)
    one_per_household: bool = True
    quotas: dict[str, dict[str, Quota]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _reachable(self) -> Selection:
        for category, values in self.quotas.items():
            if not values:
                raise ValueError(f"quotas > {category}: give at least one value")
            ranges = [q for q in values.values() if isinstance(q, QuotaRange)]
            if len(ranges) == len(values):
                low, high = sum(q.min for q in ranges), sum(q.max for q in ranges)
                if not low <= self.panel_size <= high:
                    raise ValueError(
                        f"quotas > {category}: the minimums add up to {low} and the maximums "
                        f"to {high}, so a panel of {self.panel_size} cannot meet them"
                    )
            shares = [q for q in values.values() if not isinstance(q, QuotaRange)]
            if len(shares) == len(values) and abs(sum(shares) - 1) > 0.02:
                raise ValueError(
                    f"quotas > {category}: the shares add up to {sum(shares):.2f}, not 1"
                )
        return self


class Groups(Strict):
    """[groups]: how the small-group tables are made (`concorder groups assign`)."""

    # A language is kept together at its own tables unless this is true.
    mix_languages: bool = False


class Assembly(Strict):
    assembly: AssemblyInfo
    recruitment: Recruitment = Recruitment()
    consent: Consent
    questions: list[Question] = Field(default_factory=list)
    selection: Selection | None = None
    # How long personal data is kept; None: nothing is erased on a schedule.
    retention: Retention | None = None
    groups: Groups = Groups()
    # The questions put to the small-group tables (flows/deliberation_config.py).
    prompts: list[Prompt] = Field(default_factory=list)
    # The calendar feature's tables, kept untouched.
    sessions: Any = None
    briefings: Any = None
    schedule: Any = None
    # [[ballots]], checked by flows.ballot_spec (assembly_of).
    ballots: Any = None
    # [[polls]], checked by flows.poll_spec (assembly_of).
    polls: Any = None

    @property
    def name(self) -> str:
        """The name in the default language: what the command line and records show."""
        return self.name_in(self.assembly.default_language)

    @property
    def names(self) -> Localised:
        """The name in each of the assembly's languages, with its article there if any."""
        article = self.assembly.article
        return {
            code: ProperName(name, article.get(code))
            for code, name in self.assembly.in_each_language(self.assembly.name).items()
        }

    @property
    def organisers(self) -> Localised:
        """Who runs it, in each of the assembly's languages ({} when the file says nothing)."""
        return self.assembly.in_each_language(self.assembly.organiser)

    def name_in(self, language: str) -> str:
        return localised(self.assembly.name, language, self.assembly.default_language)

    def organiser_in(self, language: str) -> str | None:
        if not self.assembly.organiser:
            return None
        return localised(self.assembly.organiser, language, self.assembly.default_language)

    @property
    def languages(self) -> list[str]:
        return self.assembly.languages

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.questions if q.id == question_id), None)

    def consent_text(self) -> dict[str, str]:
        """The consent text per language, its periods taken from [retention]."""
        return render_consent(dict(self.consent.text), self.retention)

    def facts(self) -> dict[str, Any]:
        """Plain data for flow contexts (the conversation never sees this class): a new
        dict each time over the same texts, which nobody changes (made once: every turn of
        every person asks, and the consent text alone took a rendering per language)."""
        return dict(self.facts_made_once)

    @cached_property
    def facts_made_once(self) -> dict[str, Any]:
        recruitment = self.recruitment
        return {
            "name": self.names,
            "languages": list(self.assembly.languages),
            "default_language": self.assembly.default_language,
            "consent_version": self.consent.version,
            "consent_text": self.consent_text(),
            "questions": [
                {
                    "id": q.id,
                    "text": dict(q.text),
                    "options": [{"key": o.key, "label": dict(o.label)} for o in q.options],
                }
                for q in self.questions
            ],
            "registration_deadline": recruitment.registration_deadline,
        }


def _untranslated(place: str, texts: Localised, languages: list[str]) -> list[str]:
    return [
        f"{place}: no text in {code!r}" for code in languages if not (texts.get(code) or "").strip()
    ]


def _quota_values_not_offered(assembly: Assembly) -> list[str]:
    """A quota on a registration question may only name that question's options."""
    if assembly.selection is None:
        return []
    problems = []
    for category, values in assembly.selection.quotas.items():
        question = assembly.question(category)
        if question is None:
            continue  # an attribute from the pool file
        keys = {option.key for option in question.options}
        problems += [
            f"selection > quotas > {category} > {value}: not an option "
            f"of question {category!r} ({', '.join(sorted(keys))})"
            for value in values
            if value not in keys
        ]
    return problems


def _repeated_labels(place: str, question) -> list[str]:
    """A reply is matched by number, key or label: two equal labels are ambiguous."""
    problems = []
    labels_seen: dict[str, set[str]] = {}
    for m, option in enumerate(question.options, start=1):
        for code, label in option.label.items():
            folded = fold(label)
            if folded in labels_seen.setdefault(code, set()):
                problems.append(
                    f"{place} > options #{m} > label: {label!r} repeats another option in {code!r}"
                )
            labels_seen[code].add(folded)
    return problems


def _question_problems(assembly: Assembly) -> list[str]:
    languages = assembly.assembly.languages
    problems: list[str] = []
    seen: set[str] = set()
    for n, question in enumerate(assembly.questions, start=1):
        place = f"questions #{n} (id {question.id!r})"
        if question.id in seen:
            problems.append(f"{place}: the id {question.id!r} is used twice")
        seen.add(question.id)
        problems += _untranslated(f"{place} > text", question.text, languages)
        for m, option in enumerate(question.options, start=1):
            problems += _untranslated(f"{place} > options #{m} > label", option.label, languages)
        problems += _repeated_labels(place, question)
    return problems


def _title_problems(assembly: Assembly, text: str) -> list[str]:
    """The name (and organiser) given per language must be given in each; a name is short."""
    info, problems = assembly.assembly, []
    for key, texts in (("name", info.name), ("organiser", info.organiser)):
        if texts is None:
            continue
        line = line_of(text, ("assembly", key))
        place = f"assembly > {key}" + (f" (line {line})" if line else "")
        if EVERY_LANGUAGE not in texts:
            problems += _untranslated(place, texts, info.languages)
        elif key == "name" and not texts[EVERY_LANGUAGE].strip():
            problems.append(f"{place}: give the assembly's name")
        if key == "name":
            problems += [
                f"{place}: {'' if code == EVERY_LANGUAGE else f'{code!r}: '}longer than "
                f"{NAME_LENGTH} characters"
                for code, name in texts.items()
                if len(name) > NAME_LENGTH
            ]
    return problems


def _missing_languages(assembly: Assembly) -> list[str]:
    """Every text must exist in every language the assembly offers, and the questions and
    quotas must agree with each other."""
    return [
        *_untranslated("consent > text", assembly.consent.text, assembly.assembly.languages),
        *_quota_values_not_offered(assembly),
        *_question_problems(assembly),
        *prompt_problems(assembly.prompts, assembly.assembly.languages, assembly.sessions),
    ]


def assembly_of(file: AssemblyFile) -> Assembly:
    """Check the assembly's tables of a file read once, or raise AssemblyError naming every
    problem."""
    raw = file.tables()
    try:
        assembly = Assembly.model_validate(raw)
    except ValidationError as exc:
        raise AssemblyError(file.path, problems_of(exc, raw, file.text)) from None
    problems = _title_problems(assembly, file.text) + _missing_languages(assembly)
    problems += consent_problems(dict(assembly.consent.text), assembly.retention)
    problems += _ballot_problems(file, assembly.assembly.languages)
    problems += _poll_problems(file, assembly.assembly.languages)
    if problems:
        raise AssemblyError(file.path, problems)
    return assembly


def _ballot_problems(file: AssemblyFile, languages: list[str]) -> list[str]:
    from flows.ballot_spec import BallotError, ballots_of

    try:
        ballots_of(file, languages)
    except BallotError as exc:
        return exc.problems
    return []


def _poll_problems(file: AssemblyFile, languages: list[str]) -> list[str]:
    from flows.poll_spec import PollError, polls_of

    try:
        polls_of(file, languages)
    except PollError as exc:
        return exc.problems
    return []


def parse_assembly(text: str, path: str = "assembly.toml") -> Assembly:
    return assembly_of(AssemblyFile.parse(text, path, AssemblyError))


def load_assembly(path: str | Path) -> Assembly:
    """Read and check an assembly file, or raise AssemblyError naming every problem."""
    return assembly_of(AssemblyFile.read(path, AssemblyError))


def localised(texts: Localised | str, language: str, default: str = "en") -> str:
    """The text in `language` (or written once for all), else the default language, else
    any."""
    if isinstance(texts, str):
        return texts
    return (
        texts.get(language)
        or texts.get(EVERY_LANGUAGE)
        or texts.get(default)
        or next(iter(texts.values()), "")
    )


def utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value is not None else None
