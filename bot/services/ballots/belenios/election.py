"""What a ballot is in Belenios's terms: its one question (the answers in the declared
order, in the default language), a vote as Belenios's plaintext (an array of 0/1 per
answer), and Belenios's counts read back into the counting package's tally. Pure.

yes_no and single choice are a question with exactly one answer (min 1, max 1); approval
allows 1 to max_choices answers. Ranking, scale and majority judgment need Belenios's
non-homomorphic questions and its mixnets: not supported here, refused at loading.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.services.ballots import voting  # (voting imports this package: read at call time)
from bot.services.ballots.counting import Tally, count
from flows.ballot_spec import BELENIOS_METHODS

SUPPORTED = BELENIOS_METHODS
GROUP = "BELENIOS-2048"


def _text(texts: dict[str, str], language: str) -> str:
    return texts.get(language) or texts.get("en") or next(iter(texts.values()), "")


def template(ballot_id: str, definition: dict[str, Any], language: str) -> dict[str, Any]:
    """The election template `belenios-tool setup make-election` reads."""
    keys = voting.count_options(ballot_id, definition)
    labels = {o["key"]: _text(o["label"], language) for o in definition.get("options", [])}
    labels = {"yes": "Yes", "no": "No", **labels}
    maximum = definition.get("max_choices") or len(keys)
    return {
        "name": _text(definition["title"], language),
        "description": f"concorder ballot {ballot_id} ({definition['method']})",
        "questions": [
            {
                "question": _text(definition["question"], language),
                "answers": [labels[k] for k in keys],
                "min": 1,
                "max": maximum if definition["method"] == "approval" else 1,
            }
        ],
    }


def plaintext(ballot_id: str, definition: dict[str, Any], vote: Any) -> list[list[int]]:
    """A vote (an option key, or a list of keys for approval) as Belenios's choices."""
    keys = voting.count_options(ballot_id, definition)
    chosen = {vote} if isinstance(vote, str) else set(vote)
    if not chosen or not chosen <= set(keys):
        raise ValueError(f"not a vote in {ballot_id}: {vote!r}")
    return [[1 if k in chosen else 0 for k in keys]]


def tally_of(
    ballot_id: str, definition: dict[str, Any], counts: Sequence[int], ballots: int
) -> Tally:
    """The counting package's tally from Belenios's per-answer counts and the number of
    ballots counted. These methods' tallies depend on nothing else, so ballots with the
    same counts are rebuilt and counted by the same code as any other ballot."""
    keys = voting.count_options(ballot_id, definition)
    if len(counts) != len(keys):
        raise ValueError(f"{len(counts)} counts for {len(keys)} answers")
    if definition["method"] == "approval":
        votes: list[Any] = _approval_sets(keys, counts, ballots)
    else:
        if sum(counts) != ballots:
            raise ValueError(f"{sum(counts)} votes in the counts, {ballots} ballots counted")
        votes = [k for k, n in zip(keys, counts, strict=True) for _ in range(n)]
    return count(definition["method"], keys, votes, **voting.count_params(definition))


def _approval_sets(keys: list[str], counts: Sequence[int], ballots: int) -> list[list[str]]:
    """`ballots` sets with these per-option counts: the marks dealt round the ballots in
    turn, so no ballot gets an option twice (each count is at most `ballots`) and each
    gets as many marks as any other, give or take one."""
    if any(n > ballots for n in counts) or sum(counts) < ballots:
        raise ValueError(f"counts {list(counts)} cannot come from {ballots} ballots")
    sets: list[list[str]] = [[] for _ in range(ballots)]
    position = 0
    for key, n in zip(keys, counts, strict=True):
        for _ in range(n):
            sets[position % ballots].append(key)
            position += 1
    return sets
