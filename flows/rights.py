"""What a person may ask at any stage, whatever conversation they are in: to withdraw
(WITHDRAW), and for a copy of the data held about them (MYDATA).

Both are engine commands (flows/catalog.py), so they are heard before any flow: a
confirmed panel member has no question open, and a flow would only tell them where they
stand. A reply that is one of the offered options stays an answer to its question.
Someone the draw gave a place is asked before WITHDRAW takes it (flows/leaving.py).
The organisers are told by the service (bot/services/withdrawals.py and
bot/services/data_requests.py), from the events these emit.
"""

from __future__ import annotations

import calendar
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flows import events
from flows.engine import Answer, Conversation, Flow, match_choice
from flows.invitation import WITHDRAW_WORDS, recruitment_facts, withdraw
from flows.leaving import ask_first, holds_a_place
from flows.model import Inbound
from flows.text import fold

# The words that ask for a copy of one's data, in every shipped language. Registration
# options may not use them as keys (flows/assembly.py RESERVED_KEYS).
MYDATA_WORDS = {"mydata", "mesdonnees", "misdatos"}


def one_month_after(moment: datetime) -> datetime:
    """The same day of the next month (its last day when it has fewer): GDPR Art. 12(3)
    gives one month to answer an access request."""
    year, month = moment.year + moment.month // 12, moment.month % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _local(conv: Conversation, moment: datetime) -> datetime:
    try:
        return moment.astimezone(ZoneInfo(recruitment_facts(conv).timezone or "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        return moment


def data_requested(conv: Conversation) -> None:
    """Acknowledge an access request; the organisers are told from the event."""
    due = one_month_after(_local(conv, conv.ctx.now))
    conv.emit(events.DATA_REQUESTED, channel=conv.ctx.channel)
    conv.say(
        conv._(
            "We have received your request for a copy of the data we hold about you. "
            "The organisers will answer you within one month, by {date} at the latest, "
            "and will contact you here to agree how to send it to you safely.",
            date=conv.t.date(due, "long"),
        )
    )


def data_requested_after_stop(conv: Conversation, inbound: Inbound) -> bool:
    """MYDATA from someone who replied STOP: the organisers hear of it (the request stands
    in law), the person hears nothing (nothing is sent after STOP)."""
    if inbound.button is not None or fold(inbound.text) not in MYDATA_WORDS:
        return False
    conv.emit(events.DATA_REQUESTED, channel=conv.ctx.channel, opted_out=True)
    return True


def in_recruitment(conv: Conversation) -> bool:
    """Invited by this assembly (whatever happened since): WITHDRAW means something."""
    return recruitment_facts(conv).invitation_status is not None


def person_requests(conv: Conversation, inbound: Inbound) -> bool:
    """WITHDRAW and MYDATA, at any stage; anything else is left to the flows."""
    if inbound.button is not None:
        return False
    word = fold(inbound.text)
    if word not in WITHDRAW_WORDS and word not in MYDATA_WORDS:
        return False
    choice, _stale = match_choice(conv.state, inbound)
    if choice is not None:  # an option of the question asked: an answer, not a request
        return False
    if word in MYDATA_WORDS:
        data_requested(conv)
        return True
    if not in_recruitment(conv):
        nothing_to_withdraw_from(conv)
        return True
    if holds_a_place(conv):
        ask_first(conv)  # a place is at stake: one stray word must not give it up
        return True
    withdraw(conv)
    return True


def nothing_to_withdraw_from(conv: Conversation) -> None:
    """WITHDRAW from someone never invited: say so plainly, and how to stop messages."""
    conv.say(
        conv._(
            "You are not taking part in an assembly, so there is nothing to withdraw from. "
            "Reply STOP to get no more messages."
        )
    )
    conv.repeat()


class Withdrawal(Flow):
    """An organiser's `concorder withdraw`: the person is told, as if they had asked."""

    name = "withdrawal"

    def enter(self, conv: Conversation) -> None:
        withdraw(conv, by="organiser")

    def ask(self, conv: Conversation, step: str) -> None:
        withdraw(conv, by="organiser")

    def reply(self, conv: Conversation, step: str, answer: Answer) -> None:
        withdraw(conv, by="organiser")
