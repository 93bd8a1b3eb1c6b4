"""The conversation engine on its own: pure functions, no database, no network, no clock."""

from __future__ import annotations

from datetime import UTC, datetime

from flows.catalog import build_engine
from flows.engine import (
    MAX_TEXT,
    Answer,
    Conversation,
    Engine,
    Flow,
    button_data,
    match_choice,
)
from flows.facts import Facts
from flows.keywords import language_of
from flows.model import Context, Inbound, State

NOW = datetime(2026, 3, 3, 18, 30, tzinfo=UTC)


def ctx(channel: str = "sms", **facts) -> Context:
    return Context(now=NOW, participant_id="PTEST", channel=channel, facts=Facts(**facts))


class Echo(Flow):
    """A flow for these tests: says how much of the answer it was given."""

    name = "test_echo"

    def enter(self, conv: Conversation) -> None:
        self.ask(conv, "ask")

    def ask(self, conv: Conversation, step: str) -> None:
        conv.ask("ask", "Say something.", conv.choices(("red", "Rouge"), ("green", "Vert")))

    def reply(self, conv: Conversation, step: str, answer: Answer) -> None:
        if answer.choice is None and not answer.text.startswith("free"):
            conv.not_understood()
            return
        conv.say(f"{answer.choice or '-'} {len(answer.text)}")
        conv.finish()


# The service's flows and commands, and the test flow above.
SERVICE = build_engine()
ENGINE = Engine(flows=[*SERVICE.flows.values(), Echo()], commands=SERVICE.commands)
handle, start = ENGINE.handle, ENGINE.start


def talk(state: State, *messages: str, channel: str = "sms", **facts):
    """Send messages in turn; the last turn and every text that came back."""
    said: list[str] = []
    turn = None
    for message in messages:
        turn = handle(state, Inbound(channel=channel, text=message), ctx(channel, **facts))
        state = turn.state
        said += [out.text for out in turn.outbound]
    return turn, said


def echo_state(**changes) -> State:
    state = start(State(), "test_echo", ctx()).state
    for key, value in changes.items():
        setattr(state, key, value)
    return state


def test_first_message_opens_the_default_flow():
    turn, said = talk(State(), "hello")
    assert turn.state.flow == "welcome" and turn.state.step == "menu"
    assert said[0].startswith("Hello, this is Concorder Relay.")
    assert [e.kind for e in turn.events] == ["conversation.started"]
    assert [c.key for c in turn.outbound[0].choices] == ["about", "language"]


def test_the_given_state_is_never_changed():
    state = echo_state()
    before = state.to_json()
    handle(state, Inbound("sms", "STOP"), ctx())
    handle(state, Inbound("sms", "1"), ctx())
    assert state.to_json() == before


def test_replies_match_by_number_key_or_label_however_written():
    state = echo_state()
    for text in ("1", " 1 ", "１", "red", "RED", "rouge", "Rouge!", "  r o u g e "):
        assert match_choice(state, Inbound("sms", text)) == ("red", False), text
    for text in ("3", "0", "12", "", "🙂", "redgreen"):
        assert match_choice(state, Inbound("sms", text)) == (None, False), text


def offering(*keys_and_labels: tuple[str, str]) -> State:
    return echo_state(offered=[[key, label] for key, label in keys_and_labels])


def test_yes_and_no_words_answer_a_question_that_is_a_yes_or_a_no():
    consent = offering(("agree", "J'accepte"), ("disagree", "Je n'accepte pas"))
    for text in ("oui", "Oui !", "oui.", "Sí", "si", "YES", "ok"):
        assert match_choice(consent, Inbound("sms", text)) == ("agree", False), text
    for text in ("non", "Non.", "NO", "no"):
        assert match_choice(consent, Inbound("sms", text)) == ("disagree", False), text
    place = offering(("confirm", "Confirmer"), ("decline", "Refuser"))
    assert match_choice(place, Inbound("sms", "Sí.")) == ("confirm", False)
    assert match_choice(place, Inbound("sms", "non")) == ("decline", False)
    for state in (consent, place):
        assert match_choice(state, Inbound("sms", "peut-être")) == (None, False)


def test_yes_and_no_words_take_no_answer_that_is_not_theirs():
    # A question with no yes or no among its options: OUI answers nothing.
    assert match_choice(
        offering(("about", "About"), ("language", "Language")), Inbound("sms", "oui")
    ) == (None, False)
    # The summary has a yes but two ways of saying no: NON is not guessed.
    summary = offering(("confirm", "Yes, register me"), ("back", "Change"), ("restart", "Again"))
    assert match_choice(summary, Inbound("sms", "oui")) == ("confirm", False)
    assert match_choice(summary, Inbound("sms", "non")) == (None, False)
    # An option that is itself called "Oui" is chosen by its name first.
    named = offering(("agree", "J'accepte"), ("maybe", "Oui"))
    assert match_choice(named, Inbound("sms", "OUI")) == ("maybe", False)
    # Two options that could each be the yes: neither is picked.
    both = offering(("agree", "Agree"), ("confirm", "Confirm"))
    assert match_choice(both, Inbound("sms", "yes")) == (None, False)


def test_buttons_match_only_the_current_prompt():
    state = echo_state()
    current = button_data(state.prompt_id, "green")
    assert match_choice(state, Inbound("telegram", "", current)) == ("green", False)
    assert match_choice(state, Inbound("telegram", "1", current)) == ("green", False)
    for stale in (button_data("zz", "green"), button_data(state.prompt_id, "blue"), "junk"):
        assert match_choice(state, Inbound("telegram", "", stale)) == (None, True), stale


def test_a_stale_button_says_so_and_asks_again_with_fresh_buttons():
    state = echo_state()
    old = state.prompt_id
    turn = handle(state, Inbound("telegram", "", button_data("0", "red")), ctx("telegram"))
    assert [o.text for o in turn.outbound] == [
        "That button belongs to an earlier question.",
        "Say something.",
    ]
    assert turn.state.prompt_id != old and turn.state.step == "ask"


def test_prompt_ids_are_new_for_every_question():
    state = echo_state()
    seen = {state.prompt_id}
    for _ in range(40):
        state = handle(state, Inbound("sms", "nonsense"), ctx()).state
        assert state.prompt_id not in seen
        seen.add(state.prompt_id)
    assert button_data(None, "x") == "0:x"


def test_not_understood_repeats_the_question_and_its_choices():
    turn, said = talk(echo_state(), "purple")
    assert said == ["Sorry, I did not understand that.", "Say something."]
    assert [c.label for c in turn.outbound[1].choices] == ["Rouge", "Vert"]


def test_an_attachment_without_words_is_answered_plainly_then_the_question_again():
    turn = handle(echo_state(), Inbound("telegram", "", media="voice"), ctx("telegram"))
    assert [o.text for o in turn.outbound] == [
        "I can only read written messages: please write your answer, even in a few words.",
        "Say something.",
    ]
    assert [c.label for c in turn.outbound[1].choices] == ["Rouge", "Vert"]
    assert turn.events == []


def test_an_attachments_words_are_the_answer():
    turn = handle(echo_state(), Inbound("sms", "Vert", media="photo"), ctx())
    assert [o.text for o in turn.outbound] == ["green 4"]


def test_an_attachment_from_someone_who_opted_out_gets_silence():
    stopped = talk(echo_state(), "STOP")[0].state
    quiet = handle(stopped, Inbound("telegram", "", media="voice"), ctx("telegram"))
    assert quiet.outbound == [] and quiet.events == [] and quiet.state.opted_out


def test_long_text_is_cut_before_the_flow_sees_it():
    _, said = talk(echo_state(), "free " + "x" * 5000)
    assert said == [f"- {MAX_TEXT}"]


def test_a_button_is_never_read_as_a_keyword():
    state = echo_state()
    turn = handle(
        state, Inbound("telegram", "STOP", button_data(state.prompt_id, "red")), ctx("telegram")
    )
    assert not turn.state.opted_out
    assert [o.text for o in turn.outbound] == ["red 4"]


def test_opt_out_then_silence_then_opt_in():
    turn, said = talk(echo_state(), "STOP")
    assert turn.state.opted_out and len(said) == 1 and turn.outbound[0].compliance
    assert [e.kind for e in turn.events] == ["participant.opted_out"]
    state = turn.state
    for text in ("hello", "1", "HELP", "FRANCAIS", "STOP", "lang es"):
        quiet = handle(state, Inbound("sms", text), ctx())
        assert quiet.outbound == [] and quiet.events == [] and quiet.state.opted_out, text
    pressed = handle(
        state, Inbound("telegram", "", button_data(state.prompt_id, "red")), ctx("telegram")
    )
    assert pressed.outbound == [] and pressed.state.opted_out
    back = handle(state, Inbound("sms", "start"), ctx())
    assert not back.state.opted_out
    # STOP closed the open question: START begins afresh where anyone new would.
    assert back.outbound[0].text == "Welcome back. You will receive messages from us again."
    assert back.outbound[1].text.startswith("Hello, this is Concorder Relay.")
    assert back.state.flow == "welcome"
    assert [e.kind for e in back.events] == ["participant.opted_in", "conversation.started"]


def test_nothing_starts_for_someone_who_opted_out():
    state = State(opted_out=True)
    turn = start(state, "test_echo", ctx())
    assert turn.outbound == [] and turn.state.flow is None


def test_start_enters_a_flow_without_an_inbound_message():
    turn = start(State(language="fr"), "welcome", ctx())
    assert turn.state.flow == "welcome" and turn.outbound[0].text.startswith("Bonjour")


def test_help_names_the_assembly_when_known_and_asks_again():
    _, said = talk(echo_state(), "help", assembly_name="the Climate Assembly")
    assert said[0].startswith(
        "This is Concorder Relay, the messaging service of the Climate Assembly."
    )
    assert "Reply STOP" in said[0] and said[1] == "Say something."


def test_language_words_switch_and_record_the_change():
    turn, said = talk(echo_state(), "Español")
    assert turn.state.language == "es"
    assert said[0] == "A partir de ahora le escribiré en español."
    assert turn.events[0].kind == "participant.language_changed"
    assert turn.events[0].data == {"previous": "en", "language": "es"}
    turn, _ = talk(turn.state, "lang fr")
    assert turn.state.language == "fr"


def test_a_language_that_is_not_shipped_is_not_a_keyword():
    assert language_of("deutsch", ("en", "fr", "es")) is None
    assert language_of("fr", ("en",)) is None  # only shipped languages count
    turn, said = talk(echo_state(), "deutsch")
    assert turn.state.language == "en" and said[0] == "Sorry, I did not understand that."


def test_state_survives_a_json_round_trip():
    state = echo_state(language="es", data={"x": [1, 2]})
    assert State.from_json(state.to_json()).to_json() == state.to_json()
    assert State.from_json(None, language="fr").language == "fr"


def test_a_language_name_offered_as_an_option_is_taken_as_the_answer():
    ctx = Context(now=datetime(2026, 3, 3, tzinfo=UTC), participant_id="P1", channel="sms")
    state = handle(State(), Inbound("sms", "hi"), ctx).state
    state = handle(state, Inbound("sms", "2"), ctx).state  # the language question
    turn = handle(state, Inbound("sms", "Français"), ctx)
    assert turn.state.language == "fr"
    assert turn.state.step == "menu"  # back to the menu, not the same question again


def test_a_turn_reads_no_file_once_the_catalogs_are_loaded(monkeypatch):
    import builtins
    import io

    from flows import i18n

    for language in i18n.shipped_languages():
        talk(State(language=language), "hello", "anything at all")

    def no_disk(*args, **kwargs):
        raise AssertionError("a turn opened a file")

    monkeypatch.setattr(i18n, "LOCALES", None)  # any look at the catalogs' folder fails
    monkeypatch.setattr(builtins, "open", no_disk)
    monkeypatch.setattr(io, "open", no_disk)
    for language in i18n.shipped_languages():
        turn, said = talk(State(language=language), "hello", "anything at all", "FRANCAIS", "HELP")
        assert turn.state.language == "fr" and said
