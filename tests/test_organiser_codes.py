"""A sender number can be forged: a broadcast previewed by SMS goes out only with the one-time
code sent to the organiser's real phone, and wrong codes lock SMS organiser commands."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

from sqlalchemy import select

from bot.services.organisers import add_organiser
from store.models import AuditEvent, OutboxMessage
from store.organisers import Broadcast, BroadcastPreview, Organiser
from tests.test_broadcast import add_member
from tests.test_organisers import (  # noqa: F401  (fixture)
    NOW,
    ORGANISER_CHAT,
    ORGANISER_PHONE,
    calendar,  # the organisers' calendar, which every test's relay runs
    replies_to,
    say,
    total,
)


async def organisers_and_panel(db):
    async with db.sessions.begin() as session:
        for _ in range(2):
            await add_member(session)
        await add_organiser(session, telegram_id=ORGANISER_CHAT, name="Ann")
        await add_organiser(session, phone=ORGANISER_PHONE, name="Bob")


async def text(db, relay, body, *, minutes=0):
    await say(relay, ORGANISER_PHONE, body, channel="sms", now=NOW + timedelta(minutes=minutes))
    return (await replies_to(db, ORGANISER_PHONE))[-1]


def code_in(preview: str) -> str:
    return re.search(r"Reply SEND (\d{6}) to send it to 2 people", preview).group(1)


def wrong(code: str, n: int) -> str:
    return f"{(int(code) + n) % 10**6:06d}"


async def test_an_sms_preview_is_sent_only_with_its_code(db, relay, caplog):
    caplog.set_level(logging.INFO)  # what `concorder serve` logs
    await organisers_and_panel(db)
    preview = await text(db, relay, "BROADCAST Doors open at 9")
    code = code_in(preview)
    assert preview.endswith(
        f"Reply SEND {code} to send it to 2 people, or DISCARD to drop "
        "it. The code works once, for 30 minutes."
    )

    assert await text(db, relay, "SEND") == (
        "To send it, reply SEND followed by the code from the preview. Nothing was sent."
    )
    assert await text(db, relay, f"SEND {wrong(code, 1)}") == (
        "That code is wrong, so nothing was sent. 2 more tries before SMS commands are locked."
    )
    assert await total(db, Broadcast) == 0

    assert await text(db, relay, f"send {code}", minutes=3) == (
        "Sending your broadcast to 2 people."
    )
    assert await total(db, Broadcast) == 1
    async with db.sessions() as session:
        organiser = (
            await session.execute(select(Organiser).where(Organiser.phone == ORGANISER_PHONE))
        ).scalar_one()
        audit = [str(e.data) for e in (await session.execute(select(AuditEvent))).scalars()]
    assert organiser.sms_failures == 0  # a right code clears the count
    assert not [line for line in audit if code in line]
    assert not [(r.name, r.getMessage()) for r in caplog.records if code in r.getMessage()]

    # Used once: the same code again sends nothing more.
    await text(db, relay, f"SEND {code}", minutes=4)
    assert await total(db, Broadcast) == 1


async def test_a_french_organiser_is_told_envoyer_and_envoyer_with_the_code_sends(db, relay):
    await organisers_and_panel(db)
    await text(db, relay, "FRANCAIS")
    preview = await text(db, relay, "BROADCAST Les portes ouvrent à 9 h")
    code = re.search(r"Répondez ENVOYER (\d{6}) pour l'envoyer à 2 personnes", preview).group(1)
    assert "ou ABANDONNER pour l'abandonner" in preview
    assert await text(db, relay, "ENVOYER") == (
        "Pour l'envoyer, répondez ENVOYER suivi du code de l'aperçu. Rien n'a été envoyé."
    )
    assert (await text(db, relay, f"Envoyer {code}")).startswith("Envoi de votre message")
    assert await total(db, Broadcast) == 1


async def test_only_a_hash_of_the_code_is_stored(db, relay):
    await organisers_and_panel(db)
    code = code_in(await text(db, relay, "BROADCAST Doors open at 9"))
    async with db.sessions() as session:
        preview = (await session.execute(select(BroadcastPreview))).scalar_one()
    assert preview.code_hash and code not in preview.code_hash


async def test_the_code_lapses_with_the_preview(db, relay):
    await organisers_and_panel(db)
    code = code_in(await text(db, relay, "BROADCAST Doors open at 9"))
    answer = await text(db, relay, f"SEND {code}", minutes=31)
    assert "has expired" in answer
    assert await total(db, Broadcast) == 0


async def test_three_wrong_codes_lock_sms_commands_and_tell_the_other_organisers(db, relay):
    await organisers_and_panel(db)
    await say(relay, ORGANISER_CHAT, "FRANCAIS")  # Ann reads French
    code = code_in(await text(db, relay, "BROADCAST Free pizza"))  # a forged From
    for n in (1, 2):
        await text(db, relay, f"SEND {wrong(code, n)}", minutes=n)
    locked = await text(db, relay, f"SEND {wrong(code, 3)}", minutes=3)
    assert locked == (
        "That code is wrong, so nothing was sent and the preview is dropped. "
        "Organiser commands by SMS from this number are locked for 30 minutes, "
        "and the other organisers have been told."
    )
    assert await total(db, BroadcastPreview) == 0 and await total(db, Broadcast) == 0
    told = (await replies_to(db, ORGANISER_CHAT))[-1]
    assert told.startswith(
        "Les commandes d'organisation par SMS de Bob sont bloquées pendant 30 minutes"
    )

    # Locked: even the right code, or a new broadcast, does nothing until the lock ends.
    await text(db, relay, f"SEND {code}", minutes=4)
    refused = await text(db, relay, "BROADCAST Free pizza", minutes=5)
    assert refused.startswith(
        "Organiser commands by SMS from this number are locked for 28 more minutes"
    )
    assert await total(db, BroadcastPreview) == 0 and await total(db, Broadcast) == 0
    async with db.sessions() as session:
        kinds = list((await session.execute(select(AuditEvent.kind))).scalars())
    assert kinds.count("organiser.code_rejected") == 2 and "organiser.sms_locked" in kinds

    # Telegram organisers are not locked; and after 30 minutes SMS works again.
    await say(relay, ORGANISER_CHAT, "/broadcast Salle B", now=NOW + timedelta(minutes=6))
    assert (await replies_to(db, ORGANISER_CHAT))[-1].startswith("Aperçu")
    again = await text(db, relay, "BROADCAST Doors open at 9", minutes=34)
    assert again.startswith("Preview of your broadcast")


async def test_a_forged_sms_cannot_answer_a_telegram_preview(db, relay):
    """An organiser with both a chat and a phone previews on Telegram: SEND by SMS (which
    anyone can forge) does not send it, and Telegram does not send a preview made by SMS."""
    async with db.sessions.begin() as session:
        await add_member(session)
        await add_organiser(session, telegram_id=ORGANISER_CHAT, phone=ORGANISER_PHONE)
    await say(relay, ORGANISER_CHAT, "/broadcast Doors open at 9")
    assert await text(db, relay, "SEND 123456") == (
        "The broadcast waiting for your answer was previewed on Telegram: answer it there."
    )
    assert await total(db, Broadcast) == 0

    await text(db, relay, "BROADCAST Free pizza")  # replaces the preview
    await say(relay, ORGANISER_CHAT, "SEND")
    assert (await replies_to(db, ORGANISER_CHAT))[-1] == (
        "The broadcast waiting for your answer was previewed by SMS: answer it there."
    )
    assert await total(db, Broadcast) == 0


async def test_the_code_goes_only_to_the_organisers_phone(db, relay):
    await organisers_and_panel(db)
    code = code_in(await text(db, relay, "BROADCAST Doors open at 9"))
    async with db.sessions() as session:
        holders = (
            (
                await session.execute(
                    select(OutboxMessage.address).where(OutboxMessage.text.contains(code))
                )
            )
            .scalars()
            .all()
        )
    assert holders == [ORGANISER_PHONE]


def test_the_flow_takes_its_code_from_the_facts_and_keeps_it_out_of_its_events():
    """Flows stay pure: the same facts give the same preview, and the code is only in the
    message to the organiser, never in an event (events become the audit trail)."""
    from dataclasses import replace

    from flows.catalog import build_engine
    from flows.facts import AudienceFacts, Facts, OrganiserFacts, PendingBroadcast
    from flows.model import Context, Inbound, State
    from flows.organiser import code_digest

    facts = Facts(
        organiser=OrganiserFacts(id=2, sms_failures=0, sms_locked_until=None),
        audiences={"all": AudienceFacts(total=2, reachable=2, held=0, telegram=2, sms=0)},
        pending_broadcast=None,
        confirmation_code="004821",
    )
    context = Context(now=NOW, participant_id="PTEST", channel="sms", facts=facts)
    engine = build_engine()
    inbound = Inbound(channel="sms", text="BROADCAST Doors open at 9")
    turns = [engine.handle(State(language="en"), inbound, context) for _ in range(2)]
    assert turns[0].outbound == turns[1].outbound
    assert "Reply SEND 004821 to send it to 2 people" in turns[0].outbound[0].text
    assert "004821" not in str([event.data for event in turns[0].events])

    pending = PendingBroadcast(
        audience="all",
        recipients=2,
        origin="sms",
        expires_at=(NOW + timedelta(minutes=30)).isoformat(),
        code_hash=code_digest("salt", "004821"),
    )
    answer = Context(
        now=NOW,
        participant_id="PTEST",
        channel="sms",
        facts=replace(facts, pending_broadcast=pending),
    )
    sent = engine.handle(State(language="en"), Inbound(channel="sms", text="SEND 004821"), answer)
    assert [event.kind for event in sent.events] == ["broadcast.confirmed"]
