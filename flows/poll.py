"""A deliberative poll's questionnaire, one question at a time.

By SMS an agreement question is answered 1 to 5 and a knowledge question by its letter
(A, B, C); on Telegram both are buttons, and typing works too. SKIP (PASSER, SALTAR)
leaves a question out; anything else is told what to reply and asked again. Each answer
leaves the flow in the state's `poll_answers`, which the service takes out and records
under the person's pseudonym in the same turn (bot/services/polls/answering.py).
"""

from __future__ import annotations

import re
from typing import Any

from babel.lists import format_list

from flows import events
from flows.engine import Answer, Conversation, Flow
from flows.facts import PollFacts
from flows.i18n import N_
from flows.model import Inbound
from flows.poll_spec import letter
from flows.text import fold

NAME = "poll"
KIND = "poll"  # the outbox kind of every message of this flow
ANSWERS = "poll_answers"  # the state key the service takes this turn's answers from
SKIP = "skip"
SKIP_WORDS = {"skip", "passer", "sauter", "saltar", "omitir"}
SCALE = (
    N_("Strongly disagree"),
    N_("Disagree"),
    N_("Neither agree nor disagree"),
    N_("Agree"),
    N_("Strongly agree"),
)
_DIGIT = re.compile(r"^\s*([1-5])\s*[.)]?\s*$")
_LETTER = re.compile(r"^\s*([a-h])\s*[.)]?\s*$", re.IGNORECASE)


def localised(texts: dict[str, str], language: str) -> str:
    return texts.get(language) or texts.get("en") or next(iter(texts.values()), "")


def _poll(conv: Conversation) -> PollFacts | None:
    wanted = conv.state.data.get(NAME) or {}
    poll = conv.ctx.facts.poll
    if poll is None or (poll.id, poll.wave) != (wanted.get("id"), wanted.get("wave")):
        return None
    return poll


def parse(question: dict[str, Any], answer: Answer) -> str | None:
    """The stored value of a reply ("1".."5", an option key, SKIP), or None if it is none."""
    if answer.choice is not None:
        return answer.choice
    word = fold(answer.text)
    if word in SKIP_WORDS:
        return SKIP
    if question["kind"] == "agree":
        match = _DIGIT.match(answer.text)
        return match[1] if match else None
    options = question["options"]
    match = _LETTER.match(answer.text)
    if match and "abcdefgh".index(match[1].lower()) < len(options):
        return options["abcdefgh".index(match[1].lower())]["key"]
    by_label = [
        o["key"] for o in options if word and word in {fold(v) for v in o["label"].values()}
    ]
    return by_label[0] if len(by_label) == 1 else None


class Poll(Flow):
    name = NAME

    def enter(self, conv: Conversation) -> None:
        if _poll(conv) is None:
            self._closed(conv)
            return
        self.ask(conv, "question")

    def ask(self, conv: Conversation, step: str) -> None:
        kind, _, rest = step.partition(":")
        if kind in ("start", "resume"):  # a wave's opening, or its reminder (the service)
            poll_id, _, wave = rest.partition(":")
            place = conv.state.data.get(NAME) or {}
            if kind == "start" or (place.get("id"), place.get("wave")) != (poll_id, wave):
                place = {"id": poll_id, "wave": wave, "q": 0}
            conv.state.data[NAME] = place
        poll = _poll(conv)
        if poll is None or poll.status != "open":
            self._closed(conv, poll)
            return
        d, _ = poll.definition, conv._
        title = localised(d["title"], conv.state.language)
        q = conv.state.data[NAME]["q"]
        if kind == "start":
            conv.say(
                _(
                    "{title}: {n} short questions. They are asked before and after the "
                    "assembly, to learn how views change; your answers are kept under a "
                    "code, not your name. Reply SKIP to leave a question out.",
                    title=title,
                    n=len(d["questions"]),
                ),
                kind=KIND,
            )
        elif kind == "resume":
            left = len(d["questions"]) - q
            conv.say(
                conv.t.ngettext(
                    "A reminder: {title} has {n} question left.",
                    "A reminder: {title} has {n} questions left.",
                    left,
                    title=title,
                ),
                kind=KIND,
            )
        self._question(conv, d, q)

    def _question(self, conv: Conversation, d: dict[str, Any], q: int) -> None:
        question, _ = d["questions"][q], conv._
        language = conv.state.language
        head = f"{q + 1}/{len(d['questions'])}. {localised(question['text'], language)}"
        if question["kind"] == "agree":
            pairs = [(str(n), _(label)) for n, label in enumerate(SCALE, start=1)]
            how = _("Reply 1 to 5 (or SKIP).")
        else:
            pairs = [
                (o["key"], f"{letter(n)}. {localised(o['label'], language)}")
                for n, o in enumerate(question["options"])
            ]
            how = _("Reply {letters} (or SKIP).", letters=self._letters(conv, question))
        if conv.ctx.channel == "telegram":
            choices = conv.choices(*pairs, (SKIP, _("Skip")))
            conv.ask("question", head, choices, kind=KIND)
            return
        lines = [head, ""]
        if question["kind"] == "agree":
            lines += [f"{key} {label}" for key, label in pairs]
        else:
            lines += [label for _, label in pairs]
        conv.ask("question", "\n".join([*lines, how]), kind=KIND)

    @staticmethod
    def _letters(conv: Conversation, question: dict[str, Any]) -> str:
        letters = [letter(n) for n in range(len(question["options"]))]
        return format_list(letters, style="or", locale=conv.t.locale)

    def reply(self, conv: Conversation, step: str, answer: Answer) -> None:
        poll = _poll(conv)
        if poll is None or poll.status != "open":
            self._closed(conv, poll)
            return
        d, place = poll.definition, conv.state.data[NAME]
        question = d["questions"][place["q"]]
        value = parse(question, answer)
        if value is None:
            if question["kind"] == "agree":
                conv.say(conv._("Please reply with a number from 1 to 5 (or SKIP)."), kind=KIND)
            else:
                letters = self._letters(conv, question)
                conv.say(
                    conv._("Please reply with one letter: {letters} (or SKIP).", letters=letters),
                    kind=KIND,
                )
            self._question(conv, d, place["q"])
            return
        recorded = conv.state.data.setdefault(ANSWERS, [])
        recorded.append(
            {
                "poll": poll.id,
                "wave": poll.wave,
                "question": question["id"],
                "value": None if value == SKIP else value,
            }
        )
        place["q"] += 1
        if place["q"] < len(d["questions"]):
            self._question(conv, d, place["q"])
            return
        conv.state.data.pop(NAME, None)
        conv.emit(events.POLL_COMPLETED, poll=poll.id, wave=poll.wave)
        conv.say(conv._("Thank you: your answers are recorded."), kind=KIND)
        conv.finish()

    def _closed(self, conv: Conversation, poll: PollFacts | None = None) -> None:
        conv.state.data.pop(NAME, None)
        if poll is not None:
            title = localised(poll.definition["title"], conv.state.language)
            conv.say(conv._("{title} has closed; thank you all the same.", title=title), kind=KIND)
        else:
            conv.say(conv._("No questionnaire is waiting for you."), kind=KIND)
        conv.finish()


def answers_poll(conv: Conversation, inbound: Inbound) -> bool:
    """Whether a typed message answers the poll question this person was last asked: their
    table's prompt, if one is open, lets it through to the questionnaire."""
    if conv.state.flow != NAME or conv.state.step != "question" or inbound.button is not None:
        return False
    poll = _poll(conv)
    if poll is None or poll.status != "open":
        return False
    question = poll.definition["questions"][conv.state.data[NAME]["q"]]
    return parse(question, Answer(text=inbound.text)) is not None
