"""`[retention]` in the assembly file: periods checked on load, and the consent text takes
its figures from there in every language, so the two cannot disagree."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flows.assembly import AssemblyError, parse_assembly
from flows.retention import Period

HEAD = """
[assembly]
name = "Test Jury"
languages = ["en", "fr", "es"]
"""

RETENTION = """
[retention]
after_end = "6 months"
after_withdrawal = "30d"
after_stop = "1 day"
organisers = "12 months"
"""


def consent(en: str, fr: str, es: str) -> str:
    return f"""
[consent]
version = "v1"
text = {{ en = "{en}", fr = "{fr}", es = "{es}" }}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(AssemblyError) as caught:
        parse_assembly(text, "jury.toml")
    return caught.value.problems


def test_the_consent_text_states_the_periods_of_retention_in_each_language():
    assembly = parse_assembly(
        HEAD
        + RETENTION
        + consent(
            "Deleted {retention_after_end} after the end, {retention_after_withdrawal} "
            "after you leave, {retention_after_stop} after STOP.",
            "Effacées {retention_after_end} après la fin.",
            "Se borran {retention_after_end} después del final.",
        )
    )
    assert assembly.consent_text() == {
        "en": "Deleted 6 months after the end, 30 days after you leave, 1 day after STOP.",
        "fr": "Effacées 6 mois après la fin.",
        "es": "Se borran 6 meses después del final.",
    }
    assert assembly.facts()["consent_text"]["fr"] == "Effacées 6 mois après la fin."
    assert assembly.retention.after_withdrawal == Period(30, "days")


@pytest.mark.parametrize(
    ("retention", "texts", "expected"),
    [
        (
            RETENTION,
            ("Deleted 6 months after the end.", "Effacées 6 mois après.", "Borradas."),
            [
                "consent > text > en: states the period '6 months' itself; write "
                "{retention_after_end} (or another [retention] key) so it follows [retention]",
                "consent > text > fr: states the period '6 mois' itself; write "
                "{retention_after_end} (or another [retention] key) so it follows [retention]",
            ],
        ),
        (
            "",
            ("Deleted {retention_after_end} after.", "x", "y"),
            ["consent > text > en: {retention_after_end} needs a [retention] table in the file"],
        ),
        (
            RETENTION,
            ("Deleted {retention_forever} after.", "x", "Se borran a los 30 días."),
            [
                "consent > text > en: {retention_forever} is not a period of [retention] (use "
                "{retention_after_end}, {retention_after_stop}, {retention_after_withdrawal}, "
                "{retention_organisers})",
                "consent > text > es: states the period '30 días' itself; write "
                "{retention_after_end} (or another [retention] key) so it follows [retention]",
            ],
        ),
        (
            RETENTION.replace('"6 months"', '"half a year"'),
            ("x", "y", "z"),
            [
                "retention > after_end (line 7): write a period as days or months: "
                "'30d', '30 days' or '6 months'"
            ],
        ),
        (
            RETENTION.replace('organisers = "12 months"\n', ""),
            ("x", "y", "z"),
            ["retention > organisers (line 6): Field required"],
        ),
        (
            RETENTION + 'keep_forever = "1d"\n',
            ("x", "y", "z"),
            [
                "retention > keep_forever (line 11): unknown setting "
                "(check its spelling and its table)"
            ],
        ),
    ],
)
def test_loading_names_each_retention_mistake(retention, texts, expected):
    assert problems(HEAD + retention + consent(*texts)) == expected


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("6 months", datetime(2027, 2, 6, tzinfo=UTC), datetime(2027, 8, 6, tzinfo=UTC)),
        ("1 month", datetime(2027, 1, 31, tzinfo=UTC), datetime(2027, 2, 28, tzinfo=UTC)),
        ("14 months", datetime(2027, 11, 5, tzinfo=UTC), datetime(2029, 1, 5, tzinfo=UTC)),
        ("30d", datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 1, 31, tzinfo=UTC)),
    ],
)
def test_a_period_counts_days_and_calendar_months(period, start, end):
    retention = parse_assembly(
        HEAD + RETENTION.replace('"6 months"', f'"{period}"') + consent("x", "y", "z")
    ).retention
    assert retention.after_end.after(start) == end
