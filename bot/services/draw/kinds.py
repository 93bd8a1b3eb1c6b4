"""People grouped into kinds: respondents with the same answer in every quota category are
interchangeable for every algorithm here, so the solvers work on counts per kind.

With one per household, someone who shares a household with another respondent is not
interchangeable (choosing them rules out their housemates): each such person is a kind of
their own, and the household becomes a constraint (at most one of its kinds on a panel).

A panel of kinds is a count per kind; a person's selection probability is their kind's
expected count divided by the kind's size. Mapping a panel of kinds back to people is a
uniform, seeded choice within each kind (`people_for`).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Kind:
    values: tuple[str, ...]  # one answer per quota category, in the quotas' order
    members: tuple[str, ...]  # participant ids, sorted
    household: str | None = None  # set for someone sharing a household (one per household)

    @property
    def size(self) -> int:
        return len(self.members)


@dataclass(frozen=True)
class Kinds:
    categories: tuple[str, ...]
    kinds: tuple[Kind, ...]
    households: tuple[tuple[int, ...], ...]  # kind indices of which at most one is chosen

    def __len__(self) -> int:
        return len(self.kinds)

    @property
    def people(self) -> int:
        return sum(k.size for k in self.kinds)

    def of_person(self) -> dict[str, int]:
        return {pid: i for i, kind in enumerate(self.kinds) for pid in kind.members}


def group(rows: Sequence[Mapping[str, Any]], categories: Sequence[str], households: bool) -> Kinds:
    """Kinds from canonical respondent rows ({"id", "household", "attributes"}), in a fixed
    order (by answers, then by id), so the same input always gives the same kinds."""
    shared: dict[str, list[str]] = {}
    if households:
        for row in rows:
            if row["household"]:
                shared.setdefault(row["household"], []).append(row["id"])
        shared = {h: ids for h, ids in shared.items() if len(ids) > 1}
    grouped: dict[tuple[str, ...], list[str]] = {}
    alone: list[Kind] = []
    for row in rows:
        values = tuple(str(row["attributes"].get(c) or "") for c in categories)
        if row["household"] in shared:
            alone.append(Kind(values, (row["id"],), row["household"]))
        else:
            grouped.setdefault(values, []).append(row["id"])
    kinds = [Kind(v, tuple(sorted(ids))) for v, ids in grouped.items()] + alone
    kinds.sort(key=lambda k: (k.values, k.members))
    index: dict[str, list[int]] = {}
    for i, kind in enumerate(kinds):
        if kind.household is not None:
            index.setdefault(kind.household, []).append(i)
    return Kinds(tuple(categories), tuple(kinds), tuple(tuple(v) for _, v in sorted(index.items())))


def people_for(kinds: Kinds, counts: Sequence[int], rng: random.Random) -> list[str]:
    """A panel of people for a panel of kinds: in each kind, a uniform choice of that many."""
    chosen: list[str] = []
    for kind, count in zip(kinds.kinds, counts, strict=True):
        if count:
            chosen += rng.sample(kind.members, int(count))
    return sorted(chosen)


def person_probabilities(kinds: Kinds, kind_probabilities: Sequence[float]) -> dict[str, float]:
    return {
        pid: float(p)
        for kind, p in zip(kinds.kinds, kind_probabilities, strict=True)
        for pid in kind.members
    }
