"""The respondents file read and checked: people who registered outside the chat.

One row per person: the organisers' own id for them, how they registered and gave consent
(paper form, phone call, web form) with the consent's reference, their answers to the
quota categories, and, if they gave any, a phone number, an e-mail address, a household
and a language. Every problem is reported with its line and column, all at once.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.addresses import BadAddress
from bot.services.recruitment.pool import pool_phone
from store.respondents import SOURCES

COLUMNS = {
    "id": "external_id",
    "external_id": "external_id",
    "ref": "external_id",
    "respondent_id": "external_id",
    "consent": "source",
    "source": "source",
    "registered_by": "source",
    "consent_ref": "consent_ref",
    "consent_reference": "consent_ref",
    "household": "household",
    "household_id": "household",
    "phone": "phone",
    "mobile": "phone",
    "phone_number": "phone",
    "email": "email",
    "e-mail": "email",
    "language": "language",
    "lang": "language",
}
REQUIRED = ("external_id", "source", "consent_ref")
# Words organisers use for the three ways of registering.
SOURCE_WORDS = {
    "paper": "paper",
    "form": "paper",
    "letter": "paper",
    "post": "paper",
    "call": "call",
    "phone": "call",
    "telephone": "call",
    "web": "web",
    "online": "web",
    "website": "web",
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class RespondentsFileError(ValueError):
    """The file cannot be read at all (no header, a column missing)."""


@dataclass
class OutsideRow:
    line: int
    external_id: str
    source: str
    consent_ref: str
    answers: dict[str, str] = field(default_factory=dict)
    household: str | None = None
    phone: str | None = None
    email: str | None = None
    language: str | None = None

    @property
    def reachable(self) -> bool:
        """Can the service itself message them (by SMS)? An e-mail is for the organisers."""
        return self.phone is not None


@dataclass
class Problem:
    line: int
    column: str  # "C 'age'"; empty when it is about the whole row
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.reason}"


@dataclass
class RespondentsParse:
    rows: list[OutsideRow]
    problems: list[Problem]
    read: int


def column_name(index: int, header: str) -> str:
    """A spreadsheet's column letter and header, as organisers see them: "C 'age'"."""
    letters, number = "", index + 1
    while number:
        number, rest = divmod(number - 1, 26)
        letters = chr(65 + rest) + letters
    return f"{letters} '{header}'"


def parse_respondents(
    path: str | Path,
    categories: Mapping[str, set[str]],
    languages: tuple[str, ...] | list[str],
    region: str = "GB",
    required: tuple[str, ...] | list[str] = (),
) -> RespondentsParse:
    """Read a respondents CSV. `categories` are the answers the draw knows (quota
    categories and registration questions) with their values; any other column is refused,
    so no data is imported that nothing uses. The `required` ones (the quota categories)
    need a column and an answer on every row."""
    path = Path(path)
    if path.suffix.lower() in (".xlsx", ".xls", ".ods"):
        raise RespondentsFileError(
            f"{path}: save the sheet as CSV (UTF-8) first; spreadsheets are not read directly"
        )
    with open(path, newline="", encoding="utf-8-sig") as fp:
        reader = csv.reader(fp)
        header = next(reader, None)
        if not header:
            raise RespondentsFileError(f"{path}: the file is empty")
        names = [h.strip() for h in header]
        roles = _roles(path, names, categories, required)
        rows: list[OutsideRow] = []
        problems: list[Problem] = []
        read = 0
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            read += 1
            line = reader.line_num
            if len(values) != len(names):
                problems.append(
                    Problem(line, "", f"{len(values)} fields where the header has {len(names)}")
                )
                continue
            row, found = _row(line, names, roles, values, categories, languages, region, required)
            problems.extend(found)
            rows.append(row)
    problems.extend(_duplicates(rows))
    problems.sort(key=lambda p: p.line)
    bad = {p.line for p in problems}
    return RespondentsParse([r for r in rows if r.line not in bad], problems, read)


def _roles(
    path: Path, names: list[str], categories: Mapping[str, set[str]], required: Sequence[str]
) -> list[str]:
    roles, problems = [], []
    for index, name in enumerate(names):
        role = COLUMNS.get(name.lower())
        if role is None and name in categories:
            role = f"answer:{name}"
        if role is None:
            known = ", ".join(sorted(categories)) or "none"
            problems.append(
                f"column {column_name(index, name)} is neither a known column nor a quota "
                f"category (categories: {known}); remove it or rename it"
            )
        elif role in roles:
            problems.append(f"column {column_name(index, name)} repeats {role.split(':')[-1]}")
        roles.append(role or "")
    missing = [r for r in REQUIRED if r not in roles]
    if missing:
        problems.append(f"a column {', '.join(repr(m) for m in missing)} is needed")
    absent = [c for c in required if f"answer:{c}" not in roles]
    if absent and not problems:
        problems.append(
            f"no column for the quota categor{'y' if len(absent) == 1 else 'ies'} "
            f"{', '.join(absent)}"
        )
    if problems:
        raise RespondentsFileError(f"{path}: line 1: " + "; ".join(problems))
    return roles


def _row(
    line: int,
    names: list[str],
    roles: list[str],
    values: list[str],
    categories: Mapping[str, set[str]],
    languages: tuple[str, ...] | list[str],
    region: str,
    required: Sequence[str],
) -> tuple[OutsideRow, list[Problem]]:
    fields: dict[str, str] = {}
    answers: dict[str, str] = {}
    problems: list[Problem] = []
    where = {role: column_name(i, names[i]) for i, role in enumerate(roles)}
    for role, value in zip(roles, values, strict=True):
        value = value.strip()
        if role.startswith("answer:"):
            category = role.removeprefix("answer:")
            if not value:
                if category in required:
                    problems.append(Problem(line, where[role], f"no answer for {category}"))
            elif value not in categories[category]:
                known = ", ".join(sorted(categories[category]))
                problems.append(
                    Problem(
                        line,
                        where[role],
                        f"{value!r} is not a value of {category} (known: {known})",
                    )
                )
            else:
                answers[category] = value
        else:
            fields[role] = value
    for role in REQUIRED:
        if not fields.get(role):
            problems.append(Problem(line, where[role], "empty; every row needs one"))
    source = SOURCE_WORDS.get(fields.get("source", "").lower())
    if fields.get("source") and source is None:
        problems.append(
            Problem(
                line,
                where["source"],
                f"{fields['source']!r}: say how they registered: {', '.join(SOURCES)}",
            )
        )
    row = OutsideRow(
        line,
        fields.get("external_id", "")[:64],
        source or "",
        fields.get("consent_ref", "")[:128],
        answers,
        household=fields.get("household", "")[:64] or None,
    )
    _contact(row, fields, where, languages, region, problems)
    return row, problems


def _contact(
    row: OutsideRow,
    fields: dict[str, str],
    where: dict[str, str],
    languages: tuple[str, ...] | list[str],
    region: str,
    problems: list[Problem],
) -> None:
    if fields.get("phone"):
        try:
            row.phone = pool_phone(fields["phone"], region)
        except BadAddress:
            problems.append(Problem(row.line, where["phone"], "not a phone number"))
    if fields.get("email"):
        if _EMAIL.match(fields["email"]):
            row.email = fields["email"][:254]
        else:
            problems.append(Problem(row.line, where["email"], "not an e-mail address"))
    language = fields.get("language", "").lower()
    if language and language not in languages:
        problems.append(
            Problem(
                row.line,
                where["language"],
                f"{language!r} is not one of the assembly's languages ({', '.join(languages)})",
            )
        )
    row.language = language or None


def _duplicates(rows: list[OutsideRow]) -> list[Problem]:
    """One row per person: the same id or phone number twice is a mistake to fix."""
    problems = []
    first: dict[tuple[str, str], int] = {}
    for row in rows:
        for kind, value in (("id", row.external_id), ("phone number", row.phone)):
            if not value:
                continue
            seen = first.setdefault((kind, value), row.line)
            if seen != row.line:
                problems.append(Problem(row.line, "", f"the same {kind} as line {seen}"))
    return problems
