"""How long personal data is kept: the assembly file's `[retention]`, and the consent text
that states those periods.

The consent text never writes a period itself: it says `{retention_after_end}` (or another
key of `[retention]`) and each language gets the figure from the table, in its own words,
so the text people agree to and what the service deletes cannot disagree. A text that
states a figure of its own ("6 months") is refused when the file is loaded.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

from flows.config_file import Moment
from flows.i18n import translator

_PERIOD = re.compile(r"^\s*(\d+)\s*(d|days?|months?)\s*$")
# The keys of [retention] a consent text may name, e.g. {retention_after_end}.
PLACEHOLDER_PREFIX = "retention_"
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
# A period written out in a consent text, in the shipped languages: it must come from
# [retention] instead. Digits followed by a unit word.
_STATED_FIGURE = re.compile(
    r"\b\d+\s*(days?|weeks?|months?|years?|jours?|semaines?|mois|ans?|années?"
    r"|días?|dias?|semanas?|meses|mes|años?)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Period:
    """A number of days or calendar months."""

    amount: int
    unit: str  # "days" | "months"

    def after(self, moment: datetime) -> datetime:
        """The moment this long after `moment` (months by the calendar, day clamped)."""
        if self.unit == "days":
            return moment + timedelta(days=self.amount)
        month = moment.month - 1 + self.amount
        year, month = moment.year + month // 12, month % 12 + 1
        day = min(moment.day, calendar.monthrange(year, month)[1])
        return moment.replace(year=year, month=month, day=day)

    def words(self, language: str) -> str:
        """'6 months', '6 mois', '30 días'."""
        t = translator(language)
        if self.unit == "days":
            return t.ngettext("{n} day", "{n} days", self.amount)
        return t.ngettext("{n} month", "{n} months", self.amount)

    def __str__(self) -> str:
        return f"{self.amount} {self.unit}"


def _period(value: Any) -> Period:
    if isinstance(value, Period):
        return value
    match = _PERIOD.match(str(value)) if isinstance(value, str) else None
    if not match:
        raise ValueError("write a period as days or months: '30d', '30 days' or '6 months'")
    amount, unit = match.groups()
    return Period(int(amount), "months" if unit.startswith("month") else "days")


PeriodField = Annotated[Period, BeforeValidator(_period)]


# What each period is for, as `concorder erase --due` shows it (organisers read English).
MEANINGS = {
    "after_end": "after the assembly ends",
    "after_withdrawal": "after a withdrawal",
    "after_stop": "after a STOP from someone never registered",
    "organisers": "organisers' records, after the assembly ends",
}


class Retention(BaseModel):
    """`[retention]`: how long after each moment a person's data is erased."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    after_end: PeriodField
    after_withdrawal: PeriodField
    after_stop: PeriodField
    organisers: PeriodField
    # When the assembly ends, for a file without a calendar (else its last session's end).
    assembly_end: Moment | None = None

    def periods(self) -> dict[str, Period]:
        return {key: getattr(self, key) for key in MEANINGS}

    def placeholders(self, language: str) -> dict[str, str]:
        return {
            PLACEHOLDER_PREFIX + key: period.words(language)
            for key, period in self.periods().items()
        }


def consent_problems(texts: dict[str, str], retention: Retention | None) -> list[str]:
    """What is wrong with a consent text's periods: a figure of its own, a placeholder
    that names no period, or a placeholder with no [retention] to take it from."""
    problems = []
    known = {PLACEHOLDER_PREFIX + key for key in MEANINGS}
    for code, text in texts.items():
        place = f"consent > text > {code}"
        stated = _STATED_FIGURE.search(_PLACEHOLDER.sub("", text))
        if stated:
            problems.append(
                f"{place}: states the period {stated.group(0)!r} itself; write "
                "{retention_after_end} (or another [retention] key) so it follows [retention]"
            )
        for name in _PLACEHOLDER.findall(text):
            if name not in known:
                problems.append(
                    f"{place}: {{{name}}} is not a period of [retention] "
                    f"(use {', '.join('{' + k + '}' for k in sorted(known))})"
                )
            elif retention is None:
                problems.append(f"{place}: {{{name}}} needs a [retention] table in the file")
    return problems


def render_consent(texts: dict[str, str], retention: Retention | None) -> dict[str, str]:
    """The consent text of each language with its periods written in that language."""
    if retention is None:
        return dict(texts)
    rendered = {}
    for code, text in texts.items():
        rendered[code] = _fill(text, retention.placeholders(code))
    return rendered


def _fill(text: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)
