"""Every flow and command the service knows, in one visible list."""

from __future__ import annotations

from flows.ballot import Ballot, vote_command
from flows.briefing import calendar_replies
from flows.confirmation import Confirmation, Outcome
from flows.consent import Consent
from flows.deliberation import after_the_close, member_words
from flows.engine import Engine
from flows.facilitation import facilitator_commands
from flows.invitation import Invitation
from flows.leaving import Leaving, withdrawal_answer
from flows.organiser import organiser_commands
from flows.poll import Poll
from flows.registration import Registration
from flows.rights import Withdrawal, data_requested_after_stop, person_requests
from flows.statements import Statements, statement_commands
from flows.welcome import Welcome


def build_engine() -> Engine:
    """The service's engine. Commands are checked in this order, so a panel member's
    calendar reply (TIME, MORE, READ, its buttons) comes before the organiser commands;
    WITHDRAW and MYDATA are heard at every stage, before any flow; MYDATA even after STOP.
    The answer to "do you really want to withdraw?" comes first of all, even at a table.
    While a prompt is open at a member's table, what they write is for the table
    (member_words lets WITHDRAW, MYDATA and an answer to the ballot they were asked
    through); just after it closed, a message no other command takes is told it went
    nowhere."""
    return Engine(
        flows=[
            Welcome(),
            Invitation(),
            Consent(),
            Registration(),
            Confirmation(),
            Outcome(),
            Withdrawal(),
            Leaving(),
            Ballot(),
            Poll(),
            Statements(),
        ],
        commands=[
            withdrawal_answer,
            member_words,
            calendar_replies,
            person_requests,
            vote_command,
            statement_commands,
            organiser_commands,
            facilitator_commands,
            after_the_close,
        ],
        heard_after_stop=[data_requested_after_stop],
    )
