"""Ballots: definitions, voting inside a turn, opening and closing, results and receipts.

`register` adds the vote to every inbound turn (voting.py) and takes whoever withdraws
off open ballots' rolls; `install` opens and closes ballots on time; a close tells the
roll the results (announcing.py). The counting methods are pure, in `counting/`.
"""

from bot.services.ballots.opening import open_ballot
from bot.services.ballots.records import BallotProblem, close_ballot, create
from bot.services.ballots.timing import install
from bot.services.ballots.voting import register

__all__ = ["BallotProblem", "close_ballot", "create", "install", "open_ballot", "register"]
