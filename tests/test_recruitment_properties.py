"""No reply, however odd, breaks a recruitment conversation or loses an answer already given.

The pure engine (Engine.handle) is driven through random sequences of replies, button
presses and organiser steps (a reminder, the draw), with the facts bot/recruitment.py's
provider would give. A small model of the database plays the part of the service's event
handlers: the invitation's status moves on with the events, and the registration answers
leave the conversation state for their table when registration completes.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.services.recruitment.facts import _default_flow, _outcome
from flows import engine, events
from flows.assembly import load_assembly
from flows.catalog import build_engine
from flows.facts import Facts, RecruitmentFacts, SelectionFacts
from flows.i18n import shipped_languages
from flows.invitation import WITHDRAW_WORDS
from flows.keywords import (
    HELP_WORDS,
    LANGUAGE_WORDS,
    OPT_IN_WORDS,
    OPT_OUT_WORDS,
    REPLY_WORDS,
    Keyword,
    keyword_of,
)
from flows.model import Context, Inbound, State, Turn
from flows.registration import BACK_WORDS
from flows.rights import MYDATA_WORDS
from flows.text import fold
from store.recruitment import (
    CONFIRMED,
    CONSENTED,
    DECLINED,
    INVITED,
    NOT_INTERESTED,
    REGISTERED,
    RESERVE,
    RESPONDED,
    SELECTED,
    WITHDRAWN,
)

ASSEMBLY = load_assembly(
    Path(__file__).resolve().parent.parent / "examples" / "citizens-jury" / "assembly.toml"
)
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ENGINE = build_engine()
QUESTIONS = {q.id: [o.key for o in q.options] for q in ASSEMBLY.questions}
CHANNELS = ("sms", "telegram")
FAST = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass
class World:
    """What the database would say about this person, moved on by the turns' events."""

    channel: str
    known: dict[str, str] = field(default_factory=dict)
    status: str = INVITED
    selection: str | None = None
    selection_answered: bool = False
    registered: dict[str, str] | None = None  # the answers table after registration

    def context(self) -> Context:
        facts: dict[str, Any] = ASSEMBLY.facts()
        facts["known"] = dict(self.known)
        facts["invitation_status"] = self.status
        selection = None
        if self.selection is not None:
            facts["selection"] = SelectionFacts(
                self.selection, NOW + ASSEMBLY.recruitment.confirm_within
            )
            selection = SimpleNamespace(
                status=self.selection, responded_at=NOW if self.selection_answered else None
            )
        invitation = SimpleNamespace(status=self.status, outcome_sent_at=None)
        facts["outcome"] = _outcome(invitation, selection)
        result = Facts(
            assembly_name=ASSEMBLY.names,
            recruitment=RecruitmentFacts(**facts),
            default_flow=_default_flow(invitation, selection),
        )
        return Context(now=NOW, participant_id="P1", channel=self.channel, facts=result)

    def apply(self, turn: Turn) -> None:
        """The service's event handlers (bot/recruitment.py), in miniature."""
        for event in turn.events:
            kind = event.kind
            if kind == "invitation.accepted":
                self.status = RESPONDED
            elif kind in ("invitation.declined", "consent.refused"):
                self.status = NOT_INTERESTED
            elif kind == "consent.given":
                self.status = CONSENTED
            elif kind == "registration.completed":
                progress = turn.state.data.pop("registration", None) or {}
                self.registered = dict(progress.get("answers") or {})
                self.status = REGISTERED
            elif kind in ("participant.withdrew", "participant.opted_out"):
                self.status = WITHDRAWN
                if self.selection is not None:
                    self.selection, self.selection_answered = DECLINED, True
            elif kind == "selection.confirmed":
                self.selection, self.selection_answered = CONFIRMED, True
            elif kind == "selection.declined":
                self.selection, self.selection_answered = DECLINED, True


# ------------------------------------------------------------------------ replies

KEYWORDS = [
    "YES",
    "Oui",
    "sí",
    "NO",
    "non",
    "AGREE",
    "J'ACCEPTE",
    "acepto",
    "disagree",
    "BACK",
    "retour",
    "volver",
    "WITHDRAW",
    "retirer",
    "MYDATA",
    "mes données",
    "STOP",
    "arrêt",
    "START",
    "HELP",
    "aide",
    "CONFIRM",
    "DECLINE",
    "FRANCAIS",
    "español",
    "English",
    "Start again",
    "Yes, register me",
    "/start",
    "/start abcDEF123",
    "Woman",
    "65+",
    "bus or train",
    "Voiture",
    "1",
    "2",
    "3",
    "4",
]
EMOJI = ["🤔", "👍🏽", "❤️", "🇫🇷", "👨‍👩‍👧", "\u200b", "\ufeff", "\x00"]


def _long(piece: str, size: int) -> str:
    piece = piece or "x"
    return (piece * (size // len(piece) + 1))[:size]


texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(KEYWORDS),
    st.sampled_from(EMOJI),
    st.sampled_from(["", " ", "\n\t", "0", "-1", "5", "99", "1.5", "١", "１"]),
    st.integers(-3, 200).map(str),
    st.builds(
        lambda a, k, b: f"{a} {k} {b}",
        st.text(max_size=8),
        st.sampled_from(KEYWORDS),
        st.text(max_size=8),
    ),
    st.builds(_long, st.text(min_size=1, max_size=5), st.sampled_from([1600, 1601, 2000])),
)
# A button press: the n-th offered key of the current prompt, of an older prompt, or junk.
buttons = st.tuples(st.sampled_from(["current", "stale", "junk"]), st.integers(0, 5))
steps = st.one_of(
    texts.map(lambda t: ("text", t)),
    buttons.map(lambda b: ("button", b)),
    st.sampled_from([("remind", None), ("draw", SELECTED), ("draw", RESERVE), ("draw", "thanks")]),
)


def press(state: State, how: str, n: int) -> str:
    keys = [key for key, _label in state.offered] or ["yes"]
    if how == "current":
        return engine.button_data(state.prompt_id, keys[n % len(keys)])
    if how == "stale":
        return engine.button_data("old", keys[n % len(keys)])
    return f"{state.prompt_id}:no-such-key-{n}"


# ------------------------------------------------------------------------ checks


def check_state(state: State) -> None:
    assert state.language in shipped_languages()
    assert state.flow is None or state.flow in ENGINE.flows
    assert all(len(pair) == 2 and all(isinstance(x, str) for x in pair) for pair in state.offered)
    # What the service stores: plain JSON that reads back as the same state.
    stored = json.loads(json.dumps(state.to_json()))
    assert State.from_json(stored).to_json() == state.to_json()
    answers = _answers(state)
    for question, answer in answers.items():
        assert answer in QUESTIONS[question], (question, answer)
    order = (state.data.get("registration") or {}).get("order", [])
    assert sorted(order) == sorted(answers), (order, answers)


def _answers(state: State) -> dict[str, str]:
    return dict((state.data.get("registration") or {}).get("answers") or {})


def chosen(state: State, inbound: Inbound) -> str | None:
    """The offered option a reply picks, as the engine matches it."""
    inbound = Inbound(inbound.channel, inbound.text[: engine.MAX_TEXT], inbound.button)
    return engine.match_choice(state, inbound)[0]


def is_back(state: State, inbound: Inbound) -> bool:
    choice = chosen(state, inbound)
    return choice == "back" or (
        choice is None
        and inbound.button is None
        and fold(inbound.text[: engine.MAX_TEXT]) in BACK_WORDS
    )


def check_turn(before: State, inbound: Inbound, turn: Turn, world_before: World) -> None:
    after = turn.state
    check_state(after)
    typed = inbound.text[: engine.MAX_TEXT]
    keyword = keyword_of(typed, inbound.channel) if inbound.button is None else None
    kinds = [event.kind for event in turn.events]

    # Every turn answers; silence only for someone who opted out (or has just withdrawn).
    if before.opted_out:
        if keyword is Keyword.OPT_IN:
            assert not after.opted_out and turn.outbound
        else:
            # Silence; only an access request is still heard (it stands in law), without
            # an answer.
            assert after.opted_out and not turn.outbound
            word = fold(inbound.text[: engine.MAX_TEXT])
            asks_for_data = inbound.button is None and word in MYDATA_WORDS
            assert kinds == ([events.DATA_REQUESTED] if asks_for_data else [])
        return
    assert turn.outbound, f"no answer to {inbound!r} at {before.flow}/{before.step}"

    # STOP always opts out, with one confirmation and nothing else.
    if keyword is Keyword.OPT_OUT:
        assert after.opted_out and kinds == ["participant.opted_out"]
        assert [m.compliance for m in turn.outbound] == [True]
        assert _answers(after) == _answers(before)  # kept until the erasure runs
        return
    if "participant.withdrew" in kinds:
        assert after.opted_out and "registration" not in after.data
        return
    assert not after.opted_out

    # Registration answers already given stay given: only BACK (the last one), "start
    # again" and completing registration (they move to their table) take any away.
    old, new = _answers(before), _answers(after)
    if "registration.completed" in kinds:
        return
    if before.flow == "registration" and is_back(before, inbound):
        order = (before.data.get("registration") or {}).get("order") or []
        if order:
            expected = {q: a for q, a in old.items() if q != order[-1]}
            assert new == expected
            return
    restart = before.step == "summary" and chosen(before, inbound) == "restart"
    if restart:
        assert new == {}
        return
    for question, answer in old.items():
        assert new.get(question) == answer, f"{question} lost or changed by {inbound!r}"
    # A press on a current option of a question records exactly that option.
    if (before.step or "").startswith("q:") and inbound.button is not None:
        prompt, _, key = inbound.button.partition(":")
        if prompt == before.prompt_id and key in dict(before.offered):
            assert new.get(before.step[2:]) == key


def run_step(state: State, world: World, step) -> State:
    kind, value = step
    ctx = world.context()
    if kind == "remind":
        if world.status != INVITED:
            return state
        turn = ENGINE.start(state, "invitation", ctx, "reminder")
    elif kind == "draw":
        if world.status != REGISTERED or world.selection is not None:
            return state
        if value == "thanks":
            world.selection, world.selection_answered = "other", True
            turn = ENGINE.start(state, "confirmation", ctx, "thanks")
        else:
            world.selection = value
            turn = ENGINE.start(
                state,
                "confirmation",
                world.context(),
                "confirm" if value == SELECTED else "reserve",
            )
        assert bool(turn.outbound) != state.opted_out
    else:
        if kind == "button":
            inbound = Inbound(channel=world.channel, button=press(state, *value))
        else:
            inbound = Inbound(channel=world.channel, text=value)
        before_world = copy.deepcopy(world)
        turn = ENGINE.handle(state, inbound, ctx)
        check_turn(state, inbound, turn, before_world)
        world.apply(turn)
        if "registration.completed" in [e.kind for e in turn.events]:
            given = _answers(state)
            # Everything asked was answered, and exactly that reached the answers table.
            assert world.registered == given
            assert set(given) == set(QUESTIONS) - set(world.known)
        check_state(turn.state)
        return turn.state
    world.apply(turn)
    check_state(turn.state)
    return turn.state


def invited(language: str, world: World) -> State:
    turn = ENGINE.start(State(language=language), "invitation", world.context())
    assert turn.state.flow == "invitation" and turn.outbound
    return turn.state


@FAST
@given(
    language=st.sampled_from(shipped_languages()),
    channel=st.sampled_from(CHANNELS),
    knows_age=st.booleans(),
    script=st.lists(steps, max_size=30),
)
def test_no_reply_breaks_the_recruitment_conversation(language, channel, knows_age, script):
    world = World(channel, known={"age": "30-49"} if knows_age else {})
    state = invited(language, world)
    for step in script:
        state = run_step(state, world, step)


@FAST
@given(
    language=st.sampled_from(shipped_languages()),
    channel=st.sampled_from(CHANNELS),
    script=st.lists(steps, max_size=30),
)
def test_odd_replies_in_the_middle_of_registration(language, channel, script):
    """The same, starting at the first question (random replies rarely get that far)."""
    world = World(channel)
    state = invited(language, world)
    for word in ("1", "1"):
        state = run_step(state, world, ("text", word))
    assert state.flow == "registration" and state.step.startswith("q:")
    for step in script:
        state = run_step(state, world, step)


# Replies that cannot be an answer to anything: whatever they are, the registration that
# goes on around them ends with exactly the answers given.
ANSWERING = (
    OPT_OUT_WORDS
    | OPT_IN_WORDS
    | HELP_WORDS
    | set(LANGUAGE_WORDS)
    | WITHDRAW_WORDS
    | MYDATA_WORDS
    | BACK_WORDS
    | {w for words in REPLY_WORDS.values() for w in words}
)


def _noise_ok(text: str) -> bool:
    word = fold(text[: engine.MAX_TEXT])
    if word.isdigit() or word in ANSWERING or text.strip().lower().startswith("/start"):
        return False
    labels = {
        fold(label) for q in ASSEMBLY.questions for o in q.options for label in o.label.values()
    } | {fold(o.key) for q in ASSEMBLY.questions for o in q.options}
    return word not in labels and word not in {"startagain", "recommencer", "empezardenuevo"}


noise = st.lists(texts.filter(_noise_ok), max_size=3)


@FAST
@given(
    language=st.sampled_from(shipped_languages()),
    channel=st.sampled_from(CHANNELS),
    choices=st.fixed_dictionaries({q: st.sampled_from(keys) for q, keys in QUESTIONS.items()}),
    noises=st.lists(noise, min_size=6, max_size=6),
    by_button=st.booleans(),
)
def test_noise_between_answers_loses_none_of_them(language, channel, choices, noises, by_button):
    world = World(channel)
    state = invited(language, world)
    replies = iter(noises)

    def say(text: str) -> None:
        nonlocal state
        for odd in next(replies, []):
            state = run_step(state, world, ("text", odd))
        state = run_step(state, world, ("text", text))

    say("1")
    say("1")
    for question in QUESTIONS:
        assert state.step == f"q:{question}"
        keys = [key for key, _label in state.offered]
        if by_button:
            state = run_step(state, world, ("button", ("current", keys.index(choices[question]))))
        else:
            say(str(keys.index(choices[question]) + 1))
    assert state.step == "summary"
    say("1")
    assert world.status == REGISTERED and world.registered == choices
    # After that, more odd replies change nothing that was recorded.
    for odd in noises[-1]:
        state = run_step(state, world, ("text", odd))
    assert world.registered == choices and world.status == REGISTERED


def test_the_steps_reach_every_recruitment_flow():
    """The random scripts above can go everywhere: a plain path through every flow."""
    world = World("sms")
    state = invited("en", world)
    seen = {state.flow}
    for step in [
        ("text", "yes"),
        ("text", "agree"),
        ("text", "1"),
        ("text", "1"),
        ("text", "1"),
        ("text", "1"),
        ("draw", SELECTED),
        ("text", "CONFIRM"),
    ]:
        state = run_step(state, world, step)
        seen.add(state.flow)
    assert {"invitation", "consent", "registration", "confirmation"} <= seen
    assert world.selection == CONFIRMED
