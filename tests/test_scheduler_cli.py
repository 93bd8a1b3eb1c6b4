"""`concorder schedule preview` and `concorder session move`, run as an organiser would."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from typer.testing import CliRunner

from bot.bootstrap import build_cli
from scheduler.config import load_calendar
from scheduler.jobs import sync
from store.calendar import CANCELLED, PENDING, CalendarJob, SessionMove
from store.models import utcnow
from tests.calendar_world import CALENDAR, add_person


def write_calendar(tmp_path, start_year: int) -> str:
    """The test calendar moved into the future, so `now` is before it."""
    path = tmp_path / "assembly.toml"
    path.write_text(CALENDAR.replace("2027-03", f"{start_year}-03"), encoding="utf-8")
    return str(path)


async def concorder(db, *args: str):
    result = await asyncio.to_thread(
        CliRunner().invoke,
        build_cli(),
        list(args),
        env={"CONCORDER_DATABASE_URL": db.url, "COLUMNS": "200"},
    )
    return result


async def test_preview_shows_what_goes_when_to_how_many_and_its_sms_cost(db, tmp_path):
    year = utcnow().year + 2
    path = write_calendar(tmp_path, year)
    await add_person(db, channel="telegram", address="8001")
    await add_person(db, channel="sms", address="+447700900601")
    await add_person(db, channel="sms", address="+447700900602", timezone="America/New_York")
    result = await concorder(
        db,
        "schedule",
        "preview",
        "--assembly",
        path,
        "--from",
        f"{year}-03-08T00:00",
        "--until",
        f"{year}-03-09T00:00",
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    london = next(line for line in lines if "08:00" in line and "bus-lanes" in line)
    # Two people in London at 08:00 (one on each channel); the SMS reader's first page is
    # 2 segments, 5 if they read every page.
    assert [cell.strip() for cell in london.split("│")[3:7]] == [
        "2",
        "1",
        "1",
        "2 (up to 5 with MORE)",
    ]
    new_york = next(line for line in lines if "13:00" in line and "bus-lanes" in line)
    assert [cell.strip() for cell in new_york.split("│")[3:6]] == ["1", "0", "1"]
    reminder = next(line for line in lines if "18:30" in line and "reminder s1" in line)
    assert [cell.strip() for cell in reminder.split("│")[3:6]] == ["3", "1", "2"]
    assert "SMS cost of each briefing" in result.output


async def test_session_move_reschedules_its_reminders_and_offers_the_broadcast(db, tmp_path):
    year = utcnow().year + 2
    path = write_calendar(tmp_path, year)
    await add_person(db, channel="sms", address="+447700900701")
    # Plan the calendar as the service would.
    future = load_calendar(path)
    async with db.sessions.begin() as session:
        await sync(session, future, utcnow())

    dry = await concorder(
        db,
        "session",
        "move",
        "2",
        "--start",
        f"{year}-03-12T19:00",
        "--dry-run",
        "--assembly",
        path,
    )
    assert dry.exit_code == 0, dry.output
    assert "Would move session 2 (s2)" in dry.output
    async with db.sessions() as session:
        assert (await session.execute(select(SessionMove))).first() is None

    moved = await concorder(
        db, "session", "move", "2", "--start", f"{year}-03-12T19:00", "--assembly", path
    )
    assert moved.exit_code == 0, moved.output
    assert "Moved session 2 (s2) from" in moved.output
    assert f"11 Mar {year} 18:30 to" in moved.output and f"12 Mar {year} 19:00" in moved.output
    assert (
        f"concorder broadcast --template session-moved --session 2 --start {year}-03-12T19:00"
    ) in moved.output
    async with db.sessions() as session:
        jobs = (
            (await session.execute(select(CalendarJob).where(CalendarJob.subject == "s2")))
            .scalars()
            .all()
        )
    pending = sorted(j.occurrence for j in jobs if j.status == PENDING)
    assert pending == [f"1d@{year}0312T1900Z", f"2h@{year}0312T1900Z"]
    assert {j.status for j in jobs if j.occurrence.endswith("1830Z")} == {CANCELLED}

    unknown = await concorder(
        db, "session", "move", "9", "--start", f"{year}-03-12T19:00", "--assembly", path
    )
    assert unknown.exit_code == 2 and "there is no session '9'" in unknown.output
