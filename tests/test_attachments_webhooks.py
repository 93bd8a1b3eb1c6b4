"""Photos and voice notes through the Telegram webhook, where it matters most: at the
consent question and at a small-group table. A caption is the person's words; an
attachment without words gets a plain answer and the question again."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.bootstrap import build, create_app
from bot.services import deliberation
from store.models import OutboxMessage, utcnow
from tests.deliberation_world import seat_table
from tests.telegram_peer import bot_api_fixture  # noqa: F401  (fixture)
from tests.test_recruitment_flows import invited  # noqa: F401  (fixture)
from tests.test_telegram_webhook import (
    PHOTO,
    VOICE,
    attachment_update,
    message_update,
    post,
    webhook_settings,
)

ANA = 5001  # the chat that opens Ana's letter link (pool: ana_riverside, English)


@pytest.fixture
async def service(db, bot_api, assembly, aiohttp_client):
    relay = build(webhook_settings(db, bot_api), assembly=assembly, sessions=db.sessions)
    client = await aiohttp_client(create_app(relay=relay, migrate=False, dispatch=False))
    return relay, client


async def told(db, chat: int, after: int) -> tuple[int, list[str]]:
    """What the service queued for `chat` since outbox id `after`, and the last id."""
    async with db.sessions() as session:
        rows = (
            await session.execute(
                select(OutboxMessage)
                .where(OutboxMessage.address == str(chat), OutboxMessage.id > after)
                .order_by(OutboxMessage.id)
            )
        ).scalars()
        rows = list(rows)
    return (rows[-1].id if rows else after), [r.text for r in rows]


async def test_at_the_consent_question_a_caption_answers_and_a_voice_note_does_not(
    db,
    service,
    invited,  # noqa: F811  (the fixture imported above: Ana is invited by a letter link)
):
    _, client = service
    code = invited["ana_riverside"].partition("start=")[2]
    await post(client, message_update(1, f"/start {code}", chat=ANA))
    seen, (invitation,) = await told(db, ANA, 0)
    assert "Would you like to take part?" in invitation

    await post(client, attachment_update(2, chat=ANA, photo=PHOTO, caption="Yes, tell me more"))
    seen, (consent,) = await told(db, ANA, seen)
    assert "Do you agree?" in consent

    await post(client, attachment_update(3, chat=ANA, language="en", voice=VOICE))
    seen, (said, again) = await told(db, ANA, seen)
    assert said == (
        "I can only read written messages: please write your answer, even in a few words."
    )
    assert again == consent

    await post(client, attachment_update(4, chat=ANA, photo=PHOTO, caption="I agree"))
    seen, replies = await told(db, ANA, seen)
    assert "Question 1 of 3" in replies[-1]


async def test_at_a_table_a_caption_is_relayed_and_a_voice_note_reaches_nobody(db, service):
    relay, client = service
    world = await seat_table(relay, [("A", "telegram", "fr"), ("B", "telegram", "fr")])
    await deliberation.open_prompt(relay, round_no=1, prompt="bus-priorities", now=utcnow())
    a, b = (int(world.member(letter).address) for letter in "AB")
    seen_a, _ = await told(db, a, 0)
    seen_b, _ = await told(db, b, 0)

    await post(client, attachment_update(10, chat=a, voice=VOICE))
    seen_a, said = await told(db, a, seen_a)
    seen_b, heard = await told(db, b, seen_b)
    assert said == [
        "Je ne peux lire que les messages écrits, celui-ci n'est donc pas parvenu à votre "
        "table : merci d'écrire ce que vous voulez dire."
    ]
    assert heard == []

    await post(
        client,
        attachment_update(11, chat=a, photo=PHOTO, caption="Il faut un abri à cet arrêt."),
    )
    await deliberation.run_due(relay, now=utcnow())
    seen_b, heard = await told(db, b, seen_b)
    assert heard == ["A: Il faut un abri à cet arrêt."]
