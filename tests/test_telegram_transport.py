"""TelegramTransport against a Bot API loopback server (errors) and the emulator (delivery)."""

from __future__ import annotations

import json

import pytest

from bot.channels.telegram_format import markdown_to_html
from bot.channels.telegram_send import TelegramTransport
from bot.channels.transport import Outgoing, PermanentFailure, RetryLater, Sent
from bot.settings import Settings
from tests.telegram_peer import (  # noqa: F401  (fixtures)
    EmulatorRequest,
    bot_api_fixture,
    free_port,
    telegram_emulator_fixture,
)

BUTTONS = [{"label": "About", "data": "1:about"}, {"label": "Language", "data": "1:language"}]


def telegram_settings(base_url: str, token: str = "123:secret-token") -> Settings:
    return Settings(TELEGRAM_BOT_TOKEN=token, TELEGRAM_API_BASE_URL=base_url, _env_file=None)


def outgoing(text: str = "Hello", **fields) -> Outgoing:
    return Outgoing(id=1, channel="telegram", address="4242", text=text, **fields)


@pytest.fixture
async def transport(bot_api):
    transport = TelegramTransport(telegram_settings(bot_api.url))
    yield transport
    await transport.close()


async def test_plain_text_goes_without_parse_mode_and_buttons_one_per_row(bot_api, transport):
    sent = await transport.send(outgoing("Hello <there> & *you*", buttons=BUTTONS))

    assert sent == Sent(provider_id="100")
    (call,) = bot_api.called("sendMessage")
    assert call["chat_id"] == "4242"
    assert call["text"] == "Hello <there> & *you*"
    assert "parse_mode" not in call
    rows = json.loads(call["reply_markup"])["inline_keyboard"]
    assert rows == [
        [{"text": "About", "callback_data": "1:about"}],
        [{"text": "Language", "callback_data": "1:language"}],
    ]


async def test_markdown_is_sent_as_telegram_html(bot_api, transport):
    await transport.send(outgoing("**Vote** by _Friday_ <now>", markdown=True))

    (call,) = bot_api.called("sendMessage")
    assert call["parse_mode"] == "HTML"
    assert call["text"] == "<b>Vote</b> by <i>Friday</i> &lt;now&gt;"
    assert "reply_markup" not in call


async def test_refused_formatting_falls_back_to_the_plain_words(bot_api, transport):
    bot_api.fail("sendMessage", 400, "Bad Request: can't parse entities: unexpected end tag")

    sent = await transport.send(outgoing("**Vote** now", markdown=True))

    first, second = bot_api.called("sendMessage")
    assert first["parse_mode"] == "HTML"
    assert "parse_mode" not in second and second["text"] == "**Vote** now"
    assert sent.provider_id == "100"


# python-telegram-bot itself reads the deprecated int form while building RetryAfter.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_flood_control_asks_to_retry_after_telegrams_delay(bot_api, transport):
    bot_api.fail("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7)

    with pytest.raises(RetryLater) as caught:
        await transport.send(outgoing())
    assert caught.value.after == 7


async def test_a_person_who_blocked_the_bot_is_unreachable(bot_api, transport):
    bot_api.fail("sendMessage", 403, "Forbidden: bot was blocked by the user")

    with pytest.raises(PermanentFailure) as caught:
        await transport.send(outgoing())
    assert caught.value.unreachable is True


async def test_an_unknown_chat_is_a_permanent_failure(bot_api, transport):
    bot_api.fail("sendMessage", 400, "Bad Request: chat not found")

    with pytest.raises(PermanentFailure) as caught:
        await transport.send(outgoing())
    assert caught.value.unreachable is False
    assert "chat not found" in caught.value.reason.lower()


async def test_a_rejected_token_keeps_the_message_for_later(bot_api, transport):
    bot_api.fail("sendMessage", 401, "Unauthorized")

    with pytest.raises(RetryLater):
        await transport.send(outgoing())


async def test_telegram_out_of_reach_means_retry_later():
    transport = TelegramTransport(telegram_settings(f"http://127.0.0.1:{free_port()}"))
    try:
        with pytest.raises(RetryLater):
            await transport.send(outgoing())
    finally:
        await transport.close()


async def test_callback_data_is_cut_to_64_bytes_on_a_character_boundary(bot_api, transport):
    await transport.send(outgoing(buttons=[{"label": "Long", "data": "1:" + "é" * 40}]))

    (call,) = bot_api.called("sendMessage")
    data = json.loads(call["reply_markup"])["inline_keyboard"][0][0]["callback_data"]
    assert len(data.encode()) <= 64
    assert data == "1:" + "é" * 31


async def test_the_emulator_delivers_text_and_buttons(telegram_emulator):
    token = telegram_emulator.new_token()
    transport = TelegramTransport(
        telegram_settings(telegram_emulator.url, token), request=EmulatorRequest()
    )
    try:
        sent = await transport.send(outgoing("Choose one", buttons=BUTTONS))
    finally:
        await transport.close()

    (message,) = await telegram_emulator.user_reads(token, 4242)
    assert sent.provider_id == str(message["message_id"])
    assert message["text"] == "Choose one"
    assert [row[0]["callback_data"] for row in message["reply_markup"]["inline_keyboard"]] == [
        "1:about",
        "1:language",
    ]


@pytest.mark.parametrize(
    ("source", "html"),
    [
        ("plain words", "plain words"),
        ("a < b & c > d", "a &lt; b &amp; c &gt; d"),
        ("<b>raw html</b>", "&lt;b&gt;raw html&lt;/b&gt;"),
        ("**bold** _it_ ~~gone~~ `x<y`", "<b>bold</b> <i>it</i> <s>gone</s> <code>x&lt;y</code>"),
        ("# Ballot\n\nVote now", "<b>Ballot</b>\n\nVote now"),
        ("- one\n- two", "• one\n• two"),
        ("3. three\n4. four", "3. three\n4. four"),
        (
            '[site](https://example.org/?a=1&b="2")',
            '<a href="https://example.org/?a=1&amp;b=%222%22">site</a>',
        ),
        ("> quoted", "<blockquote>quoted</blockquote>"),
        ("```\nif a<b:\n```", "<pre>if a&lt;b:</pre>"),
        ("line one\nline two", "line one\nline two"),
    ],
)
def test_markdown_becomes_the_html_subset_telegram_accepts(source, html):
    assert markdown_to_html(source) == html
