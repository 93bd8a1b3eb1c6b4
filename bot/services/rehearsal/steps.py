"""The organiser's steps of a rehearsal, as plain functions over the services.

Each takes the sandbox (`World`, bot/services/rehearsal/world.py) and does at
`world.now` what the organiser's command does (`concorder pool import`, `invite`, `select`,
`notify-draw`, `groups assign`, `groups notify`); the calendar's own work is
`world.timed_work`. The draw, the replacements and the tables are the shared organiser
steps (bot/services/organiser_steps.py); what is here says what went wrong as the report
shows it, and keeps to the virtual clock.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.services import organiser_steps, recruitment
from bot.services.draw import DrawError, DrawRecordError, rules_for
from bot.services.groups.allocate import AllocationError
from bot.services.groups.records import GroupsError
from bot.services.rehearsal.people import Person
from bot.services.rehearsal.world import World
from flows.assembly import Assembly
from scheduler.config import Calendar


@dataclass(frozen=True)
class Timeline:
    """When the organiser's steps happen; the calendar's own times follow from the file."""

    start: datetime  # the pool imported and invited
    draw: datetime  # the registration deadline has passed
    notify: datetime
    confirmed_by: datetime  # places not confirmed by then expire; replacements are drawn
    replaced_by: datetime  # the replacements' own time to confirm has passed
    groups: datetime
    end: datetime  # nothing is looked at after this


def timeline(assembly: Assembly, calendar: Calendar | None) -> Timeline:
    """Invitations far enough before the registration deadline for the reminder and the
    lapse to happen (else a month before the first session), at ten in the morning."""
    r = assembly.recruitment
    zone = ZoneInfo(calendar.schedule.timezone if calendar else "UTC")
    sessions = sorted(s.start.replace(tzinfo=zone) for s in calendar.sessions) if calendar else []
    ends = sorted(s.end.replace(tzinfo=zone) for s in calendar.sessions) if calendar else []
    deadline = r.registration_deadline
    if deadline is None:
        first = sessions[0] if sessions else datetime(2027, 1, 1, tzinfo=zone)
        deadline = first - timedelta(days=21)
    day = (deadline - r.remind_after - r.lapse_after - timedelta(days=2)).astimezone(zone)
    start = datetime.combine(day.date(), time(10), zone)
    draw = deadline + timedelta(hours=1)
    notify = draw + timedelta(minutes=10)
    confirmed_by = notify + r.confirm_within + timedelta(minutes=5)
    replaced_by = confirmed_by + r.confirm_within + timedelta(minutes=5)
    groups_day = (replaced_by + timedelta(days=1)).astimezone(zone).date()
    groups = datetime.combine(groups_day, time(10), zone)
    last = max([*ends, groups]) + timedelta(days=4)
    return Timeline(start, draw, notify, confirmed_by, replaced_by, groups, last)


def seeded_ids(seed: str):
    """Pseudonyms shaped like the service's own, the same for the same seed."""
    rng = random.Random(f"pseudonyms:{seed}")
    return lambda: "P" + f"{rng.getrandbits(48):012X}"


async def import_pool(world: World, people: list[Person], seed: str) -> int:
    """`concorder pool import`: the people as a pool file, imported."""
    path = world.directory / "pool.csv"
    categories = sorted({c for p in people for c in p.pool_attributes})
    with path.open("w", newline="", encoding="utf-8") as fp:
        writer = csv.writer(fp)
        writer.writerow(["id", "phone", "telegram", "language", "household", *categories])
        for p in people:
            writer.writerow(
                [
                    p.label,
                    p.phone or "",
                    p.handle or "",
                    p.language,
                    p.household,
                    *(p.pool_attributes.get(c, "") for c in categories),
                ]
            )
    settings = world.settings
    parsed = recruitment.parse_pool(path, world.assembly, settings.default_region)
    good = [row for row in parsed.rows]
    result = await recruitment.import_pool(
        world.relay.sessions, world.assembly, good, now=world.now, new_id=seeded_ids(seed)
    )
    await _find_people(world, people)
    return result.created


async def _find_people(world: World, people: list[Person]) -> None:
    from sqlalchemy import select

    from store.models import Contact
    from store.recruitment import PoolEntry

    async with world.relay.sessions() as session:
        rows = await session.execute(select(PoolEntry.external_id, PoolEntry.participant_id))
        by_label = dict(rows.all())
        rows = await session.execute(
            select(Contact.participant_id, Contact.address).where(Contact.channel == "sms")
        )
        phones = dict(rows.all())
    for p in people:
        p.participant_id = by_label.get(p.label)
        p.phone = phones.get(p.participant_id)  # as the import wrote it (E.164)


def bot_username(assembly: Assembly) -> str:
    return assembly.recruitment.telegram_bot_username or recruitment.PLACEHOLDER_BOT


async def invite(world: World, people: list[Person]) -> int:
    """`concorder invite`: SMS invitations, and letters (with their Telegram link) for
    people known by a handle only; a letter's reader gets the link's code."""
    letters = world.directory / "invitation-letters.csv"
    result = await recruitment.send_invitations(
        world.relay.sessions,
        world.settings,
        world.assembly,
        bot_username(world.assembly),
        letters_path=letters,
        now=world.now,
    )
    if letters.exists():
        by_pid = {p.participant_id: p for p in people}
        with letters.open(newline="", encoding="utf-8") as fp:
            for row in csv.reader(fp):
                person = by_pid.get(row[0])
                if person is not None:
                    person.code = row[3].rpartition("start=")[2]
    return result.total


async def draw(world: World, seed: str) -> str | None:
    """`concorder select --seed SEED`: the stratified draw, recorded. Returns why it could
    not be made, or None."""
    try:
        await organiser_steps.select(world.relay, rules_for(world.assembly, None), seed)
    except DrawRecordError as error:
        return str(error)
    except DrawError as error:
        return error.message
    return None


async def replace(world: World, seed: str) -> tuple[int, str | None]:
    """`concorder replace --seed SEED`: fill the places that declines, withdrawals and
    expired confirmations freed, keeping the quotas; then `notify-draw` asks the new ones.
    Returns (people added, why not)."""
    try:
        replaced = await organiser_steps.replace(world.relay, seed, now=world.now)
    except DrawRecordError as error:
        return 0, str(error)
    except DrawError as error:
        return 0, error.message
    return (0, None) if replaced is None else (len(replaced[0].added), None)


async def notify_draw(world: World) -> dict[str, int]:
    """`concorder notify-draw`: CONFIRM requests, reserve notices, thanks."""
    told = await recruitment.notify_draw_outcome(world.relay, world.assembly, world.now)
    return dict(told)


def rounds_needed(assembly: Assembly) -> int:
    return max((p.round for p in assembly.prompts), default=1)


async def seat_groups(world: World, seed: str) -> str | None:
    """`concorder groups assign --seed SEED` then `groups notify`: the confirmed panel at
    tables for every round the prompts use. Returns why not, or None."""
    try:
        await organiser_steps.seat(
            world.relay,
            seed,
            rounds=rounds_needed(world.assembly),
            mix_languages=world.assembly.groups.mix_languages,
            now=world.now,
        )
    except (GroupsError, AllocationError) as error:
        return str(error)
    return None


def scratch_pool_rows(path: Path | None) -> list[dict[str, str]]:
    """The assembly's own pool file (pool.csv beside it), when there is one."""
    if path is None or not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as fp:
        return list(csv.DictReader(fp))
