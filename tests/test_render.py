"""How messages look on each channel."""

from datetime import datetime

import pytest

from bot.channels.render import render
from flows.i18n import translator
from flows.model import Choice, Outbound
from flows.sms_format import markdown_to_plain


def test_sms_dates_and_typographic_quotes_stay_in_the_cheap_encoding():
    when = translator("en").datetime(datetime(2027, 2, 2, 18, 30))
    text = f"Reminder: the session starts {when}. Don’t forget – it’s “important”…"
    (part,) = render(Outbound(text), "sms", "en", None)
    assert part.encoding == "GSM-7" and part.segments == 1
    assert "6:30 PM" in part.text and "Don't forget - it's \"important\"..." in part.text


def test_sms_options_are_numbered_and_telegram_gets_buttons():
    message = Outbound(
        "Would you like to take part?",
        (Choice("yes", "Oui, dites-m'en plus"), Choice("no", "Non merci")),
    )
    (sms,) = render(message, "sms", "fr", "7")
    assert sms.text.endswith("1 Oui, dites-m'en plus\n2 Non merci\nRépondez 1 ou 2.")
    (telegram,) = render(message, "telegram", "fr", "7")
    assert telegram.buttons == [
        {"label": "Oui, dites-m'en plus", "data": "7:yes"},
        {"label": "Non merci", "data": "7:no"},
    ]


def test_long_texts_are_split_between_words_on_both_channels():
    words = " ".join(f"word{n}" for n in range(2000))
    sms_parts = render(Outbound(words), "sms", "en", None, sms_max_segments=3)
    assert all(p.segments <= 3 for p in sms_parts)
    assert " ".join(p.text for p in sms_parts) == words
    telegram_parts = render(Outbound(words), "telegram", "en", None)
    assert all(len(p.text) < 4096 for p in telegram_parts) and len(telegram_parts) > 1
    assert " ".join(p.text for p in telegram_parts) == words


def test_a_markdown_message_is_plain_text_on_sms_and_counted_as_such():
    # 139 characters as sent, one segment; with its marks it would be 168, two.
    source = (
        "**Vote** by _Friday_: read [the report](https://example.org/r) first. "
        "**Bring** your **notes**, your **questions** and **a friend** if you like it. "
        "**See** you _there_."
    )
    (sms,) = render(Outbound(source, markdown=True), "sms", "en", None)
    assert sms.text == (
        "Vote by Friday: read the report (https://example.org/r) first. Bring "
        "your notes, your questions and a friend if you like it. See you there."
    )
    assert (sms.segments, sms.encoding) == (1, "GSM-7")
    (telegram,) = render(Outbound(source, markdown=True), "telegram", "en", None)
    assert telegram.text == source  # formatted by the Telegram transport


@pytest.mark.parametrize(
    ("source", "plain"),
    [
        ("# Session 2\n\nBring *notes*.", "Session 2\n\nBring notes."),
        (
            "Sources:\n- [Survey](https://x.org/s)\n- Minutes",
            "Sources:\n- Survey (https://x.org/s)\n- Minutes",
        ),
        (
            "Agenda\n\n1. Welcome\n2. Evidence\n   - buses\n   - bikes",
            "Agenda\n\n1. Welcome\n2. Evidence\n  - buses\n  - bikes",
        ),
        (
            "See <https://x.org/a>, or [write](mailto:jury@x.org).",
            "See https://x.org/a, or write (jury@x.org).",
        ),
        ("Wrapped\nin the file,  \nbroken here.", "Wrapped in the file,\nbroken here."),
        (
            "Raw <b>tags</b>, `code`, ~~old~~ and \\*stars\\*.",
            "Raw <b>tags</b>, code, old and *stars*.",
        ),
        ("> Quoted **words**", "Quoted words"),
    ],
)
def test_markdown_becomes_the_plain_text_an_sms_shows(source, plain):
    assert markdown_to_plain(source) == plain
