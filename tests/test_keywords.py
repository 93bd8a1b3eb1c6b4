"""Property tests: no input crashes the engine, and STOP works however it is written."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.channels.render import render
from flows.catalog import build_engine
from flows.engine import button_data
from flows.i18n import shipped_languages, translator
from flows.keywords import (
    CARRIER_OPT_IN_WORDS,
    HELP_WORDS,
    OPT_IN_WORDS,
    OPT_OUT_WORDS,
    Keyword,
    keyword_of,
)
from flows.model import Context, Inbound, State

NOW = datetime(2026, 3, 3, 18, 30, tzinfo=UTC)
ENGINE = build_engine()  # every flow and command, as in the service
handle, start = ENGINE.handle, ENGINE.start
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ctx(channel: str) -> Context:
    return Context(now=NOW, participant_id="PTEST", channel=channel)


@st.composite
def states(draw) -> State:
    """A participant somewhere in the welcome conversation, or anywhere at all."""
    language = draw(st.sampled_from(shipped_languages()))
    state = State(language=language)
    if draw(st.booleans()):
        state = start(state, "welcome", ctx("sms")).state
        if draw(st.booleans()):
            state = handle(state, Inbound("sms", "2"), ctx("sms")).state  # language question
    state.opted_out = draw(st.booleans())
    return state


# What people type: any text at all, text made of the characters that matter here
# (digits, letters, accents, full-width forms, emoji, punctuation, controls), and keywords.
WEIRD = st.text(
    alphabet=st.sampled_from(
        list("12 3aAsStToOpPéÉñç!?.,-_\n\t\r\x00\u200b\ufeff")
        + list("ＳＴＯＰ１２🙂👍🏽\u0301\ud7ff")
    ),
    max_size=40,
)
WORDS = st.sampled_from(
    sorted(
        OPT_OUT_WORDS
        | OPT_IN_WORDS
        | HELP_WORDS
        | {"english", "francais", "espanol", "about", "langue"}
    )
)
TEXTS = st.one_of(st.text(max_size=300), WEIRD, WORDS, st.text(min_size=1500, max_size=2500))


@FAST
@given(
    state=states(),
    text=TEXTS,
    channel=st.sampled_from(["sms", "telegram"]),
    button=st.one_of(st.none(), st.text(max_size=70), st.sampled_from(["1:about", "0:x"])),
)
def test_no_input_crashes_the_engine(state, text, channel, button):
    before = state.to_json()
    turn = handle(
        state, Inbound(channel, text, button if channel == "telegram" else None), ctx(channel)
    )
    assert state.to_json() == before  # the caller's state is never changed in place
    assert State.from_json(turn.state.to_json()).to_json() == turn.state.to_json()
    if state.opted_out and turn.state.opted_out:
        assert turn.outbound == [] and turn.events == []  # silence, whatever they send
    for message in turn.outbound:
        assert message.text.strip()
        for part in render(message, channel, turn.state.language, turn.state.prompt_id):
            assert part.text.strip() and part.segments >= 1
    if turn.state.offered:
        assert turn.state.prompt_id


FULL_WIDTH = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}
ACCENTS = {"a": "àâá", "e": "éèêë", "i": "îíï", "o": "ôó", "u": "ùûú", "n": "ñ", "c": "ç"}
PUNCTUATION = st.text(alphabet=list(" \t\n.!?¡¿,;:-*'\"()…"), max_size=4)


@st.composite
def variants(draw, words: frozenset[str] | set[str]) -> tuple[str, str]:
    """A word as a person may type it: any case, full-width letters, accents, spaces or
    punctuation around and between letters."""
    word = draw(st.sampled_from(sorted(words)))
    out = draw(PUNCTUATION)
    for index, char in enumerate(word):
        form = draw(st.sampled_from(["lower", "upper", "full", "accent"]))
        if form == "upper":
            char = char.upper()
        elif form == "full":
            char = FULL_WIDTH[draw(st.sampled_from([char, char.upper()]))]
        elif form == "accent" and char in ACCENTS:
            char = draw(st.sampled_from(ACCENTS[char]))
            if draw(st.booleans()):  # decomposed: a letter and a combining accent
                char = unicodedata.normalize("NFD", char)
        out += char
        if index < len(word) - 1 and draw(st.integers(0, 5)) == 0:
            out += draw(st.sampled_from([" ", "  ", "-", ".", "\u00a0"]))
    return word, out + draw(PUNCTUATION)


@FAST
@given(
    variant=variants(OPT_OUT_WORDS), state=states(), channel=st.sampled_from(["sms", "telegram"])
)
def test_every_way_of_writing_an_opt_out_word_opts_out(variant, state, channel):
    word, text = variant
    assert keyword_of(text) is Keyword.OPT_OUT, (word, text)
    turn = handle(state, Inbound(channel, text), ctx(channel))
    assert turn.state.opted_out
    if state.opted_out:
        assert turn.outbound == []  # one confirmation only: already out means silence
    else:
        assert len(turn.outbound) == 1 and turn.outbound[0].compliance
        assert [e.kind for e in turn.events] == ["participant.opted_out"]


@FAST
@given(variant=variants(OPT_IN_WORDS), channel=st.sampled_from(["sms", "telegram"]))
def test_every_way_of_writing_an_opt_in_word_opts_back_in(variant, channel):
    _, text = variant
    turn = handle(State(opted_out=True), Inbound(channel, text), ctx(channel))
    assert not turn.state.opted_out and turn.outbound


@FAST
@given(variant=variants(CARRIER_OPT_IN_WORDS - OPT_IN_WORDS), state=states())
def test_yes_after_stop_opts_in_on_sms_only_and_says_it_answered_nothing(variant, state):
    """Twilio delivers again to a number that texts YES after STOP: so do we, saying the
    YES answered nothing. Elsewhere no carrier decides, and STOP holds until START."""
    _, text = variant
    state.opted_out = True
    by_sms = handle(state, Inbound("sms", text), ctx("sms"))
    assert not by_sms.state.opted_out
    said = translator(by_sms.state.language).gettext(
        "A YES after STOP only subscribes you again: it did not answer anything we asked "
        "you before."
    )
    assert by_sms.outbound[1].text == said
    by_telegram = handle(state, Inbound("telegram", text), ctx("telegram"))
    assert by_telegram.state.opted_out and by_telegram.outbound == []


@FAST
@given(variant=variants({"oui", "si"}), channel=st.sampled_from(["sms", "telegram"]))
def test_oui_and_si_after_stop_stay_unheard(variant, channel):
    """The carrier does not lift its block for them: nothing could be delivered anyway."""
    _, text = variant
    turn = handle(State(opted_out=True), Inbound(channel, text), ctx(channel))
    assert turn.state.opted_out and turn.outbound == []


@FAST
@given(variant=variants(HELP_WORDS), state=states())
def test_every_way_of_writing_help_gets_help(variant, state):
    _, text = variant
    turn = handle(state, Inbound("sms", text), ctx("sms"))
    if state.opted_out:
        assert turn.outbound == []
    else:
        assert "STOP" in turn.outbound[0].text and len(turn.outbound) >= 2


@FAST
@given(word=st.sampled_from(sorted(OPT_OUT_WORDS)), state=states())
def test_a_button_press_never_opts_out(word, state):
    """Callback data comes from our own buttons; only what a person types is a keyword."""
    turn = handle(
        state, Inbound("telegram", "", button_data(state.prompt_id, word)), ctx("telegram")
    )
    assert turn.state.opted_out == state.opted_out
