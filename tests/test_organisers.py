"""Organisers in chat: /broadcast (or BROADCAST by SMS) is previewed and only sent after
SEND; DISCARD drops it; /schedule lists the sessions; LATE and CAN'T COME reach every
organiser; anyone else typing an organiser command gets the usual answer, and it is audited."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from aiohttp import web
from sqlalchemy import func, select

import bot.channels.telegram_client
from bot.bootstrap import build, create_app
from bot.channels.sms import SmsTransport
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.ratelimit import DeliveryLimits
from bot.services import people
from bot.services import turns as service
from bot.services.organisers import add_organiser, remove_organiser
from bot.settings import Settings
from scheduler import config as scheduler_config
from store.calendar import AttendanceNotice
from store.models import AuditEvent, Contact, OutboxMessage
from store.organisers import Broadcast, BroadcastPreview
from store.recruitment import CONFIRMED, RESERVE
from tests.telegram_peer import EmulatorRequest, telegram_emulator_fixture  # noqa: F401
from tests.test_broadcast import add_member
from tests.twilio_peer import ACCOUNT_SID, FROM_NUMBER, sign, twilio_settings

pytest_plugins = ["tests.twilio_peer"]  # fixtures: prism, recording_prism

NOW = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
ORGANISER_CHAT = "5551"
ORGANISER_PHONE = "+447911000111"
_ids = count(1)

CALENDAR = """
[assembly]
name = "Jury"
languages = ["en", "fr", "es"]

[schedule]
timezone = "Europe/Paris"
quiet_hours = "{quiet}"

[[sessions]]
title = {{ en = "Opening", fr = "Ouverture", es = "Apertura" }}
start = 2026-12-05T10:00:00
place = "Town hall"

[[sessions]]
title = {{ en = "Evidence", fr = "Auditions", es = "Audiencias" }}
start = 2026-12-12T10:00:00
call_in = "https://example.org/call"
"""


@pytest.fixture(autouse=True)
def calendar():
    """A calendar without quiet hours, so what is held does not depend on the test's clock
    (every test's `relay` runs it)."""
    return scheduler_config.parse_calendar(CALENDAR.format(quiet=""))


async def say(relay, address, text, *, channel="telegram", now=NOW):
    return await service.receive(
        relay, channel=channel, address=address, text=text, provider_id=f"m{next(_ids)}", now=now
    )


async def replies_to(db, address) -> list[str]:
    async with db.sessions() as session:
        rows = await session.execute(
            select(OutboxMessage.text)
            .where(OutboxMessage.address == address)
            .order_by(OutboxMessage.id)
        )
        return list(rows.scalars())


async def audit_kinds(db) -> list[str]:
    async with db.sessions() as session:
        return list(
            (await session.execute(select(AuditEvent.kind).order_by(AuditEvent.seq))).scalars()
        )


async def total(db, model, *where) -> int:
    async with db.sessions() as session:
        return (
            await session.execute(select(func.count()).select_from(model).where(*where))
        ).scalar_one()


async def panel(db, *, reserve_fr_sms=True):
    async with db.sessions.begin() as session:
        members = [await add_member(session), await add_member(session)]
        if reserve_fr_sms:
            members.append(await add_member(session, channel="sms", language="fr", status=RESERVE))
        await add_organiser(session, telegram_id=ORGANISER_CHAT, name="Ann")
        await add_organiser(session, phone=ORGANISER_PHONE)
    return members


async def test_telegram_broadcast_is_previewed_and_sent_only_after_send(db, relay):
    await panel(db)
    await say(relay, ORGANISER_CHAT, "/broadcast Meeting moved to room B")
    preview = (await replies_to(db, ORGANISER_CHAT))[-1]
    assert preview.startswith(
        "Preview of your broadcast to all: 3 people (2 on Telegram, 1 by SMS)."
    )
    assert "Meeting moved to room B" in preview and "Reply SEND" in preview
    assert await total(db, Broadcast) == 0 and await total(db, BroadcastPreview) == 1

    await say(relay, ORGANISER_CHAT, "SEND", now=NOW + timedelta(minutes=2))
    assert (await replies_to(db, ORGANISER_CHAT))[-1] == "Sending your broadcast to 3 people."
    async with db.sessions() as session:
        row = (await session.execute(select(Broadcast))).scalar_one()
        sent = (
            (
                await session.execute(
                    select(OutboxMessage).where(OutboxMessage.broadcast_id == row.id)
                )
            )
            .scalars()
            .all()
        )
    assert (row.status, row.origin, row.recipients, row.text) == (
        "queued",
        "telegram",
        3,
        "Meeting moved to room B",
    )
    assert row.created_by is not None
    assert len(sent) == 3 and {m.text for m in sent} == {"Meeting moved to room B"}
    assert await total(db, BroadcastPreview) == 0

    kinds = await audit_kinds(db)
    for kind in ("broadcast.previewed", "broadcast.confirmed", "broadcast.queued"):
        assert kind in kinds
    async with db.sessions() as session:
        data = [str(e.data) for e in (await session.execute(select(AuditEvent))).scalars()]
    assert not any("room B" in d for d in data)  # the text never goes into the audit trail

    # A second SEND has nothing to send: no second broadcast.
    await say(relay, ORGANISER_CHAT, "SEND", now=NOW + timedelta(minutes=3))
    assert await total(db, Broadcast) == 1


async def test_sms_broadcast_to_one_language_can_be_discarded(db, relay):
    await panel(db)
    await say(relay, ORGANISER_PHONE, "BROADCAST to:lang:fr Salle B demain", channel="sms")
    preview = (await replies_to(db, ORGANISER_PHONE))[-1]
    assert "to lang:fr: 1 person (0 on Telegram, 1 by SMS)" in preview
    await say(relay, ORGANISER_PHONE, "discard", channel="sms")
    assert (await replies_to(db, ORGANISER_PHONE))[-1] == "Discarded. Nothing was sent."
    assert await total(db, Broadcast) == 0
    assert await total(db, OutboxMessage, OutboxMessage.broadcast_id.is_not(None)) == 0
    assert "broadcast.discarded" in await audit_kinds(db)


async def test_broadcast_mistakes_get_a_clear_answer(db, relay):
    await panel(db, reserve_fr_sms=False)
    cases = [
        ("/broadcast", "write /broadcast followed by the text"),
        ("/broadcast to:friends Hello", 'I do not know the audience "friends"'),
        ("/broadcast to:group:north Hello", 'Nobody in "group:north" can be reached'),
    ]
    for text, said in cases:
        await say(relay, ORGANISER_CHAT, text)
        assert said in (await replies_to(db, ORGANISER_CHAT))[-1]
    assert await total(db, BroadcastPreview) == 0


async def test_a_preview_lapses(db, relay):
    await panel(db)
    await say(relay, ORGANISER_CHAT, "/broadcast@ConcorderBot Hello")
    await say(relay, ORGANISER_CHAT, "SEND", now=NOW + timedelta(minutes=31))
    assert "has expired" in (await replies_to(db, ORGANISER_CHAT))[-1]
    assert await total(db, Broadcast) == 0 and await total(db, BroadcastPreview) == 0


async def test_french_organiser_gets_french_preview_and_can_answer_envoyer(db, relay):
    await panel(db)
    await say(relay, ORGANISER_CHAT, "FRANCAIS")
    await say(relay, ORGANISER_CHAT, "/broadcast to:reserve Rappel")
    preview = (await replies_to(db, ORGANISER_CHAT))[-1]
    assert preview.startswith("Aperçu de votre message à reserve : 1 personne")
    assert "Répondez ENVOYER" in preview
    await say(relay, ORGANISER_CHAT, "envoyer")
    assert (await replies_to(db, ORGANISER_CHAT))[-1] == "Envoi de votre message à 1 personne."
    assert await total(db, Broadcast) == 1


async def test_people_in_quiet_hours_are_counted_in_the_preview_and_wait(db, relay):
    relay.calendar = scheduler_config.parse_calendar(CALENDAR.format(quiet="00:00-23:59"))
    await panel(db)
    await say(relay, ORGANISER_CHAT, "/broadcast Hello")
    assert "3 of them are in quiet hours" in (await replies_to(db, ORGANISER_CHAT))[-1]
    await say(relay, ORGANISER_CHAT, "SEND")
    async with db.sessions() as session:
        waits = (
            (
                await session.execute(
                    select(OutboxMessage.not_before).where(OutboxMessage.broadcast_id.is_not(None))
                )
            )
            .scalars()
            .all()
        )
    assert len(waits) == 3 and all(w > NOW for w in waits)


async def test_urgent_broadcast_ignores_quiet_hours(db, relay):
    relay.calendar = scheduler_config.parse_calendar(CALENDAR.format(quiet="00:00-23:59"))
    await panel(db)
    await say(relay, ORGANISER_CHAT, "/broadcast URGENT: the hall is closed today")
    preview = (await replies_to(db, ORGANISER_CHAT))[-1]
    assert "goes out at once" in preview and "quiet hours and will get it" not in preview
    await say(relay, ORGANISER_CHAT, "SEND")
    async with db.sessions() as session:
        row = (await session.execute(select(Broadcast))).scalar_one()
        waits = set(
            (
                await session.execute(
                    select(OutboxMessage.not_before).where(OutboxMessage.broadcast_id == row.id)
                )
            ).scalars()
        )
    assert row.urgent and waits == {NOW}


async def test_notices_wait_for_an_organiser_to_tell(db, settings, relay, calendar):
    from bot.services.attendance import forward_attendance

    async with db.sessions.begin() as session:
        member = await add_member(session, channel="sms", status=CONFIRMED)
    contact = (await _addresses(db, member.id))[0]
    await say(relay, contact, "I'm late", channel="sms")  # nobody to tell yet
    async with db.sessions() as session:
        notice = (await session.execute(select(AttendanceNotice))).scalar_one()
    assert notice.forwarded_at is None
    async with db.sessions.begin() as session:
        await add_organiser(session, phone=ORGANISER_PHONE)
    async with db.sessions.begin() as session:
        assert await forward_attendance(session, settings, NOW, calendar=calendar) == 1
    async with db.sessions.begin() as session:
        assert await forward_attendance(session, settings, NOW, calendar=calendar) == 0  # told once
    assert (await replies_to(db, ORGANISER_PHONE)) == [f"{member.id} will be late for session 1."]


async def test_non_organisers_get_the_usual_answer_and_the_attempt_is_audited(db, relay):
    await panel(db)
    stranger = "9990001"
    await say(relay, stranger, "hello")
    await say(relay, stranger, "/broadcast Free pizza")
    assert (await replies_to(db, stranger))[-2] == "Sorry, I did not understand that."
    assert "organiser.command_refused" in await audit_kinds(db)
    assert await total(db, BroadcastPreview) == 0 and await total(db, Broadcast) == 0

    async with db.sessions.begin() as session:
        await remove_organiser(session, ORGANISER_CHAT)
    await say(relay, ORGANISER_CHAT, "/broadcast Still me?")
    assert await total(db, BroadcastPreview) == 0
    assert "Preview" not in (await replies_to(db, ORGANISER_CHAT))[-1]


async def test_schedule_lists_the_coming_sessions_in_the_organisers_language(db, relay):
    await panel(db)
    await say(relay, ORGANISER_CHAT, "/schedule")
    listing = (await replies_to(db, ORGANISER_CHAT))[-1].replace("\u202f", " ")
    assert listing.splitlines() == [
        "Coming up:",
        "Session 1: Opening, Saturday, December 5, 2026 at 10:00 AM (Town hall)",
        "Session 2: Evidence, Saturday, December 12, 2026 at 10:00 AM (https://example.org/call)",
    ]
    await say(relay, ORGANISER_PHONE, "ESPANOL", channel="sms")
    await say(
        relay, ORGANISER_PHONE, "SCHEDULE", channel="sms", now=datetime(2026, 12, 6, tzinfo=UTC)
    )
    listing = (await replies_to(db, ORGANISER_PHONE))[-1]
    assert listing.splitlines()[0] == "Próximas sesiones:"
    assert "Sesión 2: Audiencias, sábado, 12 de diciembre de 2026" in listing
    assert "Apertura" not in listing  # session 1 is over


async def test_late_and_cant_come_reach_every_organiser(db, relay):
    await panel(db)
    async with db.sessions.begin() as session:
        member = await add_member(session, channel="sms", status=CONFIRMED)
    contact = (await _addresses(db, member.id))[0]
    await say(relay, contact, "LATE, stuck in traffic", channel="sms")
    assert (await replies_to(db, contact))[-1] == (
        "Thank you for letting us know. The organisers have been told."
    )
    for organiser in (ORGANISER_CHAT, ORGANISER_PHONE):
        told = (await replies_to(db, organiser))[-1]
        assert told == (
            f"{member.id} will be late for session 1.\nTheir message: LATE, stuck in traffic"
        )
    await say(relay, contact, "Can't come", channel="sms")
    assert (await replies_to(db, ORGANISER_CHAT))[-1].startswith(
        f"{member.id} cannot come to session 1."
    )
    async with db.sessions() as session:
        notices = (await session.execute(select(AttendanceNotice))).scalars().all()
    assert [(n.kind, n.session_id) for n in notices] == [("late", "s1"), ("absent", "s1")]
    assert all(n.forwarded_at is not None for n in notices)
    assert (await audit_kinds(db)).count("attendance.forwarded") == 2


async def test_late_from_someone_outside_the_panel_is_not_forwarded(db, relay):
    await panel(db)
    await say(relay, "+447911000999", "late", channel="sms")
    assert await total(db, AttendanceNotice) == 0
    assert "late" not in " ".join(await replies_to(db, ORGANISER_CHAT)).lower()


async def _addresses(db, participant_id) -> list[str]:
    async with db.sessions() as session:
        return list(
            (
                await session.execute(
                    select(Contact.address).where(Contact.participant_id == participant_id)
                )
            ).scalars()
        )


# --- end to end over the Telegram emulator -------------------------------------------------


async def test_organiser_broadcasts_from_telegram_through_the_running_service(
    db, telegram_emulator, monkeypatch, calendar
):
    """The app as deployed (polling, dispatcher, no SMS account): the organiser's /broadcast
    comes back as a preview, and after SEND each member's Telegram chat receives it."""
    monkeypatch.setattr(
        bot.channels.telegram_client,
        "request_factory",
        lambda read_timeout=10.0: EmulatorRequest(read_timeout=read_timeout),
    )
    members, organiser = (6660001, 6660002), 6660100
    async with db.sessions.begin() as session:
        for chat in members:
            await add_member(session, address=str(chat))
        await add_member(session, channel="sms")
        await add_organiser(session, telegram_id=str(organiser))
    token = telegram_emulator.new_token()
    settings = Settings(
        CONCORDER_DATABASE_URL=db.url,
        TELEGRAM_BOT_TOKEN=token,
        TELEGRAM_API_BASE_URL=telegram_emulator.url,
        _env_file=None,
    )
    runner = web.AppRunner(create_app(relay=build(settings, calendar=calendar), migrate=False))
    await runner.setup()
    try:
        await telegram_emulator.user_writes(token, organiser, "/broadcast Doors open at 9:30")
        (preview,) = await telegram_emulator.user_reads(token, organiser)
        assert preview["text"].startswith(
            "Preview of your broadcast to all: 3 people (2 on Telegram, 1 by SMS)."
        )
        await telegram_emulator.user_writes(token, organiser, "SEND")
        (confirmation,) = await telegram_emulator.user_reads(token, organiser)
        assert confirmation["text"] == "Sending your broadcast to 3 people."
        for chat in members:
            (received,) = await telegram_emulator.user_reads(token, chat)
            assert received["text"] == "Doors open at 9:30"
    finally:
        await asyncio.wait_for(runner.cleanup(), timeout=10)
    async with db.sessions() as session:
        statuses = (
            (
                await session.execute(
                    select(OutboxMessage.status).where(OutboxMessage.broadcast_id.is_not(None))
                )
            )
            .scalars()
            .all()
        )
    # With no SMS account, the SMS member's copy waits for one: nobody claims it delivered.
    assert sorted(statuses) == ["queued", "sent", "sent"]


# --- end to end by SMS: signed Twilio webhooks in, Twilio's API (Prism) out ---------------


async def test_organiser_broadcasts_by_sms_through_twilio(
    db, aiohttp_client, recording_prism, calendar
):
    settings = twilio_settings(db.url, TWILIO_API_BASE_URL=recording_prism.url)
    client = await aiohttp_client(
        create_app(relay=build(settings, calendar=calendar), dispatch=False)
    )
    async with db.sessions.begin() as session:
        french = await add_member(session, channel="sms", language="fr")
        await add_member(session, language="en")
        await add_organiser(session, phone=ORGANISER_PHONE)
    member_phone = (await _addresses(db, french.id))[0]

    async def organiser_texts(sid: str, body: str) -> None:
        form = {
            "MessageSid": sid,
            "SmsSid": sid,
            "AccountSid": ACCOUNT_SID,
            "From": ORGANISER_PHONE,
            "To": FROM_NUMBER,
            "Body": body,
            "NumMedia": "0",
        }
        url = str(client.make_url("/webhooks/twilio/sms"))
        answer = await client.post("/webhooks/twilio/sms", data=form, headers=sign(url, form))
        assert answer.status == 200

    dispatcher = Dispatcher(
        db.sessions, {"sms": SmsTransport(settings)}, settings, limits=DeliveryLimits.off()
    )

    def sent() -> set[tuple[str, str]]:
        return {(r.form["To"][0], r.form["Body"][0]) for r in recording_prism.requests}

    try:
        await organiser_texts("SM" + "a1" * 16, "BROADCAST to:lang:fr Salle B demain")
        await dispatcher.drain()
        (preview,) = [body for to, body in sent() if to == ORGANISER_PHONE]
        assert preview.startswith("Preview of your broadcast to lang:fr: 1 person")
        code = re.search(r"Reply SEND (\d{6}) to send it to 1 person", preview).group(1)
        await organiser_texts("SM" + "a2" * 16, f"SEND {code}")  # the code from their phone
        await dispatcher.drain()
    finally:
        await dispatcher.transports["sms"].close()
    assert (member_phone, "Salle B demain") in sent()
    assert (ORGANISER_PHONE, "Sending your broadcast to 1 person.") in sent()
    assert len(sent()) == 3  # the English member is not in lang:fr


# --- organiser rights follow the contact a message came in on ------------------------------


async def test_a_chat_moved_by_an_invitation_link_gives_no_rights_to_the_invited_phone(db, relay):
    """The organiser opens an invitation link in their own chat (to try it, or by mistake):
    the chat now belongs to the invited person. The invited person's own phone must not
    become an organiser's, while the organiser's chat stays theirs."""
    from store.recruitment import Invitation, PoolEntry, hash_code

    await panel(db, reserve_fr_sms=False)
    await say(relay, ORGANISER_CHAT, "hello")  # the organiser's chat is known
    invited_phone, code = "+447911000222", "Zz9Yy8Xx7Ww6Vv5Uu4Tt3Ss2Rr1Qq0Pp"
    async with db.sessions.begin() as session:
        invited = (
            await people.find_or_create_contact(session, "sms", invited_phone, "en")
        ).participant_id
        session.add(PoolEntry(participant_id=invited, language="en", attributes={}))
        session.add(
            Invitation(
                participant_id=invited, channel="sms", language="en", code_hash=hash_code(code)
            )
        )
    await say(relay, ORGANISER_CHAT, f"/start {code}")
    assert "contact.moved" in await audit_kinds(db)
    async with db.sessions() as session:
        owners = set(
            (
                await session.execute(
                    select(Contact.participant_id).where(
                        Contact.address.in_([ORGANISER_CHAT, invited_phone])
                    )
                )
            ).scalars()
        )
    assert owners == {invited}  # one participant now holds both contacts

    await say(relay, invited_phone, "BROADCAST Free pizza", channel="sms")
    assert await total(db, BroadcastPreview) == 0
    assert not any("Preview" in text for text in await replies_to(db, invited_phone))
    assert "organiser.command_refused" in await audit_kinds(db)

    await say(relay, ORGANISER_CHAT, "/broadcast Doors open at 9")  # still theirs
    assert (await replies_to(db, ORGANISER_CHAT))[-1].startswith("Preview of your broadcast")


async def test_a_phone_attached_to_an_organisers_participant_gets_no_rights(db, relay):
    """A pool import that matches the organiser's participant (by external id, say) and
    attaches another phone to it: that phone is someone else's, not an organiser's."""
    await panel(db, reserve_fr_sms=False)
    other_phone = "+447911000333"
    await say(relay, ORGANISER_PHONE, "hello", channel="sms")
    async with db.sessions.begin() as session:
        organiser_contact = (
            await session.execute(select(Contact).where(Contact.address == ORGANISER_PHONE))
        ).scalar_one()
        session.add(
            Contact(
                participant_id=organiser_contact.participant_id,
                channel="sms",
                address=other_phone,
                sms_consent=True,
            )
        )
    await say(relay, other_phone, "BROADCAST Free pizza", channel="sms")
    assert await total(db, BroadcastPreview) == 0
    await say(relay, other_phone, "SCHEDULE", channel="sms")
    assert not any("Coming up" in said for said in await replies_to(db, other_phone))
    await say(relay, ORGANISER_PHONE, "BROADCAST Doors open at 9", channel="sms")
    assert (await replies_to(db, ORGANISER_PHONE))[-1].startswith("Preview of your broadcast")
