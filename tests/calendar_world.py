"""A small assembly calendar and panel for the scheduler tests, on a test clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.channels.transport import PermanentFailure
from scheduler.config import parse_calendar
from store.models import Contact, OutboxMessage, Participant
from store.recruitment import CONFIRMED, RESERVE, Selection

# The week of 8 March 2027: New York moves to summer time on Sunday the 14th, London does not.
CALENDAR = (
    """
[assembly]
name = "Riverside Citizens' Jury"
languages = ["en", "fr", "es"]
default_language = "en"

[schedule]
timezone = "Europe/London"
reminders = ["24h", "2h"]
quiet_hours = "21:00-08:00"
briefing_time = "08:00"
sms_page_segments = 2

[[sessions]]
id = "s1"
title = { en = "Opening session", fr = "Séance d'ouverture", es = "Sesión de apertura" }
start = 2027-03-09T18:30:00
end = 2027-03-09T21:00:00
place = "Town hall, room 2"

[[sessions]]
id = "s2"
title = { en = "Hearing the experts", fr = "Audition des experts", es = "Escuchar a los expertos" }
start = 2027-03-11T18:30:00
end = 2027-03-11T21:00:00
place = "Town hall, room 2"
call_in = "https://meet.example.org/riverside"

[[sessions]]
id = "s3"
title = { en = "Deliberation", fr = "Délibération", es = "Deliberación" }
start = 2027-03-13T10:00:00
end = 2027-03-13T16:00:00
place = "Library, first floor"

[[briefings]]
id = "bus-lanes"
day = 2027-03-08
title = { en = "Bus lanes", fr = "Couloirs de bus", es = "Carriles bus" }
text.en = "Riverside has **twelve** bus lanes. """
    + ("The council counts riders every spring. " * 12)
    + """"
text.fr = "Riverside compte douze couloirs de bus."
text.es = "Riverside tiene doce carriles bus."
sources = [{ title = "Council bus survey 2026", url = "https://example.org/survey" }]

[[briefings]]
id = "experts"
session = "s2"
title = { en = "Before the hearing", fr = "Avant l'audition", es = "Antes de la audiencia" }
text.en = "Three experts will speak."
text.fr = "Trois experts parleront."
text.es = "Hablarán tres expertos."
perspectives = [
  { name = "Cyclists' union", summary = "More lanes, fewer cars." },
  { name = "Shopkeepers", summary = "Keep parking near shops." },
]
audio = "https://example.org/audio/experts.mp3"

[[briefings]]
id = "deliberation"
session = "s3"
title = "Deliberation day"
text = "Bring your notes."
"""
)


@pytest.fixture(name="calendar")
def calendar_fixture():
    """The test calendar (import `calendar_fixture`, ask for `calendar`); the `relay` of a
    test that asks for both runs it."""
    return load()


def at(text: str) -> datetime:
    """A UTC moment on the test clock: at('2027-03-08T08:00')."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def load():
    return parse_calendar(CALENDAR, "test.toml")


async def add_person(
    db,
    *,
    channel: str,
    address: str,
    timezone: str | None = None,
    language: str = "en",
    status: str | None = CONFIRMED,
    sms_too: str | None = None,
    opted_out: bool = False,
) -> str:
    async with db.sessions.begin() as session:
        person = Participant(
            language=language,
            timezone=timezone,
            opted_out=opted_out,
            state={"language": language, "opted_out": opted_out},
        )
        session.add(person)
        await session.flush()
        session.add(
            Contact(
                participant_id=person.id,
                channel=channel,
                address=address,
                sms_consent=channel == "sms",
            )
        )
        if sms_too:
            session.add(
                Contact(participant_id=person.id, channel="sms", address=sms_too, sms_consent=True)
            )
        if status:
            session.add(
                Selection(
                    participant_id=person.id,
                    draw_id="d1",
                    status=status,
                    reserve_rank=1 if status == RESERVE else None,
                )
            )
        return person.id


async def outbox(db, participant_id: str | None = None) -> list[OutboxMessage]:
    async with db.sessions() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if participant_id:
            query = query.where(OutboxMessage.participant_id == participant_id)
        return list((await session.execute(query)).scalars())


class BlockedTelegram:
    """A Telegram transport whose every recipient has blocked the bot."""

    channel = "telegram"

    async def send(self, message):
        raise PermanentFailure("Forbidden: bot was blocked by the user", unreachable=True)

    async def close(self):
        return None
