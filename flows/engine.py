"""The conversation engine: keywords first, then the participant's current flow.

`Engine(flows, commands).handle(state, inbound, ctx)` is the whole contract. Flows are
small classes with a name; each knows how to ask each of its steps and how to take a reply
to it. The engine holds the flows and commands it was made with (flows/catalog.py lists
the service's own), so nothing here is global.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from flows import events
from flows.i18n import Translator, shipped_languages, translator
from flows.keywords import (
    REPLY_WORDS,
    Keyword,
    keyword_of,
    language_of,
    opts_in_as_an_answer,
    yes_or_no_choice,
)
from flows.model import Choice, Context, Event, Inbound, Outbound, State, Turn
from flows.text import fold

MAX_TEXT = 1600  # longer input is cut before any flow sees it


@dataclass(frozen=True)
class Answer:
    """A reply to the current step: the raw text and the choice it matched, if any."""

    text: str
    choice: str | None = None


class Conversation:
    """The working surface of one turn: flows read state and say things through it."""

    def __init__(self, state: State, ctx: Context, engine: Engine):
        self.state = state
        self.ctx = ctx
        self.engine = engine
        self.outbound: list[Outbound] = []
        self.events: list[Event] = []

    @property
    def t(self) -> Translator:
        return translator(self.state.language)

    def _(self, message: str, **values: object) -> str:
        return self.t.gettext(message, **values)

    def say(self, text: str, **options: Any) -> None:
        self.outbound.append(Outbound(text=text, **options))

    def ask(self, step: str, text: str, choices: tuple[Choice, ...] = (), **options: Any) -> None:
        """Send a prompt and wait at `step` for its answer."""
        self.state.step = step
        self.state.offered = [[c.key, c.label] for c in choices]
        self.state.prompt_id = _next_prompt_id(self.state)
        self.outbound.append(Outbound(text=text, choices=choices, **options))

    def emit(self, kind: str, **data: Any) -> None:
        self.events.append(Event(kind=kind, data=data))

    def goto(self, flow: str, step: str | None = None) -> None:
        """Leave the current flow and enter another (at its first step unless named)."""
        self.state.flow = flow
        self.state.step = None
        self.state.offered = []
        entered = self.engine.flow(flow)
        entered.enter(self) if step is None else entered.ask(self, step)

    def finish(self) -> None:
        """No flow is waiting for an answer any more."""
        self.state.flow = None
        self.state.step = None
        self.state.offered = []

    def not_understood(self) -> None:
        """The standard answer to a reply that does not fit: say so and list valid replies."""
        self.say(self._("Sorry, I did not understand that."))
        self.repeat()

    def repeat(self) -> None:
        """Ask the current step again (in the current language)."""
        flow = self.engine.current_flow(self.state, self.ctx)
        if self.state.step is None:
            self.state.flow = flow.name  # its steps must come back to it, whatever the default
            flow.enter(self)
        else:
            flow.ask(self, self.state.step)

    def choices(self, *pairs: tuple[str, str]) -> tuple[Choice, ...]:
        return tuple(Choice(key, label) for key, label in pairs)


class Flow(ABC):
    """A conversation. Subclasses set `name` and implement `enter`, `ask` and `reply`."""

    name: ClassVar[str]

    @abstractmethod
    def enter(self, conv: Conversation) -> None:
        """Start the flow: usually ask its first step."""

    @abstractmethod
    def ask(self, conv: Conversation, step: str) -> None:
        """(Re-)send the prompt of `step`."""

    @abstractmethod
    def reply(self, conv: Conversation, step: str, answer: Answer) -> None:
        """Take an answer to `step`. Call conv.not_understood() for one that does not fit."""


# Commands some people may give whatever flow they are in ('/broadcast' from an organiser):
# each handler takes the turn by returning True, or leaves it to the current flow.
CommandHandler = Callable[[Conversation, Inbound], bool]


def _next_prompt_id(state: State) -> str:
    counter = int(state.data.get("_prompts", 0)) + 1
    state.data["_prompts"] = counter
    return _base36(counter)


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def button_data(prompt_id: str | None, key: str) -> str:
    """Callback data of an inline button: the prompt it belongs to and the choice key."""
    return f"{prompt_id or '0'}:{key}"


def match_choice(state: State, inbound: Inbound) -> tuple[str | None, bool]:
    """The offered choice a message picks, and whether it was a stale button press."""
    if inbound.button is not None:
        prompt_id, _, key = inbound.button.partition(":")
        if prompt_id != state.prompt_id or key not in {k for k, _ in state.offered}:
            return None, True
        return key, False
    word = fold(inbound.text)
    if not word:
        return None, False
    for index, (key, label) in enumerate(state.offered, start=1):
        if word in (str(index), fold(key), fold(label)) or word in REPLY_WORDS.get(key, ()):
            return key, False
    return yes_or_no_choice(word, [key for key, _ in state.offered]), False


class Engine:
    """The flows and commands of one service: what every turn is run through.

    Commands are checked in the order given, after the keywords and before the current
    flow; flows are found by their name.
    """

    def __init__(
        self,
        flows: Iterable[Flow],
        commands: Iterable[CommandHandler] = (),
        heard_after_stop: Iterable[CommandHandler] = (),
    ):
        self.flows: dict[str, Flow] = {}
        for flow in flows:
            if flow.name in self.flows:
                raise ValueError(f"two flows are named {flow.name!r}")
            self.flows[flow.name] = flow
        self.commands: tuple[CommandHandler, ...] = tuple(commands)
        # Requests the law lets a person make after STOP (a copy of their data): recorded
        # for the organisers, never answered, since nothing is sent after STOP.
        self.heard_after_stop: tuple[CommandHandler, ...] = tuple(heard_after_stop)

    def flow(self, name: str) -> Flow:
        try:
            return self.flows[name]
        except KeyError:
            raise LookupError(f"no flow named {name!r}") from None

    def current_flow(self, state: State, ctx: Context) -> Flow:
        return self.flow(state.flow or ctx.facts.default_flow or "welcome")

    def handle(self, state: State, inbound: Inbound, ctx: Context) -> Turn:
        """One inbound message in, a new state, messages and audit events out."""
        conv = Conversation(state.copy(), ctx, self)
        text = inbound.text[:MAX_TEXT]
        inbound = replace(inbound, text=text)
        keyword = keyword_of(text, inbound.channel) if inbound.button is None else None

        if conv.state.opted_out:
            if keyword is Keyword.OPT_IN:
                conv.state.opted_out = False
                conv.emit(events.OPTED_IN, channel=inbound.channel)
                conv.say(conv._("Welcome back. You will receive messages from us again."))
                _said_after_stop(conv, text)
                conv.repeat()
                return Turn(conv.state, conv.outbound, conv.events)
            for take_request in self.heard_after_stop:
                if take_request(conv, inbound):
                    break
            # Anything else from someone who opted out gets a deliberate silence.
            return Turn(conv.state, [], conv.events)

        if keyword is Keyword.OPT_OUT:
            conv.state.opted_out = True
            # No question stays open: whoever comes back with START starts afresh.
            conv.finish()
            conv.emit(events.OPTED_OUT, channel=inbound.channel)
            conv.say(
                conv._(
                    "You have been unsubscribed and will get no more messages from us. "
                    "Reply START to subscribe again."
                ),
                compliance=True,
            )
            return Turn(conv.state, conv.outbound, conv.events)

        if keyword is Keyword.HELP:
            conv.say(help_text(conv))
            conv.repeat()
            return Turn(conv.state, conv.outbound, conv.events)

        choice, stale = match_choice(conv.state, inbound)
        # A reply that is one of the offered options ('Français' at the language question)
        # goes to the flow, not to the language keyword.
        language = (
            language_of(text, shipped_languages())
            if inbound.button is None and choice is None
            else None
        )
        if language is not None:
            previous = conv.state.language
            conv.state.language = language
            conv.emit(events.LANGUAGE_CHANGED, previous=previous, language=language)
            conv.say(conv._("From now on I will write to you in English."))
            conv.repeat()
            return Turn(conv.state, conv.outbound, conv.events)

        prompt = conv.state.prompt_id
        if any(take_command(conv, inbound) for take_command in self.commands):
            return Turn(conv.state, conv.outbound, conv.events)
        if conv.state.prompt_id != prompt:
            # A command put an earlier question back (WITHDRAW not confirmed): the message
            # answers that one now.
            choice, stale = match_choice(conv.state, inbound)

        unreadable = _unreadable(conv, inbound, stale)
        if unreadable is not None:
            conv.say(unreadable)
            conv.repeat()
            return Turn(conv.state, conv.outbound, conv.events)

        flow = self.current_flow(conv.state, ctx)
        if conv.state.step is None:
            conv.state.flow = flow.name
            flow.enter(conv)
        else:
            flow.reply(conv, conv.state.step, Answer(text=text, choice=choice))
        return Turn(conv.state, conv.outbound, conv.events)

    def start(self, state: State, flow: str, ctx: Context, step: str | None = None) -> Turn:
        """Begin a flow for a participant without an inbound message (an invitation, a draw)."""
        conv = Conversation(state.copy(), ctx, self)
        if conv.state.opted_out:
            return Turn(conv.state, [], [])
        conv.goto(flow, step)
        return Turn(conv.state, conv.outbound, conv.events)


def _unreadable(conv: Conversation, inbound: Inbound, stale: bool) -> str | None:
    """What to say, before the question again, of a message no flow could take: a button
    of an earlier question, or an attachment with no words (a voice note most of all:
    people who find writing hard send them)."""
    if stale:
        return conv._("That button belongs to an earlier question.")
    if inbound.media is not None and inbound.button is None and not inbound.text.strip():
        return conv._(
            "I can only read written messages: please write your answer, even in a few words."
        )
    return None


def _said_after_stop(conv: Conversation, text: str) -> None:
    """Coming back: a vote STOP left unconfirmed was not cast, and a YES (Twilio's word to
    subscribe again) answered nothing; the person is told so plainly."""
    from flows.ballot import UNCONFIRMED

    if conv.state.data.pop(UNCONFIRMED, None):
        conv.say(
            conv._(
                "Your vote was not cast: STOP ended it before you confirmed it, and took "
                "you off the list of voters."
            )
        )
    elif opts_in_as_an_answer(text):
        conv.say(
            conv._(
                "A YES after STOP only subscribes you again: it did not answer anything we "
                "asked you before."
            )
        )


def help_text(conv: Conversation) -> str:
    name = conv.ctx.facts.service_name or "Concorder Relay"
    assembly = conv.ctx.facts.assembly_name
    if assembly:
        from flows.assembly import localised  # the name in this person's language

        recruitment = conv.ctx.facts.recruitment
        default = recruitment.default_language if recruitment else "en"
        assembly = localised(assembly, conv.state.language, default)
        intro = conv._(
            "This is {service}, the messaging service of {assembly}.",
            service=name,
            assembly=assembly,
        )
    else:
        intro = conv._(
            "This is {service}, the messaging service of a citizens' assembly.", service=name
        )
    parts = [
        intro,
        conv._("Reply STOP at any time to get no more messages."),
        conv._("Reply MYDATA for a copy of your data."),
        conv._("Reply ENGLISH, FRANCAIS or ESPANOL to change language."),
    ]
    if conv.ctx.facts.facilitation is not None:  # a facilitator: their own commands too
        from flows.facilitation import facilitator_help

        parts.append(facilitator_help(conv))
    from flows.deliberation import table_help  # a seated member mid-prompt: the table's

    parts.append(table_help(conv) or "")
    return " ".join(p for p in parts if p)
