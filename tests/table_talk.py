"""What the small groups wrote, as rows: a prompt of round 1 and the contributions to it,
with the two topics (buses and rent) that the themes and the published package find."""

from __future__ import annotations

from datetime import datetime

from store.deliberation import MESSAGE, Contribution, TablePrompt

BUS = [
    "The bus to the hospital comes once an hour, the bus should come more often.",
    "A bus every ten minutes in the morning, please, the bus is always full.",
    "Our bus stop has no shelter and the bus is late.",
    "Cheaper bus tickets would get people out of their cars and onto the bus.",
    "The night bus stops too early, we need a later bus.",
    "The bus drivers are kind but the bus timetable changes too often.",
]
RENT = [
    "Rent is half my wage; rent should be capped.",
    "Young people leave because the rent is too high and flats are rare.",
    "The landlord raised the rent again this year, rent control now.",
    "Empty flats while rent keeps rising: tax the empty flats.",
    "Social housing with a fair rent for families.",
    "Students pay a crazy rent for tiny flats.",
]


def prompt(key: str, texts: dict[str, str], closes_at: datetime) -> TablePrompt:
    """The prompt `key` opened at round 1 (add it and flush before its contributions)."""
    return TablePrompt(
        run_id="R1", round=1, table_no=1, prompt_key=key, texts=texts, closes_at=closes_at
    )


def said(
    asked: TablePrompt,
    table: int,
    pid: str | None,
    text: str,
    *,
    language: str = "en",
    kind: str = MESSAGE,
    hidden_at: datetime | None = None,
) -> Contribution:
    """One contribution by SMS at `table` (`pid` None: a facilitator's post)."""
    return Contribution(
        table_prompt_id=asked.id,
        run_id="R1",
        round=1,
        table_no=table,
        prompt_key=asked.prompt_key,
        kind=kind,
        participant_id=pid,
        letter="A",
        language=language,
        channel="sms",
        text=text,
        hidden_at=hidden_at,
    )
