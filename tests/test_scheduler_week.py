"""A week of an assembly on a test clock: every panel member gets each briefing and reminder
exactly once, at the right local time, never in quiet hours; a session moved mid-week gets
new reminders; a restart in the middle loses and repeats nothing."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.services.outgoing import enqueuer
from bot.settings import Settings
from scheduler.moves import move_session
from scheduler.plan import in_quiet_hours
from scheduler.runner import CalendarRunner
from store.calendar import DONE, CalendarJob
from store.models import AuditEvent
from store.recruitment import RESERVE
from tests.calendar_world import add_person, at, load, outbox

LONDON, NEW_YORK = ZoneInfo("Europe/London"), ZoneInfo("America/New_York")
STEP = timedelta(minutes=30)


async def run_clock(runner: CalendarRunner, start, until) -> None:
    now = start
    while now < until:
        await runner.tick(now)
        now += STEP


async def test_a_week_reaches_everyone_once_at_their_local_time(db, settings: Settings):
    calendar = load()
    ana = await add_person(db, channel="telegram", address="1001")  # London, Telegram
    ben = await add_person(db, channel="sms", address="+447700900101", language="fr")
    cleo = await add_person(db, channel="telegram", address="1003", timezone="America/New_York")
    dan = await add_person(
        db, channel="sms", address="+12025550104", timezone="America/New_York", language="es"
    )
    reserve = await add_person(db, channel="sms", address="+447700900105", status=RESERVE)
    gone = await add_person(db, channel="sms", address="+447700900106", opted_out=True)
    zones = {ana: LONDON, ben: LONDON, cleo: NEW_YORK, dan: NEW_YORK}

    first = CalendarRunner(
        db.sessions,
        enqueuer(settings),
        calendar=calendar,
        owner="first",
        replan_every=timedelta(hours=1),
    )
    await run_clock(first, at("2027-03-07T12:00"), at("2027-03-10T09:00"))

    # Wednesday 09:00: the experts' session moves from Thursday to Friday 18:30, and the
    # service restarts (a new runner on the same database).
    async with db.sessions.begin() as session:
        moved = await move_session(
            session, calendar, 2, at("2027-03-12T18:30"), at("2027-03-10T09:00")
        )
    assert moved.number == 2 and moved.planned.cancelled > 0
    second = CalendarRunner(
        db.sessions,
        enqueuer(settings),
        calendar=calendar,
        owner="second",
        replan_every=timedelta(hours=1),
    )
    await run_clock(second, at("2027-03-10T09:00"), at("2027-03-14T12:00"))

    sent = [m for m in await outbox(db) if m.kind in ("briefing", "reminder")]
    assert {m.participant_id for m in sent} == set(zones)  # not the reserve, not the opted out
    assert reserve not in {m.participant_id for m in sent} and gone not in {
        m.participant_id for m in sent
    }

    async with db.sessions() as session:
        done = (
            (await session.execute(select(CalendarJob).where(CalendarJob.status == DONE)))
            .scalars()
            .all()
        )
        sent_events = (
            (await session.execute(select(AuditEvent).where(AuditEvent.kind == "calendar.sent")))
            .scalars()
            .all()
        )
    # Exactly once: one audit event and one job per (kind, person, subject, occurrence).
    keys = Counter(
        (e.data["kind"], e.participant_id, e.data["subject"], e.data["occurrence"])
        for e in sent_events
    )
    assert keys and max(keys.values()) == 1
    assert len(done) == len(keys)
    by_person = Counter((j.participant_id, j.kind, j.subject) for j in done)
    for person in zones:
        briefings = {s for (p, k, s) in by_person if p == person and k == "briefing"}
        assert briefings == {"bus-lanes", "experts", "deliberation"}
    # Reminders for the moved session count from its new start only.
    s2 = {j.occurrence for j in done if j.subject == "s2"}
    assert s2 == {"1d@20270312T1830Z", "2h@20270312T1830Z"}
    # Deliberation (Sat 10:00 London = 05:00 New York): the 2h reminder would fall in New
    # York's quiet hours until after the start, so New Yorkers get the 24h one only.
    s3 = Counter(j.participant_id for j in done if j.subject == "s3")
    assert s3 == {ana: 2, ben: 2, cleo: 1, dan: 1}

    # Every message leaves at the planned local time, outside quiet hours.
    quiet = calendar.schedule.quiet_hours
    first_parts = [m for m in sent if m.part == 1]
    for message in first_parts:
        local = message.not_before.astimezone(zones[message.participant_id])
        assert not in_quiet_hours(message.not_before, zones[message.participant_id], quiet)
        if message.kind == "briefing":
            assert (local.hour, local.minute) == (8, 0)
    # New York's briefings come at 08:00 New York time; the deliberation starts at 05:00
    # there, so its briefing comes the day before.
    cleo_days = sorted(
        m.not_before for m in first_parts if m.participant_id == cleo and m.kind == "briefing"
    )
    assert [d.astimezone(NEW_YORK).strftime("%a %H:%M") for d in cleo_days] == [
        "Mon 08:00",
        "Fri 08:00",
        "Fri 08:00",
    ]  # experts moved with s2 to Friday
    # Reminders state the date and time in the person's language and zone.
    texts = {(m.participant_id, m.kind): m.text for m in first_parts}
    reminders = [m.text for m in first_parts if m.kind == "reminder"]
    assert any("Reminder: Opening session, Tuesday, March 9, 2027 at 6:30" in t for t in reminders)
    assert any("Rappel" in t and "mardi 9 mars 2027" in t for t in reminders)
    assert any("1:30" in t and "America/New_York" in t for t in reminders if "Opening" in t)
    # Telegram briefings are whole and formatted with a read button; SMS ones are paged.
    ana_briefing = next(m for m in first_parts if m.participant_id == ana and m.kind == "briefing")
    assert ana_briefing.markdown and ana_briefing.buttons[0]["data"].endswith(":cal_read")
    assert texts[(ben, "briefing")]  # French SMS briefing
    english_sms = [m for m in sent if m.participant_id == dan and m.kind == "briefing"]
    assert all(m.segments <= calendar.schedule.sms_page_segments for m in english_sms)


async def test_missed_work_goes_out_once_late_unless_its_session_has_started(db, settings):
    calendar = load()
    ana = await add_person(db, channel="sms", address="+447700900201")
    runner = CalendarRunner(db.sessions, enqueuer(settings), calendar=calendar, owner="a")
    await runner.tick(at("2027-03-08T07:00"))
    assert await outbox(db, ana) == []
    # The service is down from 07:00 to 11:00: the 08:00 briefing goes out at 11:00, once.
    restarted = CalendarRunner(db.sessions, enqueuer(settings), calendar=calendar, owner="b")
    await restarted.tick(at("2027-03-08T11:00"))
    await restarted.tick(at("2027-03-08T11:30"))
    messages = await outbox(db, ana)
    assert [m.kind for m in messages if m.part == 1] == ["briefing"]
    assert messages[0].not_before == at("2027-03-08T11:00")
    # Down again from Monday 12:00 until Tuesday 23:00, past the opening session (Tue
    # 18:30): its reminders are skipped, not sent late; and the late work waits for quiet
    # hours to end.
    again = CalendarRunner(db.sessions, enqueuer(settings), calendar=calendar, owner="c")
    await again.tick(at("2027-03-09T23:00"))
    assert [m.kind for m in await outbox(db, ana) if m.part == 1] == ["briefing"]
    async with db.sessions() as session:
        skipped = (
            (await session.execute(select(CalendarJob).where(CalendarJob.subject == "s1")))
            .scalars()
            .all()
        )
    assert {(j.status, j.result) for j in skipped} == {("skipped", "expired")}


async def test_a_late_joiner_gets_one_reminder_not_a_burst(db, settings):
    calendar = load()
    runner = CalendarRunner(db.sessions, enqueuer(settings), calendar=calendar)
    ana = await add_person(db, channel="telegram", address="2001")
    # Joins an hour before the opening session: both reminders are overdue, one is sent.
    await runner.tick(at("2027-03-09T17:30"))
    reminders = [m for m in await outbox(db, ana) if m.kind == "reminder"]
    assert len(reminders) == 1
