"""One inbound message is one transaction: state, outbox rows and audit events together."""

from sqlalchemy import func, select

from bot.services.turns import receive
from store import audit
from store.models import AuditEvent, Contact, InboundMessage, OutboxMessage, Participant


async def outbox_texts(db, address):
    async with db.sessions() as session:
        rows = await session.execute(
            select(OutboxMessage)
            .where(OutboxMessage.address == address)
            .order_by(OutboxMessage.seq)
        )
        return [row.text for row in rows.scalars()]


async def test_first_message_creates_a_participant_and_queues_the_welcome(db, relay):
    result = await receive(
        relay, channel="sms", address="+447700900001", text="hello", provider_id="SM1"
    )
    assert not result.duplicate and result.queued == 1
    texts = await outbox_texts(db, "+447700900001")
    assert "Hello, this is Concorder Relay" in texts[0]
    assert texts[0].endswith("Reply 1 or 2.")
    async with db.sessions() as session:
        participant = (await session.execute(select(Participant))).scalar_one()
        events = (await session.execute(select(AuditEvent))).scalars().all()
    assert participant.state["step"] == "menu"
    assert [e.kind for e in events] == ["participant.created", "conversation.started"]
    # The audit trail names the pseudonym, never the number.
    assert all("+4477" not in str(e.data) for e in events)
    assert {e.participant_id for e in events} == {participant.id}


async def test_a_webhook_retried_with_the_same_id_is_processed_once(db, relay):
    for _ in range(3):
        await receive(
            relay, channel="sms", address="+447700900002", text="hi", provider_id="SM-same"
        )
    assert len(await outbox_texts(db, "+447700900002")) == 1
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(InboundMessage)) == 1


async def test_stop_confirms_once_then_silence_until_start(db, relay):
    address = "+447700900003"
    await receive(relay, channel="sms", address=address, text="hi", provider_id="a")
    await receive(relay, channel="sms", address=address, text=" Stop. ", provider_id="b")
    await receive(relay, channel="sms", address=address, text="1", provider_id="c")
    await receive(relay, channel="sms", address=address, text="STOP", provider_id="d")
    texts = await outbox_texts(db, address)
    assert len(texts) == 2
    assert texts[1].startswith("You have been unsubscribed")
    await receive(relay, channel="sms", address=address, text="start", provider_id="e")
    texts = await outbox_texts(db, address)
    assert texts[2].startswith("Welcome back")
    async with db.sessions() as session:
        contact = (await session.execute(select(Contact))).scalar_one()
        participant = await session.get(Participant, contact.participant_id)
        assert participant.opted_out is False
        assert (await audit.verify(session)).ok


async def test_messages_to_one_person_are_numbered_in_order(db, relay):
    address = "+447700900004"
    for n, text in enumerate(["hi", "xyz", "2", "fr"]):
        await receive(relay, channel="sms", address=address, text=text, provider_id=f"o{n}")
    async with db.sessions() as session:
        seqs = (
            (
                await session.execute(
                    select(OutboxMessage.seq)
                    .where(OutboxMessage.address == address)
                    .order_by(OutboxMessage.id)
                )
            )
            .scalars()
            .all()
        )
    assert seqs == list(range(1, len(seqs) + 1))
    texts = await outbox_texts(db, address)
    assert texts[-2] == "Désormais, je vous écrirai en français."


async def test_telegram_buttons_carry_the_prompt_and_a_stale_press_is_refused(db, relay):
    await receive(
        relay,
        channel="telegram",
        address="5001",
        text="/start",
        provider_id="tg:1",
        language_hint="es-ES",
    )
    async with db.sessions() as session:
        first = (await session.execute(select(OutboxMessage))).scalar_one()
    assert first.text.startswith("Hola")
    labels = [b["label"] for b in first.buttons]
    assert labels == ["Acerca de", "Idioma"]
    language_button = first.buttons[1]["data"]
    await receive(
        relay, channel="telegram", address="5001", button=language_button, provider_id="tg:2"
    )
    # The same (now old) button again: the person is told, nothing else changes.
    await receive(
        relay, channel="telegram", address="5001", button=language_button, provider_id="tg:3"
    )
    texts = await outbox_texts(db, "5001")
    assert texts[-2] == "Ese botón corresponde a una pregunta anterior."
