"""Approval: each ballot approves a set of up to `max_choices` options (a frozenset, or a
list as JSON keeps it); the most approved wins (all tied options win together). An empty
set is a blank ballot."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from .common import (
    DUPLICATE_OPTION,
    TOO_MANY_CHOICES,
    UNKNOWN_OPTION,
    WRONG_SHAPE,
    InvalidVote,
    Tally,
    exact,
    group_by,
    share,
)


def validate(options: tuple[str, ...], vote: object, max_choices: int | None = None) -> None:
    if vote is None:
        return
    # A set, or a list as JSON stores one; a key twice in a list is a mistake, not 2 votes.
    if not isinstance(vote, frozenset | set | list | tuple):
        raise InvalidVote(WRONG_SHAPE, "a set of option keys")
    for key in vote:
        if key not in options:
            raise InvalidVote(UNKNOWN_OPTION, str(key))
    if len(set(vote)) != len(vote):
        raise InvalidVote(DUPLICATE_OPTION, "an option approved twice")
    if max_choices is not None and len(vote) > max_choices:
        raise InvalidVote(TOO_MANY_CHOICES, f"{len(vote)} > {max_choices}")


def count(
    method: str,
    options: tuple[str, ...],
    votes: Iterable[object],
    max_choices: int | None = None,
) -> Tally:
    if max_choices is not None and (isinstance(max_choices, bool) or max_choices < 1):
        raise ValueError(f"max_choices must be a positive whole number, not {max_choices}")
    counts: Counter[str] = Counter()
    ballots = blank = 0
    for vote in votes:
        validate(options, vote, max_choices)
        if not vote:
            blank += 1
            continue
        ballots += 1
        counts.update(frozenset(vote))  # type: ignore[arg-type]
    ranking = group_by(options, lambda o: counts[o])
    winners = ranking[0] if ballots else ()
    return Tally(
        method=method,
        options=options,
        ballots=ballots,
        abstentions=blank,
        winners=winners,
        ranking=ranking,
        details={
            "counts": {o: counts[o] for o in options},
            # Share of the non-blank ballots approving each option (they need not sum to 1).
            "shares": {o: float(share(counts[o], ballots)) for o in options},
            "shares_exact": {o: exact(share(counts[o], ballots)) for o in options},
            "max_choices": max_choices,
        },
    )
