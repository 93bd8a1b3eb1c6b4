"""The uniform lottery of "Fair Sortition Made Transparent" (Flanigan, Kehne and Procaccia,
NeurIPS 2021): the distribution over panels rounded to m equally likely panels, which the
organisers publish before a public random draw picks one number between 0 and m - 1.

Rounding (the paper's ILP rounding): each panel of kinds with probability w is first given
floor(m w) of the m places; the places left go to panels with a fractional remainder, one
each at most, chosen by an integer program that minimises the largest change of any kind's
selection probability. The panels of kinds then become panels of people: in each kind, its
members are taken in a seeded random order, cycling, so over the m panels everyone of a
kind is on the same number of panels, give or take one (the change that adds is at most
1/m). What the rounding costs in fairness is reported as the largest change of any
person's probability, and the lowest probability before and after.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.services.draw.kinds import Kinds, person_probabilities
from bot.services.draw.leximin import Distribution, _highs


@dataclass
class Lottery:
    panels: list[list[str]]  # m panels of people, each sorted
    probabilities: dict[str, float]  # share of the m panels each person is on
    max_change: float  # largest |lottery probability - distribution probability|
    lowest_before: float
    lowest_after: float


def round_distribution(dist: Distribution, kinds: Kinds, m: int, rng: random.Random) -> Lottery:
    sizes = np.array([k.size for k in kinds.kinds], float)
    shares = np.array(dist.panels, float) / sizes  # panels x kinds
    targets = np.array(dist.weights) * m
    copies = np.floor(targets + 1e-9).astype(int)
    remainders = targets - copies
    left = m - int(copies.sum())
    if left > 0:
        copies += _round_up(shares, remainders, left)
    panels = _people(kinds, dist.panels, copies, rng)
    rng.shuffle(panels)
    on_panels: dict[str, int] = {}
    for panel in panels:
        for pid in panel:
            on_panels[pid] = on_panels.get(pid, 0) + 1
    before = person_probabilities(kinds, dist.kind_probabilities)
    after = {pid: on_panels.get(pid, 0) / m for pid in before}
    return Lottery(
        panels=panels,
        probabilities=after,
        max_change=max(abs(after[pid] - before[pid]) for pid in before),
        lowest_before=min(before.values()),
        lowest_after=min(after.values()),
    )


def _round_up(shares: np.ndarray, remainders: np.ndarray, left: int) -> np.ndarray:
    """Which panels get one more place: exactly `left` of those with a remainder, keeping
    the largest change of any kind's expected share of the m places smallest."""
    import highspy

    candidates = [i for i, r in enumerate(remainders) if r > 1e-9]
    extra = np.zeros(len(remainders), int)
    if len(candidates) <= left:
        extra[candidates] = 1
        return extra
    model = _highs()
    model.setOptionValue("time_limit", 20.0)
    model.setOptionValue("mip_rel_gap", 1e-6)
    count = len(candidates)
    model.addVars(count, np.zeros(count), np.ones(count))
    model.changeColsIntegrality(
        count, np.arange(count, dtype=np.int32), np.array([highspy.HighsVarType.kInteger] * count)
    )
    model.addVar(0.0, model.inf)  # t: the largest change, minimised
    model.changeColCost(count, 1.0)
    model.addRow(left, left, count, np.arange(count, dtype=np.int32), np.ones(count))
    for kind in range(shares.shape[1]):
        column = shares[candidates, kind]
        used = [j for j in range(count) if column[j] > 0]
        if not used:
            continue
        expected = float(np.dot(column, remainders[candidates]))
        index = np.array([*used, count], np.int32)
        model.addRow(-model.inf, expected, len(used) + 1, index, np.array([*column[used], -1.0]))
        model.addRow(expected, model.inf, len(used) + 1, index, np.array([*column[used], 1.0]))
    model.run()
    solution = model.getSolution().col_value if model.getInfo().primal_solution_status else None
    if solution is None:  # no solution in time: the largest remainders
        chosen = sorted(candidates, key=lambda i: (-remainders[i], i))[:left]
    else:
        ranked = sorted(range(count), key=lambda j: (-solution[j], j))
        chosen = [candidates[j] for j in ranked[:left]]
    extra[chosen] = 1
    return extra


def _people(
    kinds: Kinds, panels: Sequence[tuple[int, ...]], copies: np.ndarray, rng: random.Random
) -> list[list[str]]:
    orders = []
    for kind in kinds.kinds:
        order = list(kind.members)
        rng.shuffle(order)
        orders.append(order)
    cursor = [0] * len(kinds)
    result = []
    for panel, times in zip(panels, copies, strict=True):
        for _ in range(int(times)):
            chosen = []
            for k, count in enumerate(panel):
                order = orders[k]
                for step in range(count):  # count <= kind size: never the same person twice
                    chosen.append(order[(cursor[k] + step) % len(order)])
                cursor[k] = (cursor[k] + count) % len(order)
            result.append(sorted(chosen))
    return result
