"""Deliberative polls: the same questionnaire at set points of the calendar (waves),
answered one question at a time, paired across waves by pseudonym, and reported as the
shift between the first wave and the last.

`register` adds answering to every inbound turn (answering.py); `install` sends waves and
reminders on time (timing.py). The statistics are pure (stats.py).
"""

from bot.services.polls.answering import register
from bot.services.polls.records import PollProblem
from bot.services.polls.timing import install, tick
from bot.services.polls.waves import open_wave

__all__ = ["PollProblem", "install", "open_wave", "register", "tick"]
