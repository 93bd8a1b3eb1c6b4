"""Majority judgment (M. Balinski and R. Laraki, "Majority Judgment", MIT Press, 2011).

A ballot grades options: a dict option -> grade index, 0 the worst. An option a ballot
leaves out gets the worst grade (Balinski and Laraki's rule: no opinion is "Reject"); an
empty dict is a blank ballot.

- Majority grade: the lower middle grade, i.e. the highest grade that more than half of the
  ballots give or exceed.
- Ties between options with the same majority grade are broken by the majority value, the
  usual iterative rule: remove one copy of each option's majority grade and compare the
  majority grades of what remains, again and again. Options stay tied only when their grade
  distributions are identical. (The majority gauge, the "+/-" shortcut of the 2007 paper,
  is reported too; it orders most cases the same way but not all, and the majority value
  decides.)
Because the sorted grades are removed from the middle outwards, a block of neighbours,
each step takes the grade just below or just above that block: linear in the ballots.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .common import (
    OUT_OF_RANGE,
    UNKNOWN_OPTION,
    WRONG_SHAPE,
    InvalidVote,
    Tally,
    exact,
    group_by,
    share,
)

DEFAULT_GRADES = ("Reject", "Poor", "Acceptable", "Good", "Very good", "Excellent")
TIE_BREAK = "majority value: iterative removal of the majority grade (Balinski-Laraki 2011)"


def grade_names(grades: Sequence[str] | int) -> tuple[str, ...]:
    if isinstance(grades, bool):
        raise ValueError("grades must be a list of names or a count")
    if isinstance(grades, int):
        if grades < 2:
            raise ValueError(f"majority judgment needs at least 2 grades, not {grades}")
        return tuple(str(g) for g in range(grades))
    names = tuple(grades)
    if len(names) < 2:
        raise ValueError("majority judgment needs at least 2 grades")
    return names


def validate(
    options: tuple[str, ...], vote: object, grades: Sequence[str] | int = DEFAULT_GRADES
) -> None:
    if vote is None:
        return
    if not isinstance(vote, dict):
        raise InvalidVote(WRONG_SHAPE, "a mapping of option key to grade")
    top = len(grade_names(grades)) - 1
    for key, grade in vote.items():
        if key not in options:
            raise InvalidVote(UNKNOWN_OPTION, str(key))
        if not isinstance(grade, int) or isinstance(grade, bool):
            raise InvalidVote(WRONG_SHAPE, "a grade is a whole number")
        if not 0 <= grade <= top:
            raise InvalidVote(OUT_OF_RANGE, f"{grade} not in 0..{top}")


def majority_grade(dist: Sequence[int]) -> int | None:
    """The highest grade given or exceeded by more than half; None without ballots."""
    total = sum(dist)
    at_least = 0
    for grade in range(len(dist) - 1, -1, -1):
        at_least += dist[grade]
        if 2 * at_least > total:
            return grade
    return None


def majority_value(dist: Sequence[int]) -> tuple[int, ...]:
    """The grades in the order the iterative rule removes them."""
    ordered = [g for g, n in enumerate(dist) for _ in range(n)]
    n = len(ordered)
    lo = hi = (n - 1) // 2 if n else 0  # the removed block is ordered[lo:hi]
    sequence = []
    for _ in range(n):
        left = lo + (n - hi)
        if (left - 1) // 2 < lo:
            lo -= 1
            sequence.append(ordered[lo])
        else:
            sequence.append(ordered[hi])
            hi += 1
    return tuple(sequence)


def gauge(dist: Sequence[int]) -> dict[str, Any]:
    """Balinski-Laraki's majority gauge (p, alpha, q): shares strictly above and below."""
    total = sum(dist)
    alpha = majority_grade(dist)
    if alpha is None:
        return {"above": 0, "below": 0, "sign": None}
    above, below = sum(dist[alpha + 1 :]), sum(dist[:alpha])
    return {
        "above": above,
        "below": below,
        "above_share": exact(share(above, total)),
        "below_share": exact(share(below, total)),
        "sign": "+" if above > below else "-",
    }


def rank(
    options: Sequence[str], dists: dict[str, Sequence[int]]
) -> tuple[tuple[tuple[str, ...], ...], dict[str, tuple[int, ...]]]:
    """Options best first, tied ones grouped, from each option's grade distribution."""
    values = {o: majority_value(dists[o]) for o in options}
    return group_by(options, lambda o: values[o]), values


def _decisions(ranking, values) -> list[dict[str, Any]]:
    """Between each group and the next: what set them apart, and at which removal."""
    out = []
    for upper, lower in zip(ranking, ranking[1:], strict=False):
        a, b = values[upper[0]], values[lower[0]]
        step = next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)
        out.append(
            {
                "above": upper[0],
                "below": lower[0],
                "by": "majority grade" if step == 0 else "majority value",
                "removals": step,
            }
        )
    return out


def count(
    method: str,
    options: tuple[str, ...],
    votes: Iterable[object],
    grades: Sequence[str] | int = DEFAULT_GRADES,
) -> Tally:
    names = grade_names(grades)
    dists = {o: [0] * len(names) for o in options}
    ballots = blank = 0
    for vote in votes:
        validate(options, vote, names)
        if not vote:
            blank += 1
            continue
        ballots += 1
        for o in options:
            dists[o][vote.get(o, 0)] += 1  # type: ignore[union-attr]
    ranking, values = rank(options, dists)
    grade_of = {o: majority_grade(dists[o]) for o in options}
    return Tally(
        method=method,
        options=options,
        ballots=ballots,
        abstentions=blank,
        winners=ranking[0] if ballots else (),
        ranking=ranking,
        details={
            "grades": list(names),
            "distribution": {o: list(dists[o]) for o in options},
            "majority_grade": {
                o: (names[g] if g is not None else None) for o, g in grade_of.items()
            },
            "majority_grade_index": grade_of,
            "gauge": {o: gauge(dists[o]) for o in options},
            "tie_break": TIE_BREAK,
            "decided_by": _decisions(ranking, values) if ballots else [],
        },
    )
