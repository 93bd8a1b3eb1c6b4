"""A ballot's definition: `[[ballots]]` in the assembly file, or a file of its own given to
`concorder ballot create`. Loading it names every mistake by its place and line.

    [[ballots]]
    id = "r1"
    title = { en = "Recommendation 1", fr = "...", es = "..." }
    question = { en = "Should the city ...?", fr = "...", es = "..." }
    method = "yes_no"            # yes_no | single | approval | ranking | scale | majority_judgment
    options = [{ key = "bus", label = { en = "Bus", ... }, words = { fr = "autobus" } }]
    voters = "panel"             # the confirmed panel; or "round:2" (seated in round 2 of the
                                 # small-group tables) or "table:2:4" (round 2, table 4)
    quorum = 0.5                 # a share of the voters, or a number of voters
    opens_at = 2026-12-05T10:00:00Z     # optional: else `concorder ballot open`
    closes_at = 2026-12-05T12:00:00Z    # optional: else `concorder ballot close`
    results_at = "https://example.org/results"  # optional: where the receipts are published

Method parameters: `majority` (yes_no, single: "simple", "absolute", "plurality" or a
supermajority such as "2/3"), `max_choices` (approval), `levels`, `level_labels`, `threshold_level`,
`threshold_share` (scale), `grades` (majority judgment: labels, best first). A yes/no ballot
may leave out its options (Yes and No in every language). `system = "belenios"` runs a
yes_no, single or approval ballot as a verifiable Belenios election.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError, model_validator

from flows.config_file import AssemblyFile, ConfigError, Moment, Strict, problems_of
from flows.text import fold

METHODS = ("yes_no", "single", "approval", "ranking", "scale", "majority_judgment")
# What a Belenios election counts homomorphically: one question, 0/1 per answer.
BELENIOS_METHODS = ("yes_no", "single", "approval")
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,23}$"
KEY_PATTERN = r"^[a-z0-9][a-z0-9_+-]{0,23}$"
VOTERS_PATTERN = r"^(panel|round:[1-9][0-9]*|table:[1-9][0-9]*:[1-9][0-9]*)$"
# Replies the ballot conversation keeps for itself at its confirmation step and keywords.
RESERVED = {"yes", "no", "vote", "stop", "start", "help", "withdraw", "mydata", "done"}
# Words other conversations take first, whatever is being asked (a panel member's MORE,
# READ), and the calendar's button keys: no option may be one of them.
TAKEN = {"more", "suite", "plus", "mas", "siguiente", "read", "lu", "leido", "voter", "votar"}
TAKEN |= {"cal_read", "cal_late", "cal_absent", "retirer", "retirarme", "retiro", "mesdonnees"}
TAKEN |= {"misdatos", "stop", "start", "help", "aide", "ayuda", "info", "vote", "withdraw"}
Localised = dict[str, str]


class BallotError(ConfigError):
    """A ballot definition that cannot be used; `problems` names each place."""


class BallotOption(Strict):
    key: str = Field(pattern=KEY_PATTERN)
    label: Localised
    # Short words a voter may reply by SMS instead of the number, per language.
    words: dict[str, str | list[str]] = Field(default_factory=dict)


class BallotDef(Strict):
    id: str = Field(pattern=ID_PATTERN)
    title: Localised
    question: Localised
    method: str
    options: list[BallotOption] = Field(default_factory=list, max_length=20)
    voters: str = Field("panel", pattern=VOTERS_PATTERN)
    quorum: float | int = 0
    opens_at: Moment | None = None
    closes_at: Moment | None = None
    max_choices: int | None = Field(None, ge=1)
    levels: int | None = Field(None, ge=2, le=10)
    level_labels: list[Localised] = Field(default_factory=list)
    threshold_level: int | None = Field(None, ge=1)
    threshold_share: float | None = Field(None, gt=0, le=1)
    grades: list[Localised] = Field(default_factory=list, max_length=7)
    # yes_no and single: "simple" (default), "absolute", "plurality" or a share "2/3".
    majority: str | None = Field(None, pattern=r"^(simple|absolute|plurality|[0-9]+/[0-9]+)$")
    # Where the list of receipts is published (a web address, a notice board), told to
    # every voter with the results: one text, or one per language.
    results_at: str | Localised | None = None
    # "belenios": a verifiable election run with belenios-tool (README, "Verifiable ballots").
    system: str | None = Field(None, pattern=r"^belenios$")

    @model_validator(mode="after")
    def _consistent(self) -> BallotDef:
        problem = _method_problem(self) or _general_problem(self)
        if problem:
            raise ValueError(problem)
        return self


def _method_problem(b: BallotDef) -> str | None:
    if b.method not in METHODS:
        return f"method {b.method!r}: choose one of {', '.join(METHODS)}"
    if b.system == "belenios" and b.method not in BELENIOS_METHODS:
        return (
            f'system = "belenios" runs {", ".join(BELENIOS_METHODS)} ballots; {b.method} '
            "would need Belenios's mixnet questions, which this service does not run "
            "(leave system out for the service's own count)"
        )
    if b.method == "scale":
        if not b.levels:
            return "a scale ballot needs levels (e.g. levels = 5)"
        if b.options:
            return "a scale ballot has levels, not options"
        if b.level_labels and len(b.level_labels) != b.levels:
            return f"level_labels: give one label per level ({b.levels})"
        if b.threshold_level is not None and b.threshold_level > b.levels:
            return f"threshold_level {b.threshold_level} is above the levels"
    elif b.method != "yes_no" and len(b.options) < 2:
        return "give at least two options"
    if b.method == "majority_judgment" and len(b.grades) < 2:
        return "majority judgment needs grades (at least two, best first)"
    if b.method == "approval" and b.max_choices and b.max_choices > len(b.options):
        return "max_choices is more than the number of options"
    return None


def _general_problem(b: BallotDef) -> str | None:
    if isinstance(b.quorum, float) and not 0 <= b.quorum <= 1:
        return "quorum: a share between 0 and 1, or a whole number of voters"
    if b.opens_at and b.closes_at and b.closes_at <= b.opens_at:
        return "closes_at is not after opens_at"
    keys = [o.key for o in b.options]
    if len(set(keys)) != len(keys):
        return "two options have the same key"
    kept = RESERVED if b.method != "yes_no" else RESERVED - {"yes", "no"}
    if set(keys) & kept:
        return f"option key {sorted(set(keys) & kept)[0]!r} is a reply word the service keeps"
    return None


def ballots_problems(ballots: list[BallotDef], languages: list[str]) -> list[str]:
    """Texts missing in a language, ids used twice, two options read alike."""
    problems: list[str] = []
    seen: set[str] = set()
    for n, ballot in enumerate(ballots, start=1):
        place = f"ballots #{n} (id {ballot.id!r})"
        if ballot.id in seen:
            problems.append(f"{place}: the id {ballot.id!r} is used twice")
        seen.add(ballot.id)
        texts = [("title", ballot.title), ("question", ballot.question)]
        texts += [(f"options #{m} > label", o.label) for m, o in enumerate(ballot.options, 1)]
        texts += [(f"level_labels #{m}", t) for m, t in enumerate(ballot.level_labels, 1)]
        texts += [(f"grades #{m}", t) for m, t in enumerate(ballot.grades, 1)]
        if isinstance(ballot.results_at, dict):
            texts.append(("results_at", ballot.results_at))
        for where, text in texts:
            problems += [
                f"{place} > {where}: no text in {code!r}"
                for code in languages
                if not (text.get(code) or "").strip()
            ]
        problems += _alike(place, ballot, languages)
    return problems


def _alike(place: str, ballot: BallotDef, languages: list[str]) -> list[str]:
    """A reply is matched by number, key, label or word: two options read alike are
    ambiguous, and an option may not read as a number."""
    problems = []
    for code in languages:
        seen: dict[str, str] = {}
        for option in ballot.options:
            for word in option_words(option.model_dump(), code):
                if word.isdigit():
                    problems.append(f"{place} > options ({option.key}): {word!r} is a number")
                elif word in TAKEN:
                    problems.append(
                        f"{place} > options ({option.key}): {word!r} is a reply word the "
                        "service keeps for itself"
                    )
                elif seen.get(word, option.key) != option.key:
                    problems.append(
                        f"{place} > options: {word!r} names both {seen[word]!r} and "
                        f"{option.key!r} in {code!r}"
                    )
                seen[word] = option.key
    return problems


def option_words(option: dict[str, Any], language: str) -> set[str]:
    """What a voter may write for an option in their language (folded)."""
    words = option.get("words", {}).get(language, [])
    words = [words] if isinstance(words, str) else list(words)
    label = option.get("label", {}).get(language, "")
    return {fold(w) for w in [option["key"], label, *words] if fold(w)}


def check(raw: list[Any], text: str, path: str, languages: list[str]) -> list[BallotDef]:
    """The `ballots` list of a parsed file, checked, or BallotError naming every problem."""
    data = {"ballots": raw}
    try:
        ballots = _List.model_validate(data).ballots
    except ValidationError as exc:
        raise BallotError(path, problems_of(exc, data, text)) from None
    problems = ballots_problems(ballots, languages)
    if problems:
        raise BallotError(path, problems)
    return ballots


class _List(Strict):
    ballots: list[BallotDef]


def ballots_of(file: AssemblyFile, languages: list[str]) -> list[BallotDef]:
    """The `[[ballots]]` of an assembly file (none when it has none)."""
    raw = file.raw.get("ballots", [])
    if not isinstance(raw, list):
        raise BallotError(file.path, ["ballots: write each ballot as [[ballots]]"])
    return check(raw, file.text, file.path, languages)


def load_ballots(path: str, languages: list[str]) -> list[BallotDef]:
    """A file of `[[ballots]]` for `concorder ballot create`."""
    file = AssemblyFile.read(path, BallotError)
    if "ballots" not in file.raw:
        raise BallotError(path, ["no [[ballots]] in this file"])
    return ballots_of(file, languages)


def plain(ballot: BallotDef) -> dict[str, Any]:
    """The definition as stored and as the conversation sees it (JSON)."""
    definition = ballot.model_dump(mode="json", exclude={"opens_at", "closes_at"})
    if definition["system"] is None:
        del definition["system"]  # the service's own count, as before the key existed
    return definition
