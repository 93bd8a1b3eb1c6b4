"""Counting a ballot: pure functions, no I/O, no clock, no database.

    count(method, options, votes, **params) -> Tally
    validate(method, options, vote, **params)   # raises InvalidVote(reason) before storing

Votes, by method (None, or an empty value, is a blank ballot: an abstention):
- yes_no, single: one option key. Params: majority="simple" | "absolute" | "plurality" |
  a fraction such as Fraction(2, 3) or "2/3"; base="cast" | "ballots"; electorate=N
  (see plurality.py for what each means).
- approval: a frozenset (or list) of option keys. Params: max_choices=k.
- ranking: a tuple (or list) of option keys, most preferred first, possibly partial. Schulze.
- scale: an int level 1..levels for the one statement in `options`. Params: levels=5,
  threshold_level=4, threshold_share=Fraction(4, 5) (0.8 is read as 4/5).
- majority_judgment: a dict option -> grade index, 0 the WORST grade (an option left out
  gets 0). Params: grades=names worst first, or a count. Grades kept best first must be
  turned round before counting (index len(grades) - 1 - i, names reversed).

Tally.ballots counts the non-blank valid ballots, Tally.abstentions the blank ones.
Tally.details is JSON-serialisable; exact shares are strings such as "2/3" beside floats
for display. A bad vote raises InvalidVote; a bad parameter raises ValueError.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from . import approval, judgment, plurality, scale, schulze
from .common import (
    DUPLICATE_OPTION,
    OUT_OF_RANGE,
    TOO_MANY_CHOICES,
    UNKNOWN_OPTION,
    WRONG_SHAPE,
    InvalidVote,
    Tally,
    check_options,
)

METHODS = ("yes_no", "single", "approval", "ranking", "scale", "majority_judgment")

REASONS = (UNKNOWN_OPTION, DUPLICATE_OPTION, TOO_MANY_CHOICES, OUT_OF_RANGE, WRONG_SHAPE)

__all__ = ["METHODS", "REASONS", "InvalidVote", "Tally", "count", "validate"]


def _known(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown counting method {method!r}; one of {', '.join(METHODS)}")


def validate(method: str, options: Sequence[str], vote: Any, **params: Any) -> None:
    """Raise InvalidVote when `vote` is not one `count` would accept with these params."""
    _known(method)
    keys = check_options(options)
    if method in ("yes_no", "single"):
        plurality.validate(keys, vote)
    elif method == "approval":
        approval.validate(keys, vote, params.get("max_choices"))
    elif method == "ranking":
        schulze.validate(keys, vote)
    elif method == "scale":
        scale.validate(keys, vote, params.get("levels", 5))
    else:
        judgment.validate(keys, vote, params.get("grades", judgment.DEFAULT_GRADES))


def count(method: str, options: Sequence[str], votes: Iterable[Any], **params: Any) -> Tally:
    _known(method)
    keys = check_options(options)
    if method in ("yes_no", "single"):
        return plurality.count(method, keys, votes, **params)
    if method == "approval":
        return approval.count(method, keys, votes, **params)
    if method == "ranking":
        return schulze.count(method, keys, votes, **params)
    if method == "scale":
        return scale.count(method, keys, votes, **params)
    return judgment.count(method, keys, votes, **params)
