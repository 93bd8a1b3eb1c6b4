"""Invitations: a dry run that counts and prices, one-time codes stored hashed, outbox rows
and audit events in the invitation's transaction, --limit, resuming, one reminder, lapsing,
and the bot's username asked of Telegram."""

from __future__ import annotations

import asyncio
import csv
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

import bot.channels.telegram_client
from bot.bootstrap import build_cli
from bot.channels.simulator import SimulatorTransport
from bot.cli import recruitment as cli_recruitment
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.ratelimit import DeliveryLimits
from bot.services import invite_codes, recruitment
from bot.services.turns import receive
from bot.settings import Settings
from flows import segments
from store import audit
from store.db import make_engine, sessionmaker, upgrade
from store.models import AuditEvent, OutboxMessage, utcnow
from store.recruitment import LAPSED, REMINDED, Invitation, hash_code
from tests.telegram_peer import EmulatorRequest, telegram_emulator_fixture  # noqa: F401

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "citizens-jury"
POOL = (
    "phone,telegram,language,household\n"
    "+447700900201,,en,H1\n"
    "+447700900202,,fr,H1\n"
    "+447700900203,both_ways,es,H2\n"
    ",only_handle,en,H3\n"
    "+447700900205,,en,H4\n"
)
LINK = re.compile(r"https://t\.me/RiversideJuryBot\?start=([A-Za-z0-9_-]{1,63})(?![A-Za-z0-9_-])")


@pytest.fixture
async def pool(db, assembly, tmp_path):
    path = tmp_path / "pool.csv"
    path.write_text(POOL)
    parsed = recruitment.parse_pool(path, assembly)
    await recruitment.import_pool(db.sessions, assembly, parsed.rows)
    return parsed.rows


async def count(db, model):
    async with db.sessions() as session:
        return await session.scalar(select(func.count()).select_from(model))


async def test_dry_run_counts_channels_languages_and_sms_cost(db, settings, assembly, pool):
    async with db.sessions() as session:
        plan = await recruitment.plan_invitations(session, settings, assembly, "RiversideJuryBot")
    assert plan.by_channel_language == {
        ("sms", "en"): 2,
        ("sms", "fr"): 1,
        ("sms", "es"): 1,
        ("letter", "en"): 1,
    }
    assert plan.sms_messages == 4
    assert plan.sms_segments >= 8  # the invitation with its link takes several segments
    assert plan.cost(0.01) == pytest.approx(plan.sms_segments * 0.01)
    assert await count(db, Invitation) == 0 and await count(db, OutboxMessage) == 0


async def test_invitations_store_hashed_codes_with_outbox_and_audit(
    db, settings, assembly, pool, tmp_path, relay
):
    letters = tmp_path / "letters.csv"
    result = await recruitment.send_invitations(
        db.sessions, settings, assembly, "RiversideJuryBot", letters_path=letters
    )
    assert result.invited == {"sms": 4, "letter": 1} and result.letters == 1
    async with db.sessions() as session:
        outbox = list((await session.execute(select(OutboxMessage))).scalars())
        invitations = list((await session.execute(select(Invitation))).scalars())
        kinds = list((await session.execute(select(AuditEvent.kind))).scalars())
        assert (await audit.verify(session)).ok
    assert {o.kind for o in outbox} == {"invitation"} and len(outbox) == 4
    # The outbox keeps a marker: the code is filled in as the message leaves.
    codes = [
        LINK.search(invite_codes.reveal(o.text, o.kind, relay.invite_key)).group(1) for o in outbox
    ]
    assert not any(code in o.text for code in codes for o in outbox)
    with letters.open() as fp:
        codes += [LINK.search(row["link"]).group(1) for row in csv.DictReader(fp)]
    assert len(set(codes)) == 5
    stored = {i.code_hash for i in invitations}
    assert stored == {hash_code(c) for c in codes}
    assert not any(c in stored for c in codes)  # never the code itself
    assert kinds.count("invitation.sent") == 5
    french = next(o for o in outbox if o.address == "+447700900202")
    assert french.text.startswith("Vous êtes invité")
    assert (french.encoding, french.segments) == ("UCS-2", segments.measure(french.text).segments)


async def test_limit_and_resume_never_invite_twice(db, settings, assembly, pool, tmp_path):
    letters = tmp_path / "letters.csv"
    first = await recruitment.send_invitations(
        db.sessions, settings, assembly, "Bot1x", limit=2, letters_path=letters, chunk=1
    )
    assert first.total == 2 and await count(db, Invitation) == 2
    second = await recruitment.send_invitations(
        db.sessions, settings, assembly, "Bot1x", letters_path=letters
    )
    third = await recruitment.send_invitations(
        db.sessions, settings, assembly, "Bot1x", letters_path=letters
    )
    assert second.total == 3 and third.total == 0
    assert await count(db, Invitation) == 5 and await count(db, OutboxMessage) == 4


async def test_one_reminder_after_the_delay_then_the_invitation_lapses(
    db, settings, assembly, pool, relay
):
    now = utcnow()
    await recruitment.send_invitations(db.sessions, settings, assembly, "RiversideJuryBot", now=now)
    # One person answers: no reminder for them.
    await receive(
        relay, channel="sms", address="+447700900201", text="1", provider_id=uuid.uuid4().hex
    )
    early = now + assembly.recruitment.remind_after - timedelta(minutes=1)
    async with db.sessions() as session:
        assert await recruitment.due_invitation_reminders(session, early) == []
    due_at = now + assembly.recruitment.remind_after
    assert await recruitment.send_invitation_reminders(relay, due_at) == 3
    assert await recruitment.send_invitation_reminders(relay, due_at) == 0
    async with db.sessions() as session:
        reminders = list(
            (
                await session.execute(
                    select(OutboxMessage.text).where(OutboxMessage.created_at == due_at)
                )
            ).scalars()
        )
        statuses = dict(
            (
                await session.execute(
                    select(Invitation.channel, func.count())
                    .where(Invitation.status == REMINDED)
                    .group_by(Invitation.channel)
                )
            ).all()
        )
    assert len(reminders) == 3 and all(
        "reminder" in t or "rappel" in t or "recordatorio" in t for t in reminders
    )
    assert statuses == {"sms": 3}

    lapse_at = due_at + assembly.recruitment.lapse_after
    async with db.sessions.begin() as session:
        assert await recruitment.lapse_invitations(session, lapse_at - timedelta(seconds=1)) == 0
    async with db.sessions.begin() as session:
        assert await recruitment.lapse_invitations(session, lapse_at) == 4  # 3 + the letter
    async with db.sessions() as session:
        lapsed = await session.scalar(select(func.count()).where(Invitation.status == LAPSED))
    assert lapsed == 4
    replies = await _reply(db, relay, "+447700900205", "1")
    assert "expired" in replies[0]


async def _reply(db, relay, address, text):
    async with db.sessions() as session:
        before = await session.scalar(select(func.coalesce(func.max(OutboxMessage.id), 0)))
    await receive(relay, channel="sms", address=address, text=text, provider_id=uuid.uuid4().hex)
    async with db.sessions() as session:
        rows = await session.execute(
            select(OutboxMessage.text).where(OutboxMessage.id > before).order_by(OutboxMessage.id)
        )
        return list(rows.scalars())


async def test_bot_username_is_asked_of_telegram(telegram_emulator, monkeypatch, assembly):
    monkeypatch.setattr(
        bot.channels.telegram_client,
        "request_factory",
        lambda read_timeout=10.0: EmulatorRequest(read_timeout=read_timeout),
    )
    settings = Settings(
        TELEGRAM_BOT_TOKEN=telegram_emulator.new_token(),
        TELEGRAM_API_BASE_URL=telegram_emulator.url,
        _env_file=None,
    )
    username, source = await recruitment.resolve_bot_username(settings, assembly)
    assert source == "telegram" and username
    simulated = Settings(_env_file=None)
    assert await recruitment.resolve_bot_username(simulated, assembly) == (
        "RiversideJuryBot",
        "assembly file",
    )
    assert await recruitment.resolve_bot_username(simulated, None) == (
        recruitment.PLACEHOLDER_BOT,
        "placeholder",
    )
    assert await recruitment.resolve_bot_username(simulated, None, "@GivenBot") == (
        "GivenBot",
        "option",
    )


def test_cli_dry_run_then_invite_then_remind(tmp_path, monkeypatch):
    url = f"sqlite+aiosqlite:///{tmp_path}/cli.db"
    upgrade(url)
    (tmp_path / "pool.csv").write_text(POOL)
    monkeypatch.setenv("CONCORDER_DATABASE_URL", url)
    monkeypatch.setenv("CONCORDER_ASSEMBLY", str(EXAMPLE / "assembly.toml"))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    app = build_cli()
    done = runner.invoke(app, ["pool", "import", str(tmp_path / "pool.csv")])
    assert done.exit_code == 0, done.output
    dry = runner.invoke(app, ["invite", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "estimated cost" in dry.output and "letter" in dry.output
    sent = runner.invoke(app, ["invite", "--limit", "3"])
    assert sent.exit_code == 0, sent.output
    assert "3 messages queued" in sent.output or "Invitations sent" in sent.output
    rest = runner.invoke(app, ["invite"])
    assert "1 letter links written to invitation-letters.csv" in rest.output
    assert (tmp_path / "invitation-letters.csv").exists()
    remind = runner.invoke(app, ["invite", "--remind", "--dry-run"])
    assert "0 reminders are due" in remind.output
    reminded = runner.invoke(app, ["invite", "--remind"])
    assert reminded.exit_code == 0, reminded.output
    assert "0 reminders sent, 0 invitations lapsed" in reminded.output
    status = runner.invoke(app, ["status"])
    assert status.exit_code == 0 and "Invited" in status.output
    assert re.search(r"Not invited yet\s*│\s*0", status.output)


def test_cli_invitations_and_reminders_written_at_night_wait_for_the_morning(tmp_path, monkeypatch):
    """`concorder invite` at 23:00 in the assembly's zone (London, on summer time) queues
    invitations that are not sent before 08:00 there; the reminders of `--remind` too."""
    url = f"sqlite+aiosqlite:///{tmp_path}/night.db"
    upgrade(url)
    (tmp_path / "pool.csv").write_text(POOL)
    monkeypatch.setenv("CONCORDER_DATABASE_URL", url)
    monkeypatch.setenv("CONCORDER_ASSEMBLY", str(EXAMPLE / "assembly.toml"))
    monkeypatch.chdir(tmp_path)
    london = ZoneInfo("Europe/London")
    night = datetime(2027, 6, 15, 23, 0, tzinfo=london).astimezone(UTC)
    clock = {"now": night}
    from bot.services.recruitment import invitations, pool, reminders

    for module in (invitations, pool, reminders, cli_recruitment):
        monkeypatch.setattr(module, "utcnow", lambda: clock["now"])
    runner = CliRunner()
    app = build_cli()
    assert runner.invoke(app, ["pool", "import", str(tmp_path / "pool.csv")]).exit_code == 0
    sent = runner.invoke(app, ["invite"])
    assert sent.exit_code == 0, sent.output
    clock["now"] = night + timedelta(days=3)
    reminded = runner.invoke(app, ["invite", "--remind"])
    assert "4 reminders sent" in reminded.output, reminded.output
    morning = datetime(2027, 6, 16, 8, 0, tzinfo=london)

    async def check() -> None:
        engine = make_engine(url)
        sessions = sessionmaker(engine)
        try:
            async with sessions() as session:
                rows = (
                    await session.execute(
                        select(OutboxMessage.created_at, OutboxMessage.not_before)
                    )
                ).all()
            invitations = [due for made, due in rows if made == night]
            reminders = [due for made, due in rows if made == night + timedelta(days=3)]
            assert len(invitations) == 4 and len(reminders) == 4
            assert set(invitations) == {morning}
            assert set(reminders) == {morning + timedelta(days=3)}
            for at, expected in ((morning - timedelta(minutes=1), 0), (morning, 4)):
                transports = {c: SimulatorTransport(c) for c in ("sms", "telegram")}
                dispatcher = Dispatcher(
                    sessions,
                    transports,
                    Settings(_env_file=None),
                    clock=lambda at=at: at,
                    limits=DeliveryLimits.off(),
                )
                assert await dispatcher.drain() == expected
        finally:
            await engine.dispose()

    asyncio.run(check())


async def test_the_service_loads_the_assembly_and_runs_the_timed_work(db, assembly, pool):
    from bot.bootstrap import create_app
    from bot.web.app import RELAY

    settings = Settings(
        CONCORDER_DATABASE_URL=db.url,
        _env_file=None,
        CONCORDER_ASSEMBLY=str(EXAMPLE / "assembly.toml"),
    )
    relay = create_app(settings, migrate=False, dispatch=False)[RELAY]
    assert relay.assembly.name == assembly.name
    relay.sessions = db.sessions  # what the application's start-up opens
    now = utcnow()
    await recruitment.send_invitations(db.sessions, settings, assembly, "RiversideJuryBot", now=now)
    later = now + assembly.recruitment.remind_after
    assert await recruitment.recruitment_tick(relay, later) == {
        "reminded": 4,
        "lapsed": 0,
        "expired": 0,
    }
    assert await recruitment.recruitment_tick(relay, later + assembly.recruitment.lapse_after) == {
        "reminded": 0,
        "lapsed": 5,
        "expired": 0,
    }
