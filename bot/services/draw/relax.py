"""Why quotas cannot be met, said once and all together, with the smallest change that
makes the draw possible.

The problems a person can see at a glance come first: a category whose minimums add up to
more than the panel (or whose maximums to less), a value with fewer respondents than its
minimum (named by participant id). Then the smallest relaxation: an integer program over
kinds of people (a count per kind, as in leximin.py) with, per quota, how far its min is
lowered and its max raised, within the organisers' flex limits if they gave any, minimising
the total. The relaxed quotas are solved again before they are suggested.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.services.draw import kinds as kinds_of
from bot.services.draw import leximin
from bot.services.draw.rules import DrawError

SHOWN_IDS = 5


@dataclass(frozen=True)
class Change:
    category: str
    value: str
    low: tuple[int, int]  # (asked, suggested)
    high: tuple[int, int]

    def __str__(self) -> str:
        parts = []
        if self.low[0] != self.low[1]:
            parts.append(f"min {self.low[0]} -> {self.low[1]}")
        if self.high[0] != self.high[1]:
            parts.append(f"max {self.high[0]} -> {self.high[1]}")
        return f"{self.category} = {self.value}: {', '.join(parts)}"


def problems_at_a_glance(
    rows: Sequence[Mapping[str, Any]], quotas: Mapping[str, Mapping[str, Sequence[int]]], size: int
) -> list[str]:
    found = []
    for category, values in quotas.items():
        lows = sum(int(b[0]) for b in values.values())
        highs = sum(int(b[1]) for b in values.values())
        if lows > size:
            found.append(
                f"{category}: the minimums add up to {lows}, more than the panel of {size}"
            )
        if highs < size:
            found.append(
                f"{category}: the maximums add up to {highs}, less than the panel of {size}"
            )
        for value, (low, _) in values.items():
            ids = [r["id"] for r in rows if r["attributes"].get(category) == value]
            if len(ids) < int(low):
                named = ", ".join(ids[:SHOWN_IDS]) + (" ..." if len(ids) > SHOWN_IDS else "")
                found.append(
                    f"{category} = {value}: at least {low} wanted, but only {len(ids)} "
                    f"respondent{'s' if len(ids) != 1 else ''}" + (f" ({named})" if ids else "")
                )
    return found


def feasible(kinds: kinds_of.Kinds, quotas: Mapping[str, Any], size: int) -> bool:
    try:
        leximin.PanelSpace(kinds, dict(quotas), size).best(np.zeros(len(kinds)))
    except leximin.Infeasible:
        return False
    return True


def smallest_relaxation(
    kinds: kinds_of.Kinds,
    quotas: Mapping[str, Mapping[str, Sequence[int]]],
    size: int,
    flex: Mapping[str, Mapping[str, Sequence[int]]] | None = None,
) -> list[Change] | None:
    """The quota changes of least total size that let a panel be drawn (None: none does,
    within the flex limits: too few respondents or households for the panel)."""
    import highspy

    flex = flex or {}
    model = highspy.Highs()
    model.setOptionValue("output_flag", False)
    model.setOptionValue("random_seed", 0)
    count = len(kinds)
    sizes = np.array([k.size for k in kinds.kinds], float)
    model.addVars(count, np.zeros(count), sizes)
    slots: list[tuple[str, str, int, int, int, int]] = []  # category, value, low, high, vars
    for position, category in enumerate(kinds.categories):
        for value, (low, high) in quotas[category].items():
            outer = flex.get(category, {}).get(value, (0, size))
            lower, upper = len(slots) * 2 + count, len(slots) * 2 + count + 1
            model.addVar(0, max(0, int(low) - int(outer[0])))  # how far min is lowered
            model.addVar(0, max(0, int(outer[1]) - int(high)))  # how far max is raised
            members = [i for i, k in enumerate(kinds.kinds) if k.values[position] == value]
            index = np.array([*members, lower, upper], np.int32)
            ones = np.ones(len(members))
            # low - lowered <= count, count - raised <= high
            model.addRow(int(low), model.inf, len(index), index, np.array([*ones, 1.0, 0.0]))
            model.addRow(-model.inf, int(high), len(index), index, np.array([*ones, 0.0, -1.0]))
            slots.append((category, value, int(low), int(high), lower, upper))
    model.addRow(size, size, count, np.arange(count, dtype=np.int32), np.ones(count))
    for members in kinds.households:
        model.addRow(0, 1, len(members), np.array(members, np.int32), np.ones(len(members)))
    total = model.getNumCol()
    model.changeColsIntegrality(
        total, np.arange(total, dtype=np.int32), np.array([highspy.HighsVarType.kInteger] * total)
    )
    costs = np.concatenate([np.zeros(count), np.ones(total - count)])
    model.changeColsCost(total, np.arange(total, dtype=np.int32), costs)
    model.run()
    if model.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    solution = np.rint(model.getSolution().col_value).astype(int)
    changes = []
    for category, value, low, high, lower, upper in slots:
        if solution[lower] or solution[upper]:
            changes.append(
                Change(
                    category, value, (low, low - solution[lower]), (high, high + solution[upper])
                )
            )
    return changes


def relaxed(quotas: Mapping[str, Any], changes: Sequence[Change]) -> dict[str, Any]:
    new = {c: {v: list(b) for v, b in values.items()} for c, values in quotas.items()}
    for change in changes:
        new[change.category][change.value] = [change.low[1], change.high[1]]
    return new


def conflict(kinds: kinds_of.Kinds, quotas: Mapping[str, Any], size: int) -> list[str]:
    """A smallest set of categories that cannot be met together: drop one at a time while
    the rest stays infeasible."""
    kept = list(quotas)
    for category in list(quotas):
        trial = [c for c in kept if c != category]
        if trial and not feasible(_project(kinds, trial), {c: quotas[c] for c in trial}, size):
            kept = trial
    return kept


def _project(kinds: kinds_of.Kinds, categories: Sequence[str]) -> kinds_of.Kinds:
    """The same kinds with only some categories' values (kinds may now repeat: harmless)."""
    positions = [kinds.categories.index(c) for c in categories]
    projected = tuple(
        kinds_of.Kind(tuple(k.values[p] for p in positions), k.members, k.household)
        for k in kinds.kinds
    )
    return kinds_of.Kinds(tuple(categories), projected, kinds.households)


def explain(
    rows: Sequence[Mapping[str, Any]],
    quotas: Mapping[str, Mapping[str, Sequence[int]]],
    size: int,
    households: bool,
    flex: Mapping[str, Any] | None = None,
) -> DrawError:
    """One message with every problem and the smallest change that works (checked)."""
    kinds = kinds_of.group(rows, list(quotas), households)
    lines = problems_at_a_glance(rows, quotas, size)
    named = {line.split(":")[0].split(" = ")[0] for line in lines}
    changes = smallest_relaxation(kinds, quotas, size, flex)
    if changes is None or not changes:
        if households and not feasible(kinds, {c: {} for c in quotas}, size):
            lines.append(
                "one per household: too few households among the respondents for the panel"
            )
        elif flex:
            lines.append("no change within the flex limits (min_flex, max_flex) makes it possible")
        advice = ""
    else:
        if not feasible(kinds, relaxed(quotas, changes), size):  # checked, never guessed
            raise DrawError("The relaxed quotas failed their check; nothing suggested.")
        total = sum(c.low[0] - c.low[1] + c.high[1] - c.high[0] for c in changes)
        advice = f"\nSmallest change that makes the draw possible (checked; {total} in all):" + (
            "".join(f"\n  - {change}" for change in changes)
        )
        named |= {c.category for c in changes}
        if not lines:  # nothing visible at a glance: say which categories clash
            categories = conflict(kinds, quotas, size)
            named |= set(categories)
            lines.append("categories in conflict: " + ", ".join(categories))
    message = "The quotas cannot all be met with these respondents" + (
        ":" + "".join(f"\n  - {line}" for line in lines) if lines else "."
    )
    return DrawError(message + advice, sorted(named & set(quotas)), kind="infeasible")
