"""WITHDRAW from someone the draw has given a place (selected, confirmed or reserve): asked
first, since one stray word ("Retirer" about a proposal at a table) would otherwise free a
place the panel's balance depends on. Before the draw WITHDRAW stays immediate (flows/rights.py).

The question remembers where the person was. Only LEAVE (1, a yes-word, WITHDRAW again)
withdraws; STAY (2, a no-word) keeps them and asks their earlier question again; anything
else keeps them too and goes where it would have gone (their table, their question).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flows.engine import Answer, Conversation, Flow, match_choice
from flows.invitation import WITHDRAW_WORDS, assembly_name, recruitment_facts, withdraw
from flows.model import Inbound
from flows.text import fold

LEAVING = "leaving"
STEP = "confirm"
# Keys no assembly's own question is likely to use: a yes-word picks LEAVE (keywords.py
# YES_KEYS), which must not make YES mean "leave" in a poll offering "stay" or "leave".
LEAVE, STAY = "withdraw_me", "keep_place"
# In State.data while the question is open: the flow, step and question it interrupted.
BEFORE = "before_withdrawal"
HOLDS_A_PLACE = ("selected", "confirmed", "reserve")
# A "1" long after the question is more likely meant for something else (a ballot, a
# table's show of hands) than a late yes: past this, a LEAVE answer asks once more.
ANSWER_WITHIN = timedelta(hours=1)


def holds_a_place(conv: Conversation) -> bool:
    """Drawn onto the panel or its reserve list: a withdrawal would lose them a place."""
    selection = recruitment_facts(conv).selection
    return selection is not None and selection.status in HOLDS_A_PLACE


def ask_first(conv: Conversation) -> None:
    """Keep where the person was, then ask whether they really mean to leave."""
    if conv.state.flow != LEAVING:  # a second WITHDRAW is an answer, never here twice
        s = conv.state
        conv.state.data[BEFORE] = {
            "flow": s.flow,
            "step": s.step,
            "offered": s.offered,
            "prompt_id": s.prompt_id,
        }
    conv.state.data[BEFORE]["asked_at"] = conv.ctx.now.isoformat()
    conv.state.flow = LEAVING
    Leaving().ask(conv, STEP)


def _stale(conv: Conversation) -> bool:
    """Asked longer ago than ANSWER_WITHIN (or at an unknown time)."""
    asked_at = (conv.state.data.get(BEFORE) or {}).get("asked_at")
    if asked_at is None:
        return True
    return conv.ctx.now - datetime.fromisoformat(asked_at) > ANSWER_WITHIN


def _put_back(conv: Conversation) -> bool:
    """Return to where the person was; False when nothing was kept (already there)."""
    before = conv.state.data.pop(BEFORE, None)
    if before is None:
        return False
    s = conv.state
    s.flow, s.step, s.offered = before["flow"], before["step"], before["offered"]
    s.prompt_id = before["prompt_id"]
    return True


def _choice(conv: Conversation, inbound: Inbound) -> str | None:
    choice, _stale = match_choice(conv.state, inbound)
    if choice is None and inbound.button is None and fold(inbound.text) in WITHDRAW_WORDS:
        return LEAVE  # WITHDRAW again: they meant it
    return choice


def withdrawal_answer(conv: Conversation, inbound: Inbound) -> bool:
    """A command, checked first: the answer to the question, or anything else, which
    takes the person back where they were and goes on there (False)."""
    if conv.state.flow != LEAVING:
        conv.state.data.pop(BEFORE, None)  # another flow has begun since: nothing pending
        return False
    choice = _choice(conv, inbound)
    if choice == LEAVE and _stale(conv):
        conv.say(conv._("That question was asked a while ago, so here it is again."))
        ask_first(conv)
        return True
    if choice == LEAVE:
        conv.state.data.pop(BEFORE, None)
        withdraw(conv)
        return True
    returned = _put_back(conv)
    if choice == STAY:
        stay(conv)
        return True
    if not returned:  # no record of before: the person's default flow takes it
        conv.finish()
    return False


def stay(conv: Conversation) -> None:
    conv.say(
        conv._(
            "Good: nothing has changed, you are still taking part in {assembly}.",
            assembly=assembly_name(conv),
        )
    )
    if conv.state.step is not None:
        conv.repeat()


class Leaving(Flow):
    """The question itself; its answers are taken by `withdrawal_answer` first."""

    name = LEAVING

    def enter(self, conv: Conversation) -> None:
        self.ask(conv, STEP)

    def ask(self, conv: Conversation, step: str) -> None:
        _ = conv._
        name = assembly_name(conv)
        selection = recruitment_facts(conv).selection
        if selection is not None and selection.status == "reserve":
            text = _(
                "Do you want to withdraw from {assembly}? You would leave the reserve list "
                "and we would delete your details. This cannot be undone.",
                assembly=name,
            )
        else:
            text = _(
                "Do you want to withdraw from {assembly}? Your place on the panel would go "
                "to someone else and we would delete your details. This cannot be undone.",
                assembly=name,
            )
        conv.ask(
            STEP,
            text,
            conv.choices((LEAVE, _("Yes, withdraw me")), (STAY, _("No, I stay"))),
        )

    def reply(self, conv: Conversation, step: str, answer: Answer) -> None:
        # Reached only if the command did not run first: the same rules.
        if answer.choice == LEAVE and _stale(conv):
            conv.say(conv._("That question was asked a while ago, so here it is again."))
            ask_first(conv)
        elif answer.choice == LEAVE:
            conv.state.data.pop(BEFORE, None)
            withdraw(conv)
        else:
            _put_back(conv)
            stay(conv)
