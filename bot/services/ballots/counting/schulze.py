"""Ranking, counted by the Schulze method (M. Schulze, "A new monotonic, clone-independent,
reversal symmetric, and Condorcet-consistent single-winner election method", Social Choice
and Welfare 36, 2011).

A ballot is a tuple of option keys, most preferred first; it may stop early: the options it
leaves out rank below every option it names, and equal among themselves. An empty tuple is
a blank ballot.

- d[x][y]: ballots preferring x to y.
- A link x->y exists when d[x][y] > d[y][x]; its strength is d[x][y] ("winning votes", the
  measure of the paper's main text and of Debian's constitution).
- p[x][y]: strength of the strongest path from x to y (widest path, Floyd-Warshall).
- x beats y when p[x][y] > p[y][x]; this relation is transitive (paper, section 4.1). The
  winners are the options nobody beats; the order is built the same way: the options nobody
  left beats, then those nobody left beats once they are out, and so on. Options in one
  group are tied (none beats another).
Identical ballots are counted together first, so the work grows with the number of
distinct ballots, not of ballots.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from .common import DUPLICATE_OPTION, UNKNOWN_OPTION, WRONG_SHAPE, InvalidVote, Tally


def validate(options: tuple[str, ...], vote: object) -> None:
    if vote is None:
        return
    if not isinstance(vote, tuple | list):
        raise InvalidVote(WRONG_SHAPE, "a sequence of option keys, most preferred first")
    seen: set[str] = set()
    for key in vote:
        if key not in options:
            raise InvalidVote(UNKNOWN_OPTION, str(key))
        if key in seen:
            raise InvalidVote(DUPLICATE_OPTION, key)
        seen.add(key)


def pairwise(options: Sequence[str], ballots: Counter[tuple[str, ...]]) -> list[list[int]]:
    """d[i][j]: ballots ranking options[i] above options[j]."""
    n = len(options)
    index = {o: i for i, o in enumerate(options)}
    d = [[0] * n for _ in range(n)]
    for ballot, weight in ballots.items():
        ranked = [index[o] for o in ballot]
        named = set(ranked)
        unranked = [i for i in range(n) if i not in named]
        for pos, i in enumerate(ranked):
            row = d[i]
            for j in ranked[pos + 1 :]:
                row[j] += weight
            for j in unranked:
                row[j] += weight
    return d


def strongest_paths(d: list[list[int]]) -> list[list[int]]:
    n = len(d)
    p = [[d[i][j] if i != j and d[i][j] > d[j][i] else 0 for j in range(n)] for i in range(n)]
    for k in range(n):
        pk = p[k]
        for i in range(n):
            if i == k:
                continue
            pi, pik = p[i], p[i][k]
            if pik == 0:
                continue
            for j in range(n):
                if j != i and j != k:
                    via = pik if pik < pk[j] else pk[j]
                    if via > pi[j]:
                        pi[j] = via
    return p


def order(p: list[list[int]]) -> list[list[int]]:
    """Groups of indices, best first: each group the options no remaining option beats."""
    left = list(range(len(p)))
    groups = []
    while left:
        top = [x for x in left if not any(p[y][x] > p[x][y] for y in left if y != x)]
        groups.append(top)
        left = [x for x in left if x not in top]
    return groups


def condorcet_winner(d: list[list[int]]) -> int | None:
    n = len(d)
    for x in range(n):
        if all(d[x][y] > d[y][x] for y in range(n) if y != x):
            return x
    return None


def count(method: str, options: tuple[str, ...], votes: Iterable[object]) -> Tally:
    distinct: Counter[tuple[str, ...]] = Counter()
    blank = 0
    for vote in votes:
        validate(options, vote)
        if not vote:
            blank += 1
        else:
            distinct[tuple(vote)] += 1  # type: ignore[arg-type]
    ballots = sum(distinct.values())
    d = pairwise(options, distinct)
    p = strongest_paths(d)
    groups = order(p)
    ranking = tuple(tuple(options[i] for i in g) for g in groups)
    cw = condorcet_winner(d) if ballots else None
    return Tally(
        method=method,
        options=options,
        ballots=ballots,
        abstentions=blank,
        winners=ranking[0] if ballots else (),
        ranking=ranking,
        details={
            "rule": "schulze, winning votes",
            # Matrices as rows in the options' declared order: d[i][j] is options[i] over [j].
            "pairwise": d,
            "strongest_paths": p,
            "order": [list(g) for g in ranking],
            "condorcet_winner": options[cw] if cw is not None else None,
        },
    )
