"""The calendar tables of the assembly file, and the planner's pure rules about time."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from flows.assembly import load_assembly
from scheduler.config import CalendarError, load_calendar, parse_calendar, parse_duration
from scheduler.paging import sms_cost
from scheduler.plan import Member, after_quiet_hours, plan
from tests.calendar_world import at

EXAMPLE = Path(__file__).resolve().parent.parent / "examples/citizens-jury/assembly.toml"

GOOD = """
[schedule]
timezone = "Europe/Paris"

[[sessions]]
title = "Opening"
start = 2027-03-09T18:30:00
end = 2027-03-09T21:00:00
place = "Hall"
"""


def problems(text: str) -> list[str]:
    with pytest.raises(CalendarError) as caught:
        parse_calendar(text, "jury.toml")
    return caught.value.problems


def test_the_shipped_example_loads_and_its_briefings_have_a_known_sms_cost():
    calendar = load_calendar(EXAMPLE)
    load_assembly(EXAMPLE)  # the recruitment half accepts the calendar tables too
    assert [s.id for s in calendar.sessions] == ["s1", "s2", "s3"]
    assert calendar.languages == ["en", "fr", "es"]
    for briefing in calendar.briefings:
        for language in calendar.languages:
            cost = sms_cost(calendar, briefing.id, language)
            assert 1 <= cost.first_page_segments <= calendar.schedule.sms_page_segments
            assert cost.all_pages_segments >= cost.first_page_segments


def test_defaults_and_ids():
    calendar = parse_calendar(GOOD)
    schedule = calendar.schedule
    assert schedule.reminders == [timedelta(hours=24), timedelta(hours=2)]
    assert (schedule.quiet_hours.start, schedule.quiet_hours.end) == (time(21), time(8))
    assert schedule.briefing_time == time(8)
    assert calendar.session(1).id == "s1" and calendar.session("s1") is calendar.session(1)


def test_each_mistake_is_reported_with_its_place_and_line():
    found = problems("""
[schedule]
timezone = "Europe/Pariss"
reminders = ["24h", "2 days"]
quiet_hours = "21:00"

[[sessions]]
id = "s1"
title = "Opening"
start = 2027-03-09T18:30:00
end = 2027-03-09T17:00:00
place = "Hall"

[[sessions]]
id = "s2"
title = "Online"
start = 2027-03-10T18:30:00
colour = "blue"
""")
    assert (
        "schedule > timezone (line 3): 'Europe/Pariss' is not a time zone name such as "
        "'Europe/Paris'" in found
    )
    assert any(p.startswith("schedule > reminders #2 (line 4): write a duration") for p in found)
    assert any(p.startswith("schedule > quiet_hours (line 5): write quiet hours as") for p in found)
    assert "sessions #1 (id 's1') (line 7): end must be after start" in found
    assert (
        "sessions #2 (id 's2') > colour (line 18): unknown setting (check its spelling "
        "and its table)" in found
    )


def test_briefing_mistakes_are_named():
    found = problems("""
[assembly]
languages = ["en", "fr"]

[[sessions]]
title = "Opening"
start = 2027-03-09T18:30:00
place = "Hall"

[[briefings]]
id = "b1"
session = "s9"
title = "One"
text = { en = "Hello" }

[[briefings]]
id = "b1"
day = 2027-03-08
session = "s1"
title = "Two"
text = { en = "Hi", fr = "Salut" }
""")
    assert (
        "briefings #2 (id 'b1') (line 16): give either day (a date) or session (a session "
        "id), not both" in found
    )
    found = problems(
        """
[assembly]
languages = ["en", "fr"]
"""
        + GOOD
        + """
[[briefings]]
id = "b1"
session = "s9"
title = "One"
text = { en = "Hello" }
"""
    )
    assert "briefings #1 (id 'b1') > session: no session has the id 's9'" in found
    assert "briefings #1 (id 'b1') > text: no text in 'fr'" in found


def test_not_toml_is_said_plainly():
    assert problems("[[sessions]\n")[0].startswith("not valid TOML")
    with pytest.raises(CalendarError) as caught:
        load_calendar("/nonexistent/jury.toml")
    assert caught.value.problems == ["file not found"]


def test_durations():
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("2d") == timedelta(days=2)
    for bad in ("", "h", "10", "3 weeks"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_quiet_hours_push_to_their_end_in_local_time():
    calendar = parse_calendar(GOOD)
    quiet, paris = calendar.schedule.quiet_hours, ZoneInfo("Europe/Paris")
    # 22:30 in Paris waits until 08:00 the next morning; 12:00 goes at once.
    assert after_quiet_hours(at("2027-03-09T21:30"), paris, quiet) == at("2027-03-10T07:00")
    assert after_quiet_hours(at("2027-03-09T11:00"), paris, quiet) == at("2027-03-09T11:00")
    assert after_quiet_hours(at("2027-03-10T05:00"), paris, quiet) == at("2027-03-10T07:00")


def test_a_briefing_keeps_local_time_across_a_clock_change():
    calendar = parse_calendar("""
[schedule]
timezone = "America/New_York"

[[sessions]]
title = "Late"
start = 2027-03-16T18:00:00
place = "Hall"

[[briefings]]
day = 2027-03-13
title = "Before the change"
text = "A"

[[briefings]]
day = 2027-03-15
title = "After the change"
text = "B"
""")
    items = [d for d in plan(calendar, [Member("P1")]) if d.kind == "briefing"]
    assert [d.send_at for d in items] == [at("2027-03-13T13:00"), at("2027-03-15T12:00")]
