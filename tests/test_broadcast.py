"""Broadcasts: who gets them, what each person reads, what SMS costs, quiet hours, scheduled
sending, status, and the `concorder broadcast` / `concorder organiser` commands."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from bot.bootstrap import build_cli
from bot.services import broadcast, outgoing
from bot.services.broadcast import BroadcastError, Timing, parse_audience
from flows.model import Outbound, State
from store.db import make_engine, sessionmaker
from store.models import AuditEvent, Contact, OutboxMessage, Participant
from store.organisers import Broadcast
from store.recruitment import CONFIRMED, DECLINED, RESERVE, SELECTED, PoolEntry, Selection

NOW = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # 14:00 in London: outside quiet hours
LONG_TEXT = "The venue has changed. " * 9  # 207 GSM-7 characters: two SMS segments
_numbers = iter(range(100, 10_000))


async def add_member(
    session,
    *,
    channel="telegram",
    language="en",
    status=SELECTED,
    timezone=None,
    group=None,
    sms_consent=True,
    opted_out=False,
    address=None,
) -> Participant:
    """A drawn participant with one contact (and a pool entry when a group is given)."""
    person = Participant(
        language=language,
        timezone=timezone,
        opted_out=opted_out,
        state=State(language=language).to_json(),
    )
    session.add(person)
    await session.flush()
    n = next(_numbers)
    if address is None:
        address = f"+4479111{n:05d}" if channel == "sms" else str(700000 + n)
    session.add(
        Contact(participant_id=person.id, channel=channel, address=address, sms_consent=sms_consent)
    )
    session.add(Selection(participant_id=person.id, draw_id="d1", status=status))
    if group:
        session.add(
            PoolEntry(participant_id=person.id, language=language, attributes={"group": group})
        )
    await session.flush()
    return person


async def outbox_rows(db, broadcast_id=None) -> list[OutboxMessage]:
    async with db.sessions() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if broadcast_id is not None:
            query = query.where(OutboxMessage.broadcast_id == broadcast_id)
        return list((await session.execute(query)).scalars())


def test_audiences_are_checked():
    assert str(parse_audience("ALL")) == "all"
    assert str(parse_audience("group:North")) == "group:North"
    assert str(parse_audience("lang:FR")) == "lang:fr"
    for bad, said in (
        ("everyone", "unknown audience"),
        ("lang:xx", "no language"),
        ("group:", "unknown audience"),
        ("selected:1", "unknown audience"),
    ):
        with pytest.raises(BroadcastError, match=said):
            parse_audience(bad)


async def test_audiences_pick_the_right_people(db, settings):
    async with db.sessions.begin() as session:
        chosen = await add_member(session, status=SELECTED, group="North")
        confirmed = await add_member(session, status=CONFIRMED, language="fr")
        reserve = await add_member(session, status=RESERVE, group="north")
        await add_member(session, status=DECLINED)
        members = await broadcast.load_members(session)
    assert len(members) == 3  # declined people are no longer part of the assembly

    def ids(audience):
        return {m.participant_id for m in members if parse_audience(audience).includes(m)}

    assert ids("all") == {chosen.id, confirmed.id, reserve.id}
    assert ids("selected") == {chosen.id, confirmed.id}
    assert ids("reserve") == {reserve.id}
    assert ids("group:north") == ids("group:NORTH") == {chosen.id, reserve.id}
    assert "group:north" in broadcast.audience_counts(members, NOW, Timing())
    assert ids("lang:fr") == {confirmed.id}


async def test_dry_run_counts_channels_languages_segments_and_cost(db, settings):
    async with db.sessions.begin() as session:
        for _ in range(2):
            await add_member(session, channel="telegram", language="en")
        await add_member(session, channel="telegram", language="fr")
        await add_member(session, channel="sms", language="es")
        await add_member(session, channel="sms", language="es", opted_out=True)
        await add_member(session, channel="sms", language="en", status=RESERVE)
        await add_member(session, channel="sms", language="en", sms_consent=False)
    async with db.sessions() as session:
        result = await broadcast.dry_run(
            session,
            settings,
            broadcast.text_content(LONG_TEXT),
            parse_audience("all"),
            now=NOW,
            timing=Timing(),
        )
    assert dict(result.by_language) == {
        ("telegram", "en"): 2,
        ("telegram", "fr"): 1,
        ("sms", "es"): 1,
        ("sms", "en"): 1,
    }
    assert result.count.reachable == 5
    assert (result.count.opted_out, result.count.unreachable) == (1, 1)
    assert (result.sms_messages, result.sms_segments) == (2, 4)
    assert result.cost == pytest.approx(4 * settings.sms_cost_per_segment)
    assert result.held == 0
    assert await outbox_rows(db) == []  # a dry run sends nothing


async def test_session_moved_reads_in_each_language_and_time_zone(db, settings):
    async with db.sessions.begin() as session:
        london = await add_member(session, language="en", timezone="Europe/London", channel="sms")
        paris = await add_member(session, language="fr", timezone="Europe/Paris")
        bogota = await add_member(session, language="es", timezone="America/Bogota")
        content = broadcast.session_moved(2, datetime(2026, 12, 1, 18, 30, tzinfo=UTC))
        row = await broadcast.create(
            session,
            settings,
            content,
            parse_audience("all"),
            organiser_id=None,
            origin="cli",
            urgent=True,
            now=NOW,
        )
    texts = {r.participant_id: r.text for r in await outbox_rows(db, row.id)}
    assert texts[london.id].replace("\u202f", " ") == (
        "Change of schedule: session 2 now starts on Tuesday, December 1, 2026 at 6:30 PM."
    )
    assert "mardi 1 décembre 2026 à 19:30" in texts[paris.id]
    assert (
        "sesión 2" in texts[bogota.id]
        and "martes, 1 de diciembre de 2026 a las 13:30" in texts[bogota.id]
    )
    sms = next(r for r in await outbox_rows(db, row.id) if r.participant_id == london.id)
    assert sms.channel == "sms" and sms.encoding == "GSM-7"  # no-break spaces are gone
    async with db.sessions() as session:
        queued = (
            await session.execute(select(AuditEvent).where(AuditEvent.kind == "broadcast.queued"))
        ).scalar_one()
        stored = await session.get(Broadcast, row.id)
    assert queued.data["broadcast"] == row.id and queued.data["recipients"] == 3
    assert (stored.status, stored.recipients, stored.template) == ("queued", 3, "session-moved")


async def test_quiet_hours_hold_non_urgent_copies_until_each_persons_morning(db, settings):
    late_evening = datetime(2026, 12, 1, 22, 30, tzinfo=UTC)
    async with db.sessions.begin() as session:
        london = await add_member(session, timezone="Europe/London")  # 22:30: quiet
        tokyo = await add_member(session, timezone="Asia/Tokyo")  # 07:30 tomorrow: quiet
        new_york = await add_member(session, timezone="America/New_York")  # 17:30: awake
        calm = await broadcast.create(
            session,
            settings,
            broadcast.text_content("Tomorrow: B12"),
            parse_audience("all"),
            organiser_id=None,
            origin="cli",
            now=late_evening,
        )
        urgent = await broadcast.create(
            session,
            settings,
            broadcast.text_content("Now: B12"),
            parse_audience("all"),
            organiser_id=None,
            origin="cli",
            urgent=True,
            now=late_evening,
        )
    held = {r.participant_id: r.not_before for r in await outbox_rows(db, calm.id)}
    assert held[london.id] == datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    assert held[tokyo.id] == datetime(2026, 12, 1, 23, 0, tzinfo=UTC)
    assert held[new_york.id] == late_evening
    assert {r.not_before for r in await outbox_rows(db, urgent.id)} == {late_evening}


async def test_scheduled_broadcast_goes_out_once_when_due_to_whoever_is_in_then(db, settings):
    async with db.sessions.begin() as session:
        await add_member(session)
        row = await broadcast.create(
            session,
            settings,
            broadcast.text_content("See you soon"),
            parse_audience("all"),
            organiser_id=None,
            origin="cli",
            urgent=True,
            at=NOW + timedelta(hours=1),
            now=NOW,
        )
    assert row.status == "scheduled" and await outbox_rows(db) == []
    assert await broadcast.release_due(db.sessions, settings, NOW) == []
    async with db.sessions.begin() as session:
        await add_member(session, status=RESERVE)  # joins before the time comes
    later = NOW + timedelta(hours=2)
    assert await broadcast.release_due(db.sessions, settings, later) == [row.id]
    assert await broadcast.release_due(db.sessions, settings, later) == []
    assert len(await outbox_rows(db, row.id)) == 2


async def test_discarding_a_scheduled_broadcast_sends_nothing(db, settings):
    async with db.sessions.begin() as session:
        await add_member(session)
        row = await broadcast.create(
            session,
            settings,
            broadcast.text_content("Soon"),
            parse_audience("all"),
            organiser_id=None,
            origin="cli",
            at=NOW + timedelta(hours=1),
            now=NOW,
        )
        await broadcast.discard(session, row.id)
    assert await broadcast.release_due(db.sessions, settings, NOW + timedelta(days=1)) == []
    assert await outbox_rows(db) == []
    async with db.sessions.begin() as session:
        with pytest.raises(BroadcastError, match="only a scheduled broadcast"):
            await broadcast.discard(session, row.id)


async def test_status_counts_queued_sent_delivered_failed(db, settings):
    async with db.sessions.begin() as session:
        people = [await add_member(session) for _ in range(4)]
        row = await broadcast.create(
            session,
            settings,
            broadcast.text_content("Hi"),
            parse_audience("all"),
            organiser_id=None,
            origin="cli",
            urgent=True,
            now=NOW,
        )
    outcomes = {people[0].id: "sent", people[1].id: "delivered", people[2].id: "undeliverable"}
    async with db.sessions.begin() as session:
        for pid, state in outcomes.items():
            await session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.participant_id == pid)
                .values(status=state)
            )
    async with db.sessions() as session:
        result = await broadcast.status(session, row.id)
    expected = {"queued": 1, "sent": 1, "delivered": 1, "failed": 1}
    assert dict(result.messages) == expected and dict(result.people) == expected


async def test_bulk_queueing_keeps_each_contacts_message_order(db, settings):
    async with db.sessions.begin() as session:
        person = await add_member(session)
        contact = (await session.execute(select(Contact))).scalar_one()
        contact.next_seq = 5  # four messages already went to this person
        await broadcast.create(
            session,
            settings,
            broadcast.text_content("Hello"),
            parse_audience("all"),
            organiser_id=None,
            origin="cli",
            urgent=True,
            now=NOW,
        )
    async with db.sessions.begin() as session:
        contact = (await session.execute(select(Contact))).scalar_one()
        participant = await session.get(Participant, person.id)
        await outgoing.enqueue(
            session,
            settings,
            participant,
            contact,
            [Outbound(text="A reply")],
            prompt_id=None,
            now=NOW,
        )
    assert [r.seq for r in await outbox_rows(db)] == [5, 6]


# --- the command line ---------------------------------------------------------------------

runner = CliRunner()


@pytest.fixture
def cli():
    """The `concorder` command as the console script builds it."""
    return build_cli()


def _seed(url: str, work) -> None:
    async def go():
        engine = make_engine(url)
        try:
            async with sessionmaker(engine).begin() as session:
                await work(session)
        finally:
            await engine.dispose()

    asyncio.run(go())


def _count(url: str, model) -> int:
    result = []

    async def work(session):
        result.append((await session.execute(select(func.count()).select_from(model))).scalar_one())

    _seed(url, work)
    return result[0]


def test_cli_organisers_add_list_remove(db, monkeypatch, cli):
    monkeypatch.setenv("CONCORDER_DATABASE_URL", db.url)
    added = runner.invoke(cli, ["organiser", "add", "--phone", "07911 123456", "--name", "Ann"])
    assert added.exit_code == 0, added.output
    assert "Organiser 1 added (sms)" in added.output
    again = runner.invoke(cli, ["organiser", "add", "--phone", "+447911123456"])
    assert again.exit_code == 2 and "already has this phone" in again.output
    bad = runner.invoke(cli, ["organiser", "add", "--phone", "12"])
    assert bad.exit_code == 2 and "wrong length" in bad.output
    nothing = runner.invoke(cli, ["organiser", "add"])
    assert nothing.exit_code == 2 and "--telegram-id or --phone" in nothing.output
    listed = runner.invoke(cli, ["organiser", "list"])
    assert "+447911123456" in listed.output and "Ann" in listed.output
    removed = runner.invoke(cli, ["organiser", "remove", "+447911123456"])
    assert removed.exit_code == 0 and "Organiser 1 removed" in removed.output
    assert "No organisers yet" in runner.invoke(cli, ["organiser", "list"]).output


def test_cli_broadcast_dry_run_send_and_status(db, monkeypatch, cli):
    monkeypatch.setenv("CONCORDER_DATABASE_URL", db.url)

    async def people(session):
        await add_member(session, language="en")
        await add_member(session, language="fr", channel="sms")
        await add_member(session, language="es", status=RESERVE)

    _seed(db.url, people)
    dry = runner.invoke(cli, ["broadcast", LONG_TEXT, "--to", "selected", "--dry-run", "--urgent"])
    assert dry.exit_code == 0, dry.output
    assert "Dry run: selected" in dry.output and "Nothing was sent" in dry.output
    assert "SMS: 1 messages, 2 segments, estimated cost 0.02" in dry.output
    assert _count(db.url, OutboxMessage) == 0

    sent = runner.invoke(cli, ["broadcast", "Bring your badge", "--to", "all", "--urgent"])
    assert sent.exit_code == 0, sent.output
    assert "Broadcast 1 queued for 3 people" in sent.output
    status = runner.invoke(cli, ["broadcast", "status", "1"])
    assert status.exit_code == 0 and "queued" in status.output and "3 people" in status.output
    listing = runner.invoke(cli, ["broadcast", "status"])
    assert "Latest broadcasts" in listing.output

    later = runner.invoke(cli, ["broadcast", "Later", "--at", "2099-01-01 09:00"])
    assert "Broadcast 2 scheduled for 2099-01-01 09:00" in later.output
    assert runner.invoke(cli, ["broadcast", "discard", "2"]).exit_code == 0

    for args, said in (
        (["broadcast", "Hi", "--to", "friends"], "unknown audience"),
        (["broadcast", "two", "words"], "put the whole text in quotes"),
        (["broadcast", "Hi", "--at", "yesterday"], "is not a time"),
        (["broadcast", "Hi", "--at", "2001-01-01 10:00"], "already passed"),
        (["broadcast", "--template", "nope"], "no template"),
        (["broadcast", "--template", "session-moved", "--session", "2"], "needs --session"),
        (["broadcast", "status", "42"], "no broadcast 42"),
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2 and said in result.output, (args, result.output)


def test_cli_session_moved_template_uses_the_assembly_calendar(db, monkeypatch, tmp_path, cli):
    assembly = tmp_path / "assembly.toml"
    assembly.write_text(
        '[assembly]\nname = "Jury"\nlanguages = ["en", "fr"]\n\n'
        '[schedule]\ntimezone = "Europe/Paris"\n\n'
        '[[sessions]]\ntitle = { en = "Opening", fr = "Ouverture" }\n'
        'start = 2026-12-05T10:00:00\nplace = "Town hall"\n\n'
        '[[sessions]]\ntitle = { en = "Evidence", fr = "Auditions" }\n'
        'start = 2026-12-12T10:00:00\nplace = "Town hall"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("CONCORDER_DATABASE_URL", db.url)
    monkeypatch.setenv("CONCORDER_ASSEMBLY", str(assembly))

    async def people(session):
        await add_member(session, language="en")
        await add_member(session, language="fr")

    _seed(db.url, people)
    dry = runner.invoke(
        cli,
        [
            "broadcast",
            "--template",
            "session-moved",
            "--session",
            "2",
            "--start",
            "14:30",
            "--dry-run",
        ],
    )
    assert dry.exit_code == 0, dry.output
    shown = " ".join(dry.output.replace("\u202f", " ").split())  # undo the terminal wrapping
    # Times are the assembly's (Europe/Paris) for people without a zone of their own.
    assert "Change of time: Evidence is now on Saturday, December 12, 2026 at 2:30 PM." in shown
    assert "Auditions a désormais lieu le samedi 12 décembre 2026 à 14:30." in shown
    # The calendar still says 10:00: the organiser is told how to move the session itself.
    assert "concorder session move 2 --start 2026-12-12T14:30" in shown
