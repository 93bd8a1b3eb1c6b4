"""The opinion map's statements, one at a time: agree, disagree or pass.

On SMS a reply is a letter (A, D, P) or a word in any shipped language; on Telegram it is
a button, and typing works too. Each answer is an audit event carrying the statement and
the answer (these answers are pseudonymous data for the map, not a secret ballot); the
service records it (bot/services/synthesis/voting.py), and a later answer replaces it.
OPINIONS goes through the statements again; PROPOSE <text> offers one of one's own, which
the organisers read before anyone is asked it.
"""

from __future__ import annotations

from flows import events
from flows import statements_words as words
from flows.engine import Answer, Conversation, Flow
from flows.facts import StatementFacts
from flows.model import Inbound
from flows.text import fold

NAME = "statements"
ASKED = "statements_asked"  # state data: this person has been sent statements
PROPOSED = "statement_proposed"  # state key the service takes a proposal's text from
KIND = "statements"  # the outbox kind of this flow's messages
MAX_LENGTH = 140  # a statement fits one SMS with its question


def _statements(conv: Conversation) -> list[StatementFacts]:
    return conv.ctx.facts.statements or []


def text_of(statement: StatementFacts, language: str) -> str:
    """The statement in the reader's language, else in its first language."""
    return statement.texts.get(language) or next(iter(statement.texts.values()), "")


def _after(conv: Conversation, current: int | None) -> StatementFacts | None:
    """The next statement to ask: unanswered ones, or every one when going round again."""
    again = conv.state.data.get(NAME, {}).get("again", False)
    ids = [s.id for s in _statements(conv)]
    start = ids.index(current) + 1 if current in ids else 0
    for statement in _statements(conv)[start:]:
        if again or statement.vote is None:
            return statement
    return None


class Statements(Flow):
    name = NAME

    def enter(self, conv: Conversation) -> None:
        statements = _statements(conv)
        again = bool(statements) and all(s.vote is not None for s in statements)
        conv.state.data[NAME] = {"again": again}
        first = _after(conv, None)
        if first is None:
            conv.say(conv._("No statement is waiting for your answer."), kind=KIND)
            self._leave(conv)
            return
        self.ask(conv, f"s:{first.id}")

    def ask(self, conv: Conversation, step: str) -> None:
        wanted = int(step.removeprefix("s:")) if step.startswith("s:") else None
        statements = _statements(conv)
        statement = next((s for s in statements if s.id == wanted), None)
        if statement is None:
            self._next(conv, wanted)
            return
        conv.state.data.setdefault(NAME, {"again": False})
        _ = conv._
        header = _(
            "Statement {n} of {total}:",
            n=statements.index(statement) + 1,
            total=len(statements),
        )
        text = f"{header}\n{text_of(statement, conv.state.language)}"
        if conv.ctx.channel == "telegram":
            choices = conv.choices(
                (words.AGREE, _("Agree")), (words.DISAGREE, _("Disagree")), (words.PASS, _("Pass"))
            )
            conv.ask(step, text, choices, kind=KIND)
        else:
            conv.ask(
                step, f"{text}\n{_('Reply A to agree, D to disagree or P to pass.')}", kind=KIND
            )

    def reply(self, conv: Conversation, step: str, answer: Answer) -> None:
        current = int(step.removeprefix("s:")) if step.startswith("s:") else None
        statement = next((s for s in _statements(conv) if s.id == current), None)
        if statement is None:
            self._next(conv, current)
            return
        choice = answer.choice if answer.choice in words.VALUES else words.answer_of(answer.text)
        if choice is None:
            conv.say(conv._("Reply A to agree, D to disagree or P to pass."), kind=KIND)
            self.ask(conv, step)
            return
        conv.emit(events.STATEMENT_ANSWERED, statement=statement.id, vote=words.VALUES[choice])
        self._next(conv, statement.id)

    def _next(self, conv: Conversation, current: int | None) -> None:
        following = _after(conv, current)
        if following is not None:
            self.ask(conv, f"s:{following.id}")
            return
        conv.say(
            conv._(
                "Thank you: your answers are recorded. Reply OPINIONS to go through the "
                "statements again (your last answer counts), or PROPOSE followed by a "
                "statement of your own."
            ),
            kind=KIND,
        )
        self._leave(conv)

    @staticmethod
    def _leave(conv: Conversation) -> None:
        conv.state.data.pop(NAME, None)
        conv.finish()


def statement_commands(conv: Conversation, inbound: Inbound) -> bool:
    """OPINIONS (AVIS, OPINIONES) and PROPOSE <text>, for anyone sent statements."""
    if inbound.button is not None or not conv.state.data.get(ASKED):
        return False
    if fold(inbound.text) in words.AGAIN_WORDS:
        conv.goto(NAME)
        return True
    proposal = words.proposal_of(inbound.text)
    if proposal is None:
        return False
    _ = conv._
    if not proposal or len(proposal) > MAX_LENGTH:
        conv.say(
            _(
                "Write PROPOSE followed by your statement, in one short sentence of at most "
                "{n} characters.",
                n=MAX_LENGTH,
            ),
            kind=KIND,
        )
        return True
    # The text leaves the state in the service's handler, before the state is written.
    conv.state.data[PROPOSED] = proposal
    conv.emit(events.STATEMENT_PROPOSED, chars=len(proposal))
    conv.say(
        _("Thank you. The organisers will read your statement before it is sent to the others."),
        kind=KIND,
    )
    if conv.state.step is not None:
        conv.repeat()
    return True


def answers_statement(conv: Conversation, inbound: Inbound) -> bool:
    """Whether a typed message answers the statement this person was last asked, or is
    OPINIONS / PROPOSE: their table's prompt, if one is open, lets it through."""
    if inbound.button is not None or not conv.state.data.get(ASKED):
        return False
    if fold(inbound.text) in words.AGAIN_WORDS or words.proposal_of(inbound.text) is not None:
        return True
    step = conv.state.step or ""
    return (
        conv.state.flow == NAME
        and step.startswith("s:")
        and words.answer_of(inbound.text) is not None
    )
