"""Ballots: definitions, voting inside a turn, opening and closing, results and receipts.

`register` adds the vote to every inbound turn (voting.py); `install` opens and closes
ballots on time. The counting methods are pure, in `counting/`.
"""

from bot.services.ballots.opening import open_ballot
from bot.services.ballots.records import BallotProblem, close_ballot, create
from bot.services.ballots.timing import install
from bot.services.ballots.voting import register

__all__ = ["BallotProblem", "close_ballot", "create", "install", "open_ballot", "register"]
