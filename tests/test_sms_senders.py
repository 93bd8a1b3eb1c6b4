"""Inbound SMS from senders the number library does not know (a short code, a sender name,
a number outside its metadata): Twilio vouched for them, so they are kept, their STOP is
honoured, and they are answered where SMS can reach them, deliberately not where it cannot.
Numbers an organiser types stay checked strictly."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.bootstrap import create_app
from bot.channels.sms import SmsTransport
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.ratelimit import DeliveryLimits
from bot.services import organisers
from store.models import Contact, InboundMessage, OutboxMessage, Participant
from tests.twilio_peer import sign, twilio_settings

pytest_plugins = ["tests.twilio_peer"]  # fixtures: recording_prism

SMS = "/webhooks/twilio/sms"
FICTIONAL = "+447700900123"  # Ofcom's drama range: no numbering plan lists it
NEW_RANGE = "+12005550123"  # an area code no numbering plan has opened yet
NEW_CODE = "+999123456789"  # a country code phonenumbers does not know
SHORT_CODE = "12345"
SENDER_NAME = "ACME"


@pytest.fixture
async def relay(db, aiohttp_client, recording_prism):
    settings = twilio_settings(db.url, TWILIO_API_BASE_URL=recording_prism.url)
    client = await aiohttp_client(create_app(settings, dispatch=False))
    serial = iter(range(10**6))

    async def text(sender: str, body: str) -> int:
        form = {
            "MessageSid": f"SM{next(serial):032d}",
            "From": sender,
            "To": "+15005550006",
            "Body": body,
        }
        url = str(client.make_url(SMS))
        return (await client.post(SMS, data=form, headers=sign(url, form))).status

    text.settings = settings
    return text


async def deliver(db, settings) -> None:
    """What `concorder serve` does in the background: send the outbox through Twilio."""
    transport = SmsTransport(settings)
    try:
        await Dispatcher(
            db.sessions, {"sms": transport}, settings, limits=DeliveryLimits.off()
        ).drain()
    finally:
        await transport.close()


async def rows_to(db, address: str) -> list[OutboxMessage]:
    async with db.sessions() as session:
        return list(
            (
                await session.execute(
                    select(OutboxMessage)
                    .where(OutboxMessage.address == address)
                    .order_by(OutboxMessage.id)
                )
            ).scalars()
        )


async def test_every_sender_twilio_vouches_for_is_kept_and_answered_where_sms_can_reach(
    db, relay, recording_prism
):
    for sender in (FICTIONAL, "+44 7700 900124", NEW_RANGE, NEW_CODE, SHORT_CODE, SENDER_NAME):
        assert await relay(sender, "Hello") == 200, sender
    async with db.sessions() as session:
        contacts = {c.address: c for c in (await session.execute(select(Contact))).scalars()}
        stored = (await session.execute(select(InboundMessage))).scalars().all()
    assert set(contacts) == {
        FICTIONAL,
        "+447700900124",
        NEW_RANGE,
        NEW_CODE,
        SHORT_CODE,
        SENDER_NAME,
    }
    assert len(stored) == 6 and all(m.contact_id for m in stored)

    await deliver(db, relay.settings)

    texted = sorted(r.form["To"][0] for r in recording_prism.requests)
    assert texted == sorted([FICTIONAL, "+447700900124", NEW_RANGE, NEW_CODE])
    for silent in (SHORT_CODE, SENDER_NAME):
        rows = await rows_to(db, silent)
        assert rows and {r.status for r in rows} == {"cancelled"}
        assert "cannot receive SMS" in rows[0].error
        assert contacts[silent].unreachable_at is not None


@pytest.mark.parametrize("sender", [FICTIONAL, NEW_RANGE, SHORT_CODE, SENDER_NAME])
async def test_stop_from_an_unusual_sender_stops_every_message_to_it(db, relay, sender):
    assert await relay(sender, "Hello") == 200
    assert await relay(sender, "STOP") == 200
    before = len(await rows_to(db, sender))
    assert await relay(sender, "1") == 200
    assert await relay(sender, "HELP me") == 200

    assert len(await rows_to(db, sender)) == before  # nothing more after the confirmation
    async with db.sessions() as session:
        person = await session.scalar(
            select(Participant).join(Contact).where(Contact.address == sender)
        )
    assert person.opted_out


async def test_a_malformed_international_number_is_still_refused(db, relay):
    assert await relay("+44123", "Hello") == 400
    assert await relay("+", "Hello") == 400


@pytest.mark.parametrize("number", [SHORT_CODE, SENDER_NAME, NEW_RANGE, NEW_CODE])
def test_organisers_are_added_only_with_numbers_that_exist(number):
    with pytest.raises(organisers.OrganiserError):
        organisers.normalised_addresses(None, number, "GB")
