"""Synthesis: the opinion map's statements (asked, answered inside a turn, added, approved
and sent by the organisers), the map itself (PCA, k-means, representative statements,
consensus), Pol.is's export layout, and the themes of what the small groups wrote.

`register` adds the answers and proposals to every inbound turn (voting.py). The analysis
modules are pure; `conversation.py` and `contributions.py` read the database for them.
"""

from bot.services.synthesis.records import StatementProblem
from bot.services.synthesis.voting import register

__all__ = ["StatementProblem", "register"]
