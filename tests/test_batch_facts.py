"""Inbound messages handled in groups read what their flows know once per group, not once
per person; what each person's flow is told is exactly what the one-message path tells it,
for a group that mixes every kind of person the example assembly has (on SQLite and
PostgreSQL); and a group of ordinary messages costs the same statements however many
people are in it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select

from bot.services import deliberation
from bot.services.batch_turns import Arrival, facts_from, facts_readers, handle_batch
from bot.services.turns import facts_for
from flows.config_file import AssemblyFile
from scheduler.config import calendar_of
from scheduler.moves import move_session
from store.calendar import CalendarPreference
from store.models import Contact, Participant
from store.recruitment import (
    CONFIRMED,
    CONSENTED,
    INVITED,
    SELECTED,
    WITHDRAWN,
    Invitation,
    PoolEntry,
    Selection,
)
from tests.conftest import EXAMPLE_ASSEMBLY
from tests.deliberation_world import START, seat_table

SEATED = [("A", "sms", "en"), ("B", "telegram", "fr"), ("C", "telegram", "es")]


@pytest.fixture
def calendar(assembly):
    return calendar_of(AssemblyFile.read(EXAMPLE_ASSEMBLY / "assembly.toml"))


async def person(session, pid: str, channel: str, address: str, language: str = "en", **rows):
    """A participant with a contact, and whichever recruitment rows are given."""
    session.add(Participant(id=pid, language=language, timezone=rows.pop("timezone", None)))
    await session.flush()
    session.add(Contact(participant_id=pid, channel=channel, address=address, sms_consent=True))
    if "invitation" in rows:
        status, outcome_sent = rows["invitation"]
        session.add(
            Invitation(
                participant_id=pid,
                code_hash=pid.ljust(64, "0"),
                channel=channel,
                language=language,
                status=status,
                outcome_sent_at=outcome_sent,
            )
        )
    if "answers" in rows:
        session.add(PoolEntry(participant_id=pid, attributes=rows["answers"]))
    if "selection" in rows:
        status, confirm_by = rows["selection"]
        session.add(
            Selection(participant_id=pid, draw_id="D1", status=status, confirm_by=confirm_by)
        )


async def mixed_group(relay) -> None:
    """Seated members at a table with a prompt open (one with her own briefing time, a
    session moved), and around them everyone recruitment knows of."""
    await seat_table(relay, SEATED)
    await deliberation.open_prompt(relay, round_no=1, prompt="bus-priorities", now=START)
    later = START + timedelta(days=3)
    async with relay.sessions.begin() as session:
        session.add(CalendarPreference(participant_id="P00000000001", briefing_time="07:15"))
        await move_session(session, relay.calendar, 1, START + timedelta(days=60), START)
        await person(session, "N1", "telegram", "9001")  # nobody recruitment knows
        await person(
            session,
            "N2",
            "sms",
            "+447700900302",
            "fr",
            invitation=(INVITED, None),
            answers={"age": "30-44", "travel": "bus", "not asked": "kept out"},
        )
        await person(session, "N3", "telegram", "9003", "es", invitation=(CONSENTED, None))
        await person(
            session, "N4", "sms", "+447700900304", invitation=(CONSENTED, START),
            selection=(SELECTED, later),
        )  # fmt: skip
        await person(session, "N5", "telegram", "9005", invitation=(CONSENTED, START))
        await person(
            session, "N6", "sms", "+447700900306", timezone="America/New_York",
            selection=(CONFIRMED, None),
        )  # on the panel, at no table  # fmt: skip
        await person(session, "N7", "telegram", "9007", invitation=(WITHDRAWN, None))


@pytest.mark.usefixtures("calendar")
async def test_a_groups_facts_are_each_persons_own(db, relay, assembly):
    await mixed_group(relay)
    async with relay.sessions.begin() as session:
        rows = (
            await session.execute(
                select(Participant, Contact)
                .join(Contact, Contact.participant_id == Participant.id)
                .order_by(Participant.id)
            )
        ).all()
        assert len(rows) == 10
        readers = await facts_readers(session, relay, [p for p, _ in rows])
        assert any(readers) and not all(readers)  # some read for the group, some per turn
        told = {}
        for participant, contact in rows:
            alone = await facts_for(session, relay, participant, contact)
            assert await facts_from(session, relay, readers, participant, contact) == alone
            told[participant.id] = alone
        # A person's first message in the group may change their language: their next one's
        # facts follow it, as the one-message path's would.
        participant, contact = next(row for row in rows if row[0].id == "P00000000002")  # B
        participant.language = "es"
        alone = await facts_for(session, relay, participant, contact)
        assert await facts_from(session, relay, readers, participant, contact) == alone
        assert alone.calendar.sessions[0].title != told[participant.id].calendar.sessions[0].title

    # What they are told differs from one to the next as their rows do.
    a = told["P00000000001"]
    assert a.table.letter == "A" and a.calendar.briefing_time == "07:15"
    moved = START + timedelta(days=60)
    assert datetime.fromisoformat(a.calendar.sessions[0].start) == moved.astimezone(UTC)
    assert told["P00000000002"].calendar.briefing_time != "07:15"
    assert told["N1"].recruitment.invitation_status is None and told["N1"].calendar is None
    assert told["N2"].recruitment.known == {"age": "30-44", "travel": "bus"}
    assert told["N2"].default_flow == "invitation"
    assert told["N3"].default_flow == "registration"
    assert told["N4"].default_flow == "confirmation"
    assert told["N5"].recruitment.outcome == "not_selected"
    assert told["N6"].calendar.timezone == "America/New_York" and told["N6"].table is None
    assert told["N7"].default_flow is None


async def statements(db, relay, arrivals: list[Arrival]) -> int:
    """The statements one group's transaction sends to the database."""
    sent = []

    def count(*_):
        sent.append(1)

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        async with relay.sessions.begin() as session:
            results = await handle_batch(session, relay, arrivals)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert all(not r.duplicate and r.queued for r in results)
    return len(sent)


@pytest.mark.usefixtures("calendar")
async def test_a_groups_statements_do_not_grow_with_its_people(db, relay, assembly):
    await mixed_group(relay)
    now = datetime(2026, 12, 1, tzinfo=UTC)

    def group(first: int, size: int, text: str, tag: str) -> list[Arrival]:
        return [
            Arrival.of(
                channel="telegram",
                address=str(700000 + n),
                provider_id=f"{tag}{n}",
                text=text,
                language_hint="en",
                now=now,
            )
            for n in range(first, first + size)
        ]

    # Each person's first message (new people), then a reply from people already known.
    small = await statements(db, relay, group(0, 4, "Hello", "a"))
    large = await statements(db, relay, group(100, 40, "Hello", "b"))
    assert large == small
    small = await statements(db, relay, group(0, 4, "HELP", "c"))
    large = await statements(db, relay, group(100, 40, "HELP", "d"))
    assert large == small


@pytest.mark.usefixtures("calendar")
async def test_panel_members_statements_do_not_grow_with_their_number(db, relay, assembly):
    """A panel member's facts carry the calendar with its moved sessions (and the
    organisers' provider reads them too): read once for the group, not once a member."""
    await mixed_group(relay)
    async with relay.sessions() as session:
        panel = (
            await session.execute(
                select(Contact.channel, Contact.address)
                .join(Selection, Selection.participant_id == Contact.participant_id)
                .where(Selection.status.in_([SELECTED, CONFIRMED]))
                .order_by(Contact.id)
            )
        ).all()
    assert len(panel) >= 4
    now = datetime(2026, 12, 1, tzinfo=UTC)

    def group(people, tag: str) -> list[Arrival]:
        return [
            Arrival.of(channel=c, address=a, provider_id=f"{tag}{n}", text="HELP", now=now)
            for n, (c, a) in people
        ]

    # Two at least: one person's replies are written with one statement fewer.
    two = await statements(db, relay, group(enumerate(panel[:2]), "two"))
    every = await statements(db, relay, group(enumerate(panel), "all"))
    assert every == two


@pytest.mark.usefixtures("calendar")
async def test_a_session_moved_between_two_turns_shows_in_the_second(db, relay, assembly):
    await mixed_group(relay)

    async def first_session_start() -> datetime:
        async with relay.sessions() as session:
            participant = await session.get(Participant, "P00000000001")
            contact = (
                await session.scalars(
                    select(Contact).where(Contact.participant_id == participant.id)
                )
            ).one()
            facts = await facts_for(session, relay, participant, contact)
        return datetime.fromisoformat(facts.calendar.sessions[0].start)

    assert await first_session_start() == START + timedelta(days=60)
    async with relay.sessions.begin() as session:
        await move_session(session, relay.calendar, 1, START + timedelta(days=61), START)
    assert await first_session_start() == START + timedelta(days=61)
