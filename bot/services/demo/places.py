"""Making room for a visitor who was not drawn, with every quota still met: who declines,
and who is called up with the visitor. Pure: it reads the draw's people and quotas only.

One member the visitor can replace is the usual case. A panel drawn at its quotas' edges
may have none (every swap takes some category over its maximum or under its minimum); then
two members decline and the visitor comes in with one other registrant, and so on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

from bot.services.draw.rules import Quotas

MOST_LEAVING = 3  # more than this and the demo's panel would be a different panel


def fits(quotas: Quotas, attributes: Sequence[Mapping[str, Any]]) -> bool:
    """Whether a panel with these people's answers meets every quota."""
    for category, values in quotas.items():
        for value, bounds in values.items():
            count = sum(1 for a in attributes if a.get(category) == value)
            if not bounds.min <= count <= bounds.max:
                return False
    return True


def make_room(
    people: Mapping[str, Mapping[str, Any]],
    quotas: Quotas,
    panel: Sequence[str],
    visitor: str,
    others: Sequence[str],
) -> tuple[list[str], list[str]]:
    """(who declines, who is called up beside the visitor): the fewest members leaving,
    the most alike to the visitor first; `people` maps each id to its answers, `others`
    are the registrants not drawn who may fill the remaining places. ([], []) if even
    MOST_LEAVING members leaving cannot make room."""
    mine = people[visitor]

    def alike(pid: str) -> int:
        return sum(people[pid].get(c) == mine.get(c) for c in quotas)

    members = sorted(panel, key=lambda pid: (-alike(pid), pid))
    for count in range(1, MOST_LEAVING + 1):
        for leaving in combinations(members, count):
            staying = [people[p] for p in panel if p not in leaving] + [mine]
            joining = fill(people, quotas, staying, others, count - 1)
            if joining is not None:
                return list(leaving), joining
    return [], []


def fill(
    people: Mapping[str, Mapping[str, Any]],
    quotas: Quotas,
    staying: Sequence[Mapping[str, Any]],
    others: Sequence[str],
    places: int,
) -> list[str] | None:
    """`places` of `others` who with `staying` meet every quota (in `others`' order), or
    None if no such choice exists."""
    for joining in combinations(others, places):
        if fits(quotas, [*staying, *(people[p] for p in joining)]):
            return list(joining)
    return None
