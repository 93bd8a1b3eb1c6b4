"""Panel members' replies to the calendar, through the real service: TIME, MORE, the read
button, and the buttons under a reminder; and the Telegram -> SMS fallback."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from sqlalchemy import select

from bot.services.outgoing import enqueuer
from bot.services.turns import receive
from flows.sms_format import markdown_to_plain
from scheduler.paging import render_briefing
from scheduler.runner import CalendarRunner
from store.calendar import PENDING, AttendanceNotice, BriefingRead, CalendarJob, CalendarPreference
from store.models import Contact
from tests.calendar_world import (  # noqa: F401  (calendar_fixture: a fixture)
    BlockedTelegram,
    add_person,
    at,
    calendar_fixture,
    outbox,
)

_ids = itertools.count(1)


async def say(
    db,
    relay,
    address: str,
    text: str = "",
    *,
    channel: str = "sms",
    button: str | None = None,
    now: datetime,
) -> list[str]:
    """Send as the person; return the texts the service answered with."""
    before = len(await outbox(db))
    await receive(
        relay,
        channel=channel,
        address=address,
        text=text,
        button=button,
        provider_id=f"in-{next(_ids)}",
        now=now,
    )
    return [m.text for m in (await outbox(db))[before:]]


async def test_time_changes_the_briefing_time_and_moves_the_pending_briefing(
    db, settings, relay, calendar
):
    address = "+447700900301"
    person = await add_person(db, channel="sms", address=address)
    runner = CalendarRunner(db.sessions, enqueuer(settings), calendar=calendar)
    await runner.tick(at("2027-03-07T12:00"))  # plans the week

    answer = await say(db, relay, address, "time", now=at("2027-03-07T12:05"))
    assert answer == [
        "Your daily briefing arrives at 8:00 AM. Reply TIME followed by the "
        "time you want, for example TIME 7:30."
    ]
    answer = await say(db, relay, address, "TIME 7:30", now=at("2027-03-07T12:10"))
    assert answer == ["Your daily briefing will now arrive at 7:30 AM."]
    async with db.sessions() as session:
        pref = await session.get(CalendarPreference, person)
        job = (
            await session.execute(
                select(CalendarJob).where(
                    CalendarJob.participant_id == person, CalendarJob.subject == "bus-lanes"
                )
            )
        ).scalar_one()
    assert pref.briefing_time == "07:30"
    # Moved at once, in the reply's transaction; the person's own choice is honoured even
    # though 07:30 is inside the default quiet hours.
    assert (job.status, job.send_at) == (PENDING, at("2027-03-08T07:30"))

    for garbage in ("TIME soon", "time 25:00", "TIME 7:75"):
        answer = await say(db, relay, address, garbage, now=at("2027-03-07T12:20"))
        assert answer == [
            "Sorry, I could not read that time. Reply TIME followed by the time "
            "you want, for example TIME 7:30."
        ]
    async with db.sessions() as session:
        assert (await session.get(CalendarPreference, person)).briefing_time == "07:30"

    await runner.tick(at("2027-03-08T07:30"))
    briefing = [m for m in await outbox(db, person) if m.kind == "briefing"]
    assert briefing and briefing[0].not_before == at("2027-03-08T07:30")


async def test_french_time_and_other_forms(db, settings, relay, calendar):
    address = "+33612345678"
    person = await add_person(db, channel="sms", address=address, language="fr")
    assert await say(db, relay, address, "heure 19h15", now=at("2027-03-07T12:00")) == [
        "Votre dossier du jour arrivera désormais à 19:15."
    ]
    assert await say(db, relay, address, "TIME 6:45pm", now=at("2027-03-07T12:01")) == [
        "Votre dossier du jour arrivera désormais à 18:45."
    ]
    async with db.sessions() as session:
        assert (await session.get(CalendarPreference, person)).briefing_time == "18:45"


async def test_more_pages_through_an_sms_briefing(db, settings, relay, calendar):
    address = "+447700900302"
    person = await add_person(db, channel="sms", address=address)
    runner = CalendarRunner(db.sessions, enqueuer(settings), calendar=calendar)
    await runner.tick(at("2027-03-08T08:00"))
    first = [m for m in await outbox(db, person) if m.kind == "briefing"]
    assert len(first) == 1
    assert first[0].text.startswith("Bus lanes\n\nRiverside has twelve bus lanes.")
    assert first[0].text.endswith("(1/3) Reply MORE for the next part.")
    assert first[0].segments == calendar.schedule.sms_page_segments  # whole segments

    second = await say(db, relay, address, "more", now=at("2027-03-08T08:05"))
    assert len(second) == 1 and second[0].endswith("(2/3) Reply MORE for the next part.")
    third = await say(db, relay, address, "MORE", now=at("2027-03-08T08:06"))
    assert "Council bus survey 2026 (https://example.org/survey)" in third[0]
    assert "Reply MORE" not in third[0]
    assert await say(db, relay, address, "More!", now=at("2027-03-08T08:07")) == [
        "That was the last part of the briefing."
    ]
    async with db.sessions() as session:
        read = (
            await session.execute(select(BriefingRead).where(BriefingRead.participant_id == person))
        ).scalar_one()
    assert (read.pages_sent, read.pages, read.channel) == (3, 3, "sms")
    # The whole briefing, page by page, is the text the organiser wrote.
    pages = [first[0].text, second[0], third[0]]
    words = " ".join(p.rsplit("\n(", 1)[0] if "Reply MORE" in p else p for p in pages).split()
    document = render_briefing(calendar, "bus-lanes", "en").document
    assert words == markdown_to_plain(document).split()


async def test_someone_not_on_the_panel_is_not_answered_by_the_calendar(
    db, settings, relay, calendar
):
    address = "+447700900303"
    await add_person(db, channel="sms", address=address, status=None)
    answer = await say(db, relay, address, "TIME 7:30", now=at("2027-03-07T12:00"))
    assert answer and not any("Your daily briefing" in text for text in answer)


async def test_telegram_read_button_and_reminder_buttons(db, settings, relay, calendar):
    chat = "5001"
    person = await add_person(db, channel="telegram", address=chat)
    runner = CalendarRunner(db.sessions, enqueuer(settings), calendar=calendar)
    await runner.tick(at("2027-03-08T08:00"))
    briefing = next(m for m in await outbox(db, person) if m.kind == "briefing")
    assert briefing.markdown and briefing.text.startswith("**Bus lanes**")
    assert [b["label"] for b in briefing.buttons] == ["I have read it"]
    answer = await say(
        db,
        relay,
        chat,
        channel="telegram",
        button=briefing.buttons[0]["data"],
        now=at("2027-03-08T09:00"),
    )
    assert answer == ["Thank you for reading the briefing."]
    async with db.sessions() as session:
        read = (await session.execute(select(BriefingRead))).scalar_one()
    assert read.read_at == at("2027-03-08T09:00")

    await runner.tick(at("2027-03-08T18:30"))  # 24 h before the opening session
    reminder = next(m for m in await outbox(db, person) if m.kind == "reminder")
    assert reminder.text.startswith("Reminder: Opening session, Tuesday, March 9, 2027 at 6:30")
    assert "Place: Town hall, room 2" in reminder.text
    late = next(b for b in reminder.buttons if b["label"] == "I will be late")
    answer = await say(
        db, relay, chat, channel="telegram", button=late["data"], now=at("2027-03-09T17:00")
    )
    assert answer == ["Thank you for letting us know. The organisers have been told."]
    async with db.sessions() as session:
        notice = (await session.execute(select(AttendanceNotice))).scalar_one()
    assert (notice.participant_id, notice.session_id, notice.kind) == (person, "s1", "late")


async def test_unreachable_telegram_falls_back_to_consented_sms(db, settings, relay, calendar):
    both = await add_person(db, channel="telegram", address="6001", sms_too="+447700900401")
    only_telegram = await add_person(db, channel="telegram", address="6002")
    async with db.sessions.begin() as session:
        for contact in (
            await session.execute(select(Contact).where(Contact.channel == "telegram"))
        ).scalars():
            contact.unreachable_at = at("2027-03-01T00:00")
    runner = CalendarRunner(db.sessions, enqueuer(settings), calendar=calendar)
    await runner.tick(at("2027-03-08T08:00"))
    sent = [m for m in await outbox(db) if m.kind == "briefing"]
    assert {(m.participant_id, m.channel) for m in sent} == {(both, "sms")}
    assert sent[0].text.endswith("Reply MORE for the next part.")
    async with db.sessions() as session:
        job = (
            await session.execute(
                select(CalendarJob).where(
                    CalendarJob.participant_id == only_telegram, CalendarJob.subject == "bus-lanes"
                )
            )
        ).scalar_one()
    assert (job.status, job.result) == ("skipped", "unreachable")


async def test_a_telegram_failure_after_queueing_reaches_the_person_by_sms(
    db, settings, relay, calendar
):
    """Blocked bot found when sending: the dispatcher moves the briefing to SMS."""
    from bot.channels.simulator import SimulatorTransport
    from bot.delivery.dispatcher import Dispatcher

    person = await add_person(db, channel="telegram", address="7001", sms_too="+447700900501")
    runner = CalendarRunner(db.sessions, enqueuer(settings), calendar=calendar)
    await runner.tick(at("2027-03-08T08:00"))
    clock = at("2027-03-08T08:00")
    transports = {"telegram": BlockedTelegram(), "sms": SimulatorTransport("sms")}
    dispatcher = Dispatcher(
        db.sessions, transports, settings, clock=lambda: clock + timedelta(seconds=1)
    )
    await dispatcher.drain()
    rows = [m for m in await outbox(db, person) if m.kind == "briefing"]
    assert sorted((m.channel, m.status) for m in rows) == [
        ("sms", "delivered"),
        ("telegram", "undeliverable"),
    ]
