"""POST /webhooks/telegram: what Telegram pushes, checked, deduplicated and acted on.

Telegram-shaped updates are posted by the test (the emulator never sends the secret
header); callback answers go to a Bot API loopback server that records them.
"""

from __future__ import annotations

import logging
import time

import pytest
from sqlalchemy import func, select

from bot.bootstrap import create_app
from bot.settings import Settings
from store.models import AuditEvent, Contact, InboundMessage, OutboxMessage
from tests.telegram_peer import bot_api_fixture  # noqa: F401  (fixture)

SECRET = "s3cret-Token_value"
CHAT = 987654321
URL = "/webhooks/telegram"


def webhook_settings(db, bot_api, secret: str | None = SECRET) -> Settings:
    values = dict(
        CONCORDER_DATABASE_URL=db.url,
        TELEGRAM_BOT_TOKEN="123:abc",
        TELEGRAM_API_BASE_URL=bot_api.url,
        _env_file=None,
    )
    if secret is not None:
        values["TELEGRAM_WEBHOOK_SECRET"] = secret
    return Settings(**values)


@pytest.fixture
async def client(db, bot_api, aiohttp_client):
    return await aiohttp_client(
        create_app(webhook_settings(db, bot_api), migrate=False, dispatch=False)
    )


def person(chat: int = CHAT, language: str = "fr") -> dict:
    return {"id": chat, "is_bot": False, "first_name": "Ada", "language_code": language}


def message_update(
    update_id: int,
    text: str | None = "hello",
    chat: int = CHAT,
    chat_type: str = "private",
    **extra,
) -> dict:
    message = {
        "message_id": update_id,
        "date": int(time.time()),
        "from": person(chat),
        "chat": {"id": chat, "type": chat_type, "first_name": "Ada"},
        **extra,
    }
    if text is not None:
        message["text"] = text
    return {"update_id": update_id, "message": message}


def callback_update(update_id: int, data: str, chat: int = CHAT) -> dict:
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"cb-{update_id}",
            "chat_instance": "42",
            "data": data,
            "from": person(chat),
            "message": {
                "message_id": 1,
                "date": int(time.time()),
                "text": "menu",
                "chat": {"id": chat, "type": "private", "first_name": "Ada"},
            },
        },
    }


def membership_update(update_id: int, status: str, chat: int = CHAT) -> dict:
    bot_user = {"id": 1, "is_bot": True, "first_name": "Relay"}
    return {
        "update_id": update_id,
        "my_chat_member": {
            "chat": {"id": chat, "type": "private", "first_name": "Ada"},
            "from": person(chat),
            "date": int(time.time()),
            "old_chat_member": {"status": "member", "user": bot_user},
            "new_chat_member": {"status": status, "user": bot_user, "until_date": 0},
        },
    }


async def post(client, update, secret: str | None = SECRET):
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    return await client.post(URL, json=update, headers=headers)


async def outbox_texts(db) -> list[str]:
    async with db.sessions() as session:
        rows = await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))
        return [row.text for row in rows.scalars()]


async def count(db, model) -> int:
    async with db.sessions() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def test_calls_without_the_right_secret_are_refused(db, client):
    for secret in (None, "", "wrong-secret", SECRET + "x", SECRET[:-1]):
        response = await post(client, message_update(1), secret=secret)
        assert response.status == 403, secret
    assert await count(db, InboundMessage) == 0


async def test_with_no_secret_configured_every_call_is_refused(db, bot_api, aiohttp_client):
    client = await aiohttp_client(
        create_app(webhook_settings(db, bot_api, secret=None), migrate=False, dispatch=False)
    )

    response = await post(client, message_update(1), secret="anything")

    assert response.status == 403
    assert await count(db, InboundMessage) == 0


async def test_a_body_that_is_not_an_update_is_a_bad_request(db, client):
    broken_message = b'{"update_id": 8, "message": {"text": "no chat, no date"}}'
    number_caption = (
        b'{"update_id": 9, "message": {"message_id": 9, "date": 1, "caption": 5,'
        b' "chat": {"id": 1, "type": "private"}, "photo": []}}'
    )
    for body in (
        number_caption,
        b"{not json",
        b"[1, 2]",
        b'{"message": {}}',
        b'{"update_id": "7"}',
        b"\xff\xfe",
        broken_message,
        b"",
    ):
        response = await client.post(
            URL,
            data=body,
            headers={"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"},
        )
        assert response.status == 400, body
    assert await count(db, InboundMessage) == 0


async def test_a_first_message_gets_the_welcome_in_the_persons_language(db, client):
    response = await post(client, message_update(10, "/start"))

    assert response.status == 200
    async with db.sessions() as session:
        contact = (await session.execute(select(Contact))).scalar_one()
        (row,) = (await session.execute(select(OutboxMessage))).scalars().all()
    assert (contact.channel, contact.address) == ("telegram", str(CHAT))
    assert row.address == str(CHAT)
    assert row.text.startswith("Bonjour")  # language_code "fr" chose French
    assert [b["label"] for b in row.buttons] == ["À propos", "Langue"]


async def test_an_unknown_invitation_link_is_refused_then_the_welcome_follows(db, client):
    response = await post(client, message_update(12, "/start invite-abc"))

    assert response.status == 200
    refusal, welcome = await outbox_texts(db)
    assert refusal == "Ce lien d'invitation n'est pas valide ou a expiré."
    assert welcome.startswith("Bonjour")


async def test_an_update_delivered_twice_is_handled_once(db, client):
    first = await post(client, message_update(11, "hello"))
    again = await post(client, message_update(11, "hello"))

    assert (first.status, again.status) == (200, 200)
    assert await count(db, InboundMessage) == 1
    assert len(await outbox_texts(db)) == 1


async def test_a_pressed_button_is_answered_and_acted_on_once(db, bot_api, client):
    await post(client, message_update(20, "hello"))
    async with db.sessions() as session:
        (prompt,) = (await session.execute(select(OutboxMessage))).scalars().all()
    about = next(b["data"] for b in prompt.buttons if b["data"].endswith(":about"))

    assert (await post(client, callback_update(21, about))).status == 200
    assert (await post(client, callback_update(21, about))).status == 200

    answered = bot_api.called("answerCallbackQuery")
    assert [a["callback_query_id"] for a in answered] == ["cb-21", "cb-21"]
    texts = await outbox_texts(db)
    assert len(texts) == 3  # the menu, then the help text and the menu again: once
    assert "STOP" in texts[1]


STICKER = {
    "file_id": "f",
    "file_unique_id": "u",
    "type": "regular",
    "width": 512,
    "height": 512,
    "is_animated": False,
    "is_video": False,
}
VOICE = {"file_id": "v", "file_unique_id": "vu", "duration": 4, "mime_type": "audio/ogg"}
PHOTO = [{"file_id": "p", "file_unique_id": "pu", "width": 800, "height": 600}]


def attachment_update(update_id: int, chat: int = CHAT, language: str = "fr", **media) -> dict:
    """A message carrying an attachment (and a caption, if given) and no text."""
    update = message_update(update_id, None, chat=chat, **media)
    update["message"]["from"] = person(chat, language)
    return update


async def test_a_sticker_is_answered_that_only_written_messages_are_read(db, client):
    await post(client, message_update(30, "hello"))

    response = await post(client, attachment_update(31, sticker=STICKER))

    assert response.status == 200
    welcome, answer, again = await outbox_texts(db)
    assert answer == (
        "Je ne peux lire que les messages écrits : merci d'écrire votre réponse, même en "
        "quelques mots."
    )
    assert again == welcome  # the question they were asked, again


@pytest.mark.parametrize(
    ("language", "answer", "question"),
    [
        (
            "en",
            "I can only read written messages: please write your answer, even in a few words.",
            "Which language would you like?",
        ),
        (
            "fr",
            "Je ne peux lire que les messages écrits : merci d'écrire votre réponse, même en "
            "quelques mots.",
            "Dans quelle langue souhaitez-vous échanger ?",
        ),
    ],
)
async def test_a_voice_note_is_answered_plainly_and_the_question_asked_again(
    db, client, language, answer, question
):
    hello = message_update(32, "hello")
    hello["message"]["from"] = person(CHAT, language)
    await post(client, hello)
    await post(client, message_update(33, "2"))  # the language question

    response = await post(client, attachment_update(34, language=language, voice=VOICE))

    assert response.status == 200
    *_, said, again = await outbox_texts(db)
    assert (said, again) == (answer, question)
    async with db.sessions() as session:
        stored = (await session.execute(select(InboundMessage).order_by(InboundMessage.id))).all()
    assert [(m.text, m.media) for (m,) in stored][-1] == ("", "voice")


async def test_a_photos_caption_is_taken_as_the_persons_words(db, client):
    await post(client, message_update(35, "hello"))

    await post(client, attachment_update(36, photo=PHOTO, caption="2"))

    *_, question = await outbox_texts(db)
    assert question == "Dans quelle langue souhaitez-vous échanger ?"


async def test_updates_we_do_not_handle_are_acknowledged_and_ignored(db, client):
    for update in (
        {"update_id": 40, "edited_message": message_update(40)["message"]},
        {
            "update_id": 41,
            "channel_post": {
                "message_id": 1,
                "date": 1,
                "text": "news",
                "chat": {"id": -100, "type": "channel"},
            },
        },
        message_update(42, "hello everyone", chat=-555, chat_type="group"),
        membership_update(43, "member"),  # from someone who never wrote to us
    ):
        response = await post(client, update)
        assert response.status == 200, update
    assert await count(db, InboundMessage) == 0
    assert await count(db, OutboxMessage) == 0


async def test_blocking_the_bot_marks_the_contact_unreachable_once(db, client):
    await post(client, message_update(50, "hello"))

    assert (await post(client, membership_update(51, "kicked"))).status == 200
    assert (await post(client, membership_update(51, "kicked"))).status == 200

    async with db.sessions() as session:
        contact = (await session.execute(select(Contact))).scalar_one()
        events = (
            (
                await session.execute(
                    select(AuditEvent).where(AuditEvent.kind == "contact.unreachable")
                )
            )
            .scalars()
            .all()
        )
    assert contact.unreachable_at is not None
    assert len(events) == 1
    assert events[0].participant_id == contact.participant_id
    assert events[0].data["channel"] == "telegram"


async def test_unblocking_the_bot_makes_the_contact_reachable_again(db, client):
    await post(client, message_update(60, "hello"))
    await post(client, membership_update(61, "kicked"))

    await post(client, membership_update(62, "member"))

    async with db.sessions() as session:
        contact = (await session.execute(select(Contact))).scalar_one()
    assert contact.unreachable_at is None


async def test_logs_hold_neither_the_text_nor_the_chat_id(db, client, caplog):
    caplog.set_level(logging.DEBUG)
    secret_words = "my home is at 12 Secret Lane"

    await post(client, message_update(70, secret_words))
    await post(client, callback_update(71, "1:about"))
    await post(client, membership_update(72, "kicked"))

    # The database driver's own DEBUG output echoes SQL parameters; it is not ours to shape.
    logged = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith(("aiosqlite", "sqlalchemy"))
    )
    assert secret_words not in logged
    assert str(CHAT) not in logged
