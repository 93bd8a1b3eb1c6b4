"""An invited person's whole path: invitation, consent, registration, the draw's outcome,
by SMS and through a Telegram link; WITHDRAW and STOP end everything."""

from __future__ import annotations

import csv
import hashlib
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.services import invite_codes, recruitment
from bot.services.turns import receive
from store import audit
from store.models import AuditEvent, Contact, OutboxMessage, Participant, utcnow
from store.recruitment import (
    CONFIRMED,
    CONSENTED,
    DECLINED,
    REGISTERED,
    RESERVE,
    SELECTED,
    WITHDRAWN,
    Consent,
    Invitation,
    PoolEntry,
    RegistrationAnswer,
    Selection,
)
from tests.telegram_peer import EmulatorRequest, telegram_emulator_fixture  # noqa: F401

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "citizens-jury"
PHONE, PHONE_FR = "+447700900101", "+447700900102"


@pytest.fixture
async def invited(db, settings, assembly, tmp_path):
    """Three people invited: two by SMS (en, fr; the first already knows her age), one by
    letter. Returns the letter links by handle."""
    pool = tmp_path / "pool.csv"
    pool.write_text(
        "phone,telegram,language,household,age\n"
        f"{PHONE},,en,H1,30-49\n"
        f"{PHONE_FR},,fr,H2,\n"
        ",ana_riverside,en,H3,\n"
    )
    parsed = recruitment.parse_pool(pool, assembly)
    assert not parsed.bad
    await recruitment.import_pool(db.sessions, assembly, parsed.rows)
    letters = tmp_path / "letters.csv"
    await recruitment.send_invitations(
        db.sessions, settings, assembly, "RiversideJuryBot", letters_path=letters
    )
    with letters.open() as fp:
        return {row["telegram_handle"]: row["link"] for row in csv.DictReader(fp)}


async def say(db, relay, address, text, *, channel="sms", now=None, button=None):
    """Send one message; return the texts the service queued in answer."""
    async with db.sessions() as session:
        before = await session.scalar(select(func.coalesce(func.max(OutboxMessage.id), 0)))
    await receive(
        relay,
        channel=channel,
        address=address,
        text=text,
        button=button,
        provider_id=uuid.uuid4().hex,
        now=now,
    )
    async with db.sessions() as session:
        rows = await session.execute(
            select(OutboxMessage.text)
            .where(OutboxMessage.id > before, OutboxMessage.address == address)
            .order_by(OutboxMessage.id)
        )
        return list(rows.scalars())


async def invitation_of(db, address):
    async with db.sessions() as session:
        pid = await session.scalar(select(Contact.participant_id).where(Contact.address == address))
        return await session.scalar(select(Invitation).where(Invitation.participant_id == pid))


async def test_sms_invitee_consents_registers_with_back_and_confirms(db, relay, invited):
    assert "1 Yes, tell me more" in (await outbox_of(db, PHONE))[0]
    replies = await say(db, relay, PHONE, "1")
    assert "We keep your answers" in replies[0] and "Do you agree?" in replies[0]
    replies = await say(db, relay, PHONE, "I agree")
    # Her age came with the pool: only the two other questions are asked.
    assert "Question 1 of 2" in replies[-1] and "How do you mostly get around?" in replies[-1]
    replies = await say(db, relay, PHONE, "2")
    assert "Question 2 of 2" in replies[0]
    replies = await say(db, relay, PHONE, "back")
    assert "Question 1 of 2" in replies[0]
    await say(db, relay, PHONE, "3")
    replies = await say(db, relay, PHONE, "woman")
    assert "Bike or on foot" in replies[0] and "Woman" in replies[0]
    assert "Is this right?" in replies[0]
    replies = await say(db, relay, PHONE, "1")
    assert "you are registered" in replies[0]

    invitation = await invitation_of(db, PHONE)
    assert invitation.status == REGISTERED
    async with db.sessions() as session:
        answers = dict(
            (
                await session.execute(
                    select(RegistrationAnswer.question_id, RegistrationAnswer.answer).where(
                        RegistrationAnswer.participant_id == invitation.participant_id
                    )
                )
            ).all()
        )
        consent = await session.scalar(select(Consent))
        participant = await session.get(Participant, invitation.participant_id)
        candidates = await recruitment_candidates(session)
    assert answers == {"travel": "bike", "gender": "woman"}
    assert (consent.text_version, consent.language, consent.channel) == ("2026-12-v2", "en", "sms")
    # The audit trail pins the exact words agreed to, periods from [retention] included.
    async with db.sessions() as session:
        given = await session.scalar(select(AuditEvent).where(AuditEvent.kind == "consent.given"))
    shown = relay.assembly.consent_text()["en"]
    assert "6 months" in shown
    assert given.data["text_sha256"] == hashlib.sha256(shown.encode()).hexdigest()[:16]
    # The answers live in their table, not in the conversation state.
    assert "registration" not in participant.state["data"]
    assert candidates == [
        {
            "participant_id": invitation.participant_id,
            "household_id": "H1",
            "features": {"age": "30-49", "travel": "bike", "gender": "woman"},
        }
    ]


async def recruitment_candidates(session):
    from store.recruitment import draw_candidates

    return await draw_candidates(session)


async def outbox_of(db, address):
    async with db.sessions() as session:
        return list(
            (
                await session.execute(
                    select(OutboxMessage.text)
                    .where(OutboxMessage.address == address)
                    .order_by(OutboxMessage.id)
                )
            ).scalars()
        )


async def test_french_invitee_is_written_to_in_french(db, relay, invited):
    assert "Vous êtes invité" in (await outbox_of(db, PHONE_FR))[0]
    replies = await say(db, relay, PHONE_FR, "1")
    assert "Nous conservons vos réponses" in replies[0]


async def test_letter_link_binds_telegram_once_and_refuses_another_account(db, relay, invited):
    code = invited["ana_riverside"].split("start=")[1]
    replies = await say(db, relay, "5001", f"/start {code}", channel="telegram")
    assert "You are invited to take part" in replies[0]
    async with db.sessions() as session:
        entry = await session.scalar(
            select(PoolEntry).where(PoolEntry.telegram_handle == "ana_riverside")
        )
        contact = await session.scalar(select(Contact).where(Contact.address == "5001"))
        invitation = await session.scalar(
            select(Invitation).where(Invitation.participant_id == entry.participant_id)
        )
    assert contact.participant_id == entry.participant_id
    assert invitation.bound_contact_id == contact.id and invitation.responded_at

    # The same person opening the link again just sees the question again.
    assert (
        "You are invited"
        in (await say(db, relay, "5001", f"/start {code}", channel="telegram"))[-1]
    )
    replies = await say(db, relay, "6002", f"/start {code}", channel="telegram")
    assert "already been used from another account" in replies[0]
    replies = await say(db, relay, "7003", "/start not-a-real-code", channel="telegram")
    assert "not valid" in replies[0]
    async with db.sessions() as session:
        kinds = list((await session.execute(select(AuditEvent.kind))).scalars())
        other = await session.scalar(select(Contact).where(Contact.address == "6002"))
        assert (await audit.verify(session)).ok
    assert other.participant_id != entry.participant_id
    assert "invitation.code_refused" in kinds and "invitation.code_invalid" in kinds

    # Ana's account cannot also take the invitation sent to another person's phone.
    sent = invite_codes.reveal(
        (await outbox_of(db, PHONE))[0], "invitation", relay.invite_key
    )  # as it left the service
    sms_code = sent.split("start=")[1].split()[0]
    replies = await say(db, relay, "5001", f"/start {sms_code}", channel="telegram")
    assert "already linked to another invitation" in replies[0]
    assert (await invitation_of(db, PHONE)).bound_contact_id is None

    # Ana goes on in Telegram with buttons.
    replies = await say(db, relay, "5001", "Yes, tell me more", channel="telegram")
    assert "Do you agree?" in replies[0]


async def test_withdraw_marks_data_for_erasure_and_stops_everything(db, relay, invited):
    await say(db, relay, PHONE, "1")
    replies = await say(db, relay, PHONE, "withdraw")
    assert "You have withdrawn" in replies[0]
    assert await say(db, relay, PHONE, "1") == []
    invitation = await invitation_of(db, PHONE)
    async with db.sessions() as session:
        participant = await session.get(Participant, invitation.participant_id)
    assert invitation.status == WITHDRAWN
    assert participant.erase_requested_at is not None and participant.opted_out


async def test_stop_also_withdraws_and_no_reminder_follows(db, relay, invited):
    await say(db, relay, PHONE_FR, "STOP")
    invitation = await invitation_of(db, PHONE_FR)
    assert invitation.status == WITHDRAWN
    async with db.sessions() as session:
        participant = await session.get(Participant, invitation.participant_id)
        due = await recruitment.due_invitation_reminders(session, utcnow() + timedelta(days=30))
    assert participant.erase_requested_at is not None
    assert invitation.participant_id not in {i.participant_id for i in due}


async def test_declining_the_invitation_closes_it(db, relay, invited):
    replies = await say(db, relay, PHONE, "2")
    assert "Thank you for letting us know" in replies[0]
    assert (await invitation_of(db, PHONE)).status == "not_interested"


async def _register(db, relay, address):
    await say(db, relay, address, "1")
    await say(db, relay, address, "1")
    for _ in range(3):
        replies = await say(db, relay, address, "1")
        if "Is this right?" in replies[-1]:
            break
    await say(db, relay, address, "1")
    assert (await invitation_of(db, address)).status == REGISTERED


async def test_draw_outcome_confirm_decline_and_deadline(db, relay, invited, assembly):
    await _register(db, relay, PHONE)
    await _register(db, relay, PHONE_FR)
    first = (await invitation_of(db, PHONE)).participant_id
    second = (await invitation_of(db, PHONE_FR)).participant_id
    async with db.sessions.begin() as session:
        session.add(Selection(participant_id=first, draw_id="d1", status=SELECTED))
        session.add(Selection(participant_id=second, draw_id="d1", status=RESERVE, reserve_rank=1))
    told = await recruitment.notify_draw_outcome(relay, assembly)
    assert told == {"selected": 1, "reserve": 1}
    texts = await outbox_of(db, PHONE)
    assert "you have been selected" in texts[-1] and "CONFIRM by" in texts[-1]
    assert "réserve" in (await outbox_of(db, PHONE_FR))[-1]
    # Telling again tells nobody twice.
    assert await recruitment.notify_draw_outcome(relay, assembly) == {}

    replies = await say(db, relay, PHONE, "CONFIRM")
    assert "your place in" in replies[0]
    async with db.sessions() as session:
        selection = await session.scalar(select(Selection).where(Selection.participant_id == first))
    assert selection.status == CONFIRMED

    # A reserve promoted by the draw is asked in turn; a reply after the deadline is late.
    async with db.sessions.begin() as session:
        reserve = await session.scalar(select(Selection).where(Selection.participant_id == second))
        reserve.status, reserve.reserve_rank = SELECTED, None
    await recruitment.notify_draw_outcome(relay, assembly)
    late = utcnow() + assembly.recruitment.confirm_within + timedelta(hours=1)
    replies = await say(db, relay, PHONE_FR, "1", now=late)
    assert "délai" in replies[0]


async def test_decline_after_selection(db, relay, invited, assembly):
    await _register(db, relay, PHONE)
    pid = (await invitation_of(db, PHONE)).participant_id
    async with db.sessions.begin() as session:
        session.add(Selection(participant_id=pid, draw_id="d1", status=SELECTED))
    await recruitment.notify_draw_outcome(relay, assembly)
    replies = await say(db, relay, PHONE, "decline")
    assert "Your place will go to someone else" in replies[0]
    async with db.sessions() as session:
        selection = await session.scalar(select(Selection))
    assert (selection.status, selection.reason) == (DECLINED, "declined")


async def test_registered_but_not_drawn_are_thanked_once(db, relay, invited, assembly):
    await _register(db, relay, PHONE)
    await _register(db, relay, PHONE_FR)
    first = (await invitation_of(db, PHONE)).participant_id
    async with db.sessions.begin() as session:
        session.add(Selection(participant_id=first, draw_id="d1", status=SELECTED))
    told = await recruitment.notify_draw_outcome(relay, assembly)
    assert told == {"selected": 1, "not selected": 1}
    assert "pas été" in (await outbox_of(db, PHONE_FR))[-1]
    assert await recruitment.notify_draw_outcome(relay, assembly) == {}


async def test_waiting_for_the_draw_answers_and_still_hears_withdraw(db, relay, invited, assembly):
    await _register(db, relay, PHONE)
    replies = await say(db, relay, PHONE, "hello?")
    assert "We will write to you after the draw" in replies[0]
    pid = (await invitation_of(db, PHONE)).participant_id
    async with db.sessions.begin() as session:
        session.add(Selection(participant_id=pid, draw_id="d1", status=RESERVE, reserve_rank=1))
    await recruitment.notify_draw_outcome(relay, assembly)
    # On the reserve list a place may still come: asked first, then withdrawn.
    replies = await say(db, relay, PHONE, "Withdraw")
    assert "You would leave the reserve list" in replies[0]
    replies = await say(db, relay, PHONE, "1")
    assert "You have withdrawn" in replies[0]
    async with db.sessions() as session:
        selection = await session.scalar(select(Selection))
        consent = await session.scalar(select(Consent))
    assert (selection.status, selection.reason) == (DECLINED, "withdrawn")
    assert consent.withdrawn_at is not None
    assert (await invitation_of(db, PHONE)).status == WITHDRAWN


async def test_a_letter_link_opened_in_telegram_through_the_bot_api(
    db, invited, assembly, telegram_emulator, monkeypatch
):
    import bot.channels.telegram_client
    from tests.test_telegram_e2e import Service, polling_settings

    monkeypatch.setattr(
        bot.channels.telegram_client,
        "request_factory",
        lambda read_timeout=10.0: EmulatorRequest(read_timeout=read_timeout),
    )

    token = telegram_emulator.new_token()
    settings = polling_settings(db, telegram_emulator.url, token)
    code = invited["ana_riverside"].split("start=")[1]
    async with Service(settings, assembly=assembly):
        await telegram_emulator.user_writes(token, 4242, f"/start {code}")
        (invitation,) = await telegram_emulator.user_reads(token, 4242)
        rows = invitation["reply_markup"]["inline_keyboard"]
        assert invitation["text"].startswith("You are invited to take part in Riverside")
        assert [[b["text"] for b in row] for row in rows] == [
            ["Yes, tell me more"],
            ["No, thank you"],
        ]
        await telegram_emulator.user_presses(token, 4242, invitation, rows[0][0]["callback_data"])
        (consent,) = await telegram_emulator.user_reads(token, 4242)
    assert "Do you agree?" in consent["text"]
    async with db.sessions() as session:
        invitation_row = await session.scalar(
            select(Invitation)
            .join(PoolEntry, PoolEntry.participant_id == Invitation.participant_id)
            .where(PoolEntry.telegram_handle == "ana_riverside")
        )
    assert invitation_row.status == "responded" and invitation_row.bound_contact_id


async def test_invitees_answer_in_words_in_their_own_language(db, relay, invited):
    # An SMS invitation asks for YES or NO: the words work as well as the numbers.
    replies = await say(db, relay, PHONE, "Yes!")
    assert "Do you agree?" in replies[0]
    replies = await say(db, relay, PHONE, "AGREE")
    assert "Question 1 of 2" in replies[-1]

    replies = await say(db, relay, PHONE_FR, "oui")
    assert "Êtes-vous d'accord ?" in replies[0]
    replies = await say(db, relay, PHONE_FR, "J'accepte")
    assert "Question 1" in replies[-1]
    assert (await invitation_of(db, PHONE_FR)).status == CONSENTED
