"""Yes/no and single choice: one option per ballot, or blank.

The majority an option needs (param `majority`):
- "simple": more than half of the votes cast for an option, blanks left out (Robert's
  Rules' majority of votes cast); nobody wins when no option has it.
- "absolute": more than half of all ballots, blanks included, or of `electorate` when the
  caller gives it (a majority of the membership).
- "plurality": the most votes; all tied options win together.
- a fraction f with 1/2 < f <= 1 (Fraction, "2/3", or a decimal float such as 0.75): at
  least f of the votes cast for an option, blanks left out, or of all ballots with
  `base="ballots"`. Exact arithmetic: 2/3 of 9 is 6, and 6 passes.
The quorum is the caller's: it knows the electorate.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from fractions import Fraction

from .common import (
    UNKNOWN_OPTION,
    WRONG_SHAPE,
    InvalidVote,
    Tally,
    exact,
    fraction,
    group_by,
    share,
)


def validate(options: tuple[str, ...], vote: object) -> None:
    if vote is None:
        return
    if not isinstance(vote, str):
        raise InvalidVote(WRONG_SHAPE, "one option key or None")
    if vote not in options:
        raise InvalidVote(UNKNOWN_OPTION, vote)


def _rule(majority: object, base: str | None) -> tuple[str, Fraction, bool, str]:
    """(name, fraction, strictly more than?, base) for the majority asked."""
    if majority == "simple":
        return "simple", Fraction(1, 2), True, base or "cast"
    if majority == "absolute":
        return "absolute", Fraction(1, 2), True, base or "ballots"
    if majority == "plurality":
        return "plurality", Fraction(0), True, base or "cast"
    try:
        f = fraction(majority, "majority")  # type: ignore[arg-type]
    except ValueError:
        raise ValueError(
            f"majority must be simple, absolute, plurality or a fraction such as 2/3,"
            f" not {majority!r}"
        ) from None
    if not Fraction(1, 2) < f <= 1:
        raise ValueError(f"a supermajority is above 1/2 and at most 1, not {f}")
    return exact(f), f, False, base or "cast"


def needed(whole: int, f: Fraction, strict: bool) -> int:
    """The fewest votes that meet the rule: more than f of whole, or at least f of it."""
    if strict:
        return math.floor(f * whole) + 1
    return max(1, math.ceil(f * whole))


def count(
    method: str,
    options: tuple[str, ...],
    votes: Iterable[object],
    majority: object = "simple",
    base: str | None = None,
    electorate: int | None = None,
) -> Tally:
    if base not in (None, "cast", "ballots"):
        raise ValueError(f"base must be cast or ballots, not {base}")
    counts: Counter[str] = Counter()
    blank = 0
    for vote in votes:
        validate(options, vote)
        if vote is None:
            blank += 1
        else:
            counts[vote] += 1  # type: ignore[index]
    cast = sum(counts.values())
    name, f, strict, base_name = _rule(majority, base)
    whole = cast if base_name == "cast" else cast + blank
    if name == "absolute" and electorate is not None:
        whole = electorate
        base_name = "electorate"
    ranking = group_by(options, lambda o: counts[o])
    if name == "plurality":
        top = ranking[0] if cast else ()
        need = None
        winners = top
    else:
        need = needed(whole, f, strict)
        winners = tuple(o for o in options if counts[o] >= need)
    return Tally(
        method=method,
        options=options,
        ballots=cast,
        abstentions=blank,
        winners=winners,
        ranking=ranking,
        details={
            "counts": {o: counts[o] for o in options},
            "shares": {o: float(share(counts[o], cast)) for o in options},
            "shares_exact": {o: exact(share(counts[o], cast)) for o in options},
            "majority": name,
            "base": base_name,
            "base_votes": whole,
            "needed": need,
        },
    )
