"""Reading what organisers write: recommendations (TOML) and a response's text (TOML or
Markdown), each mistake named with its place and line.

A recommendations file:

    [[recommendations]]
    id = "night-buses"
    ballot = "fares"            # optional: the ballot that adopted it
    title = { en = "...", fr = "...", es = "..." }
    text = { en = "...", fr = "...", es = "..." }

A response file is TOML (`status`, `date` and `text = { en = ..., fr = ... }`, each
optional beside the command's options) or Markdown, one `## en` heading per language
followed by its text.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from flows.config_file import AssemblyFile, ConfigError, problems_of, read_text
from store.recommendations import RESPONSE_STATUSES

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,23}$"
MAX_TEXT = 1200  # about eight SMS segments: the message also names the recommendation
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT)]


class RecommendationError(ConfigError):
    """A recommendations or response file that cannot be used."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecommendationDef(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    ballot: str | None = None
    title: dict[str, Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]]
    text: dict[str, Text]


class _File(_Strict):
    recommendations: list[RecommendationDef] = Field(min_length=1)


class ResponseDef(_Strict):
    status: str | None = None
    date: dt.date | None = None
    text: dict[str, Text] = Field(default_factory=dict)


def _missing(texts: dict[str, str], languages: list[str]) -> list[str]:
    return [code for code in languages if code not in texts]


def load_recommendations(path: str | Path, languages: list[str]) -> list[RecommendationDef]:
    """The `[[recommendations]]` of a file, checked against the assembly's languages."""
    file = AssemblyFile.read(path, RecommendationError)
    data = file.tables()
    try:
        found = _File.model_validate(data).recommendations
    except ValidationError as exc:
        raise RecommendationError(file.path, problems_of(exc, data, file.text)) from None
    problems, seen = [], set()
    for number, item in enumerate(found, start=1):
        where = f"recommendations #{number} (id {item.id!r})"
        line = _line(file.text, "recommendations", number - 1)
        where += f" (line {line})" if line else ""
        if item.id in seen:
            problems.append(f"{where}: the id is used twice")
        seen.add(item.id)
        for key in ("title", "text"):
            missing = _missing(getattr(item, key), languages)
            if missing:
                problems.append(f"{where} > {key}: no text in {', '.join(missing)}")
    if problems:
        raise RecommendationError(file.path, problems)
    return found


def load_response(path: str | Path, languages: list[str]) -> ResponseDef:
    """A response's status, date and texts from a TOML file, or its texts from Markdown."""
    if str(path).endswith((".md", ".markdown")):
        text = read_text(path, RecommendationError)
        return ResponseDef(text=_markdown_texts(text, str(path), languages))
    file = AssemblyFile.read(path, RecommendationError)
    data = file.tables()
    try:
        return ResponseDef.model_validate(data)
    except ValidationError as exc:
        raise RecommendationError(file.path, problems_of(exc, data, file.text)) from None


def _markdown_texts(text: str, path: str, languages: list[str]) -> dict[str, str]:
    heading = re.compile(r"^#{1,3}\s*([A-Za-z]{2,3})\s*$")
    texts: dict[str, list[str]] = {}
    current: str | None = None
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = heading.match(line)
        if match:
            current = match.group(1).lower()
            if current in texts:
                problems.append(f"line {number}: a second '{line.strip()}' section")
            texts[current] = []
        elif current is not None:
            texts[current].append(line)
        elif line.strip():
            problems.append(f"line {number}: text before the first language heading (## en)")
    joined = {code: "\n".join(lines).strip() for code, lines in texts.items()}
    for code, body in joined.items():
        if code not in languages:
            problems.append(f"section {code!r}: not a language of the assembly")
        elif not body:
            problems.append(f"section {code!r}: no text")
        elif len(body) > MAX_TEXT:
            problems.append(f"section {code!r}: {len(body)} characters; keep it under {MAX_TEXT}")
    if problems:
        raise RecommendationError(path, problems)
    return joined


@dataclass(frozen=True)
class Response:
    """A response checked and ready to record."""

    status: str
    on: dt.date
    text: dict[str, str]


def response_of(
    given: ResponseDef,
    status: str | None,
    on: dt.date | None,
    text: str | None,
    languages: list[str],
) -> Response:
    """Merge the file with the command's options (an option and the file disagreeing is a
    mistake, not a choice) and check it: a status, a date, a text in every language."""
    problems = []
    chosen_status = status or given.status
    if status and given.status and status != given.status:
        problems.append(f"--status {status} but the file says {given.status}")
    if chosen_status not in RESPONSE_STATUSES:
        problems.append(
            f"status {chosen_status!r}: use one of {', '.join(RESPONSE_STATUSES)}"
            if chosen_status
            else f"no status: give --status ({', '.join(RESPONSE_STATUSES)})"
        )
    chosen_date = on or given.date
    if on and given.date and on != given.date:
        problems.append(f"--date {on} but the file says {given.date}")
    if chosen_date is None:
        problems.append("no date: give --date YYYY-MM-DD (the authority's date)")
    texts: dict[str, Any] = dict(given.text)
    if text is not None:
        if len(languages) != 1:
            problems.append(
                f"--text gives one language, the assembly has {', '.join(languages)}: "
                "give --file with a text in each"
            )
        elif not text.strip() or len(text) > MAX_TEXT:
            problems.append(f"--text: give 1 to {MAX_TEXT} characters")
        else:
            texts[languages[0]] = text.strip()
    missing = _missing(texts, languages)
    if missing:
        problems.append(f"no response text in {', '.join(missing)}")
    if problems:
        raise RecommendationError("response", problems)
    return Response(chosen_status, chosen_date, texts)


def _line(text: str, table: str, index: int) -> int | None:
    header = re.compile(rf"^\s*\[\[\s*{re.escape(table)}\s*\]\]")
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if header.match(line)]
    return hits[index] if index < len(hits) else None
