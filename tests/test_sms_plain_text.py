"""Briefings are written in Markdown: Telegram shows them formatted, an SMS shows plain text
(no ** or [ ]( ), links as 'words (address)', lists as lines) and is counted and paged on
that plain text. Through the real path: the example assembly's calendar queues briefings
for SMS and Telegram panel members."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.channels.simulator import SimulatorTransport
from bot.channels.telegram_format import markdown_to_html
from bot.delivery.dispatcher import Dispatcher
from bot.services.outgoing import enqueuer
from bot.services.turns import receive
from flows import segments
from scheduler.config import load_calendar
from scheduler.runner import CalendarRunner
from tests.calendar_world import BlockedTelegram, add_person, at, outbox

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "citizens-jury" / "assembly.toml"
MARKS = ("**", "](", "__")


@pytest.fixture(name="calendar")
def example_calendar():
    """The example assembly's calendar (the `relay` of a test that asks for both runs it)."""
    return load_calendar(EXAMPLE)


async def briefings(db, person: str):
    return [m for m in await outbox(db, person) if m.kind == "briefing"]


async def test_the_welcome_briefing_is_plain_on_sms_and_formatted_on_telegram(
    db, settings, calendar
):
    english = await add_person(db, channel="sms", address="+447700900601")
    french = await add_person(db, channel="sms", address="+33612345601", language="fr")
    telegram = await add_person(db, channel="telegram", address="8001")
    runner = CalendarRunner(db.sessions, enqueuer(settings), calendar=calendar)
    await runner.tick(at("2027-02-02T08:00"))

    (sms,) = await briefings(db, english)
    assert sms.channel == "sms"
    assert sms.text == (
        "Welcome to the jury\n\nThe jury's question: how should Riverside share its streets "
        "between buses, bikes and cars over the next ten years? Tonight you will meet the "
        "other jurors and the facilitators and agree how we will work together. There is "
        "nothing to prepare."
    )
    size = segments.measure(sms.text)
    assert (sms.segments, sms.encoding) == (size.segments, size.encoding) == (2, "GSM-7")

    (french_sms,) = await briefings(db, french)
    assert french_sms.text.startswith(
        "Bienvenue dans le jury\n\nLa question posée au jury : comment Riverside doit-elle "
        "partager ses rues entre bus, vélos et voitures au cours des dix prochaines années ? "
        "Ce soir"
    )
    assert not any(mark in french_sms.text for mark in MARKS)

    (formatted,) = await briefings(db, telegram)
    assert formatted.markdown and formatted.text.startswith("**Welcome to the jury**")
    assert (
        "<b>how should Riverside share its streets between buses, bikes and cars\n"
        "over the next ten years?</b>"
    ) in markdown_to_html(formatted.text)


async def test_sms_pages_show_lists_as_lines_and_links_with_their_address(
    db, settings, relay, calendar
):
    address = "+447700900602"
    person = await add_person(db, channel="sms", address=address)
    # The day before's reminder comes first: MORE still pages through the briefing after it.
    runner = CalendarRunner(db.sessions, enqueuer(settings), calendar=calendar)
    await runner.tick(at("2027-02-04T08:00"))
    (first,) = await briefings(db, person)
    pages = [first.text]
    for n, word in enumerate(("MORE", "more"), start=1):
        before = len(await outbox(db, person))
        await receive(
            relay,
            channel="sms",
            address=address,
            text=word,
            provider_id=f"more-{n}",
            now=at("2027-02-04T08:05"),
        )
        (page,) = [(m.kind, m.text) for m in (await outbox(db, person))[before:]]
        assert page[0] == "briefing", page
        pages.append(page[1])

    assert pages[0].startswith("Before the hearing: bus lanes\n\nRiverside has 12 km")
    assert (
        "Perspectives presented\n- Riverside Cycling Campaign: More protected lanes for "
        "bikes and buses, fewer through-routes for cars.\n- Riverside Traders' "
        "Association:"
    ) in pages[1]
    assert (
        "Sources\n- Riverside bus corridor review 2026 "
        "(https://example.org/riverside/bus-review-2026)\n- Riverside Chamber of Commerce "
        "survey (https://example.org/riverside/traders-survey)"
    ) in pages[2]
    for page in pages:
        assert not any(mark in page for mark in MARKS), page
        # Every page fills at most the schedule's segments, counted on what is sent.
        assert segments.measure(page).segments <= calendar.schedule.sms_page_segments


async def test_a_telegram_briefing_moved_to_sms_arrives_as_plain_text(db, settings, calendar):
    person = await add_person(db, channel="telegram", address="8002", sms_too="+447700900603")
    runner = CalendarRunner(db.sessions, enqueuer(settings), calendar=calendar)
    await runner.tick(at("2027-02-02T08:00"))
    clock = at("2027-02-02T08:00")
    transports = {"telegram": BlockedTelegram(), "sms": SimulatorTransport("sms")}
    dispatcher = Dispatcher(
        db.sessions, transports, settings, clock=lambda: clock + timedelta(seconds=1)
    )
    await dispatcher.drain()

    (sms,) = [m for m in await briefings(db, person) if m.channel == "sms"]
    assert sms.status == "delivered"
    assert sms.text.startswith(
        "Welcome to the jury\n\nThe jury's question: how should "
        "Riverside share its streets between buses, bikes and cars over"
    )
    assert not any(mark in sms.text for mark in MARKS)
    assert sms.segments == segments.measure(sms.text).segments
