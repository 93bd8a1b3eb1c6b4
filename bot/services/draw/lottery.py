"""The uniform lottery of "Fair Sortition Made Transparent" (Flanigan, Kehne and Procaccia,
NeurIPS 2021): the distribution over panels rounded to m equally likely panels, which the
organisers publish before a public random draw picks one number between 0 and m - 1.

Rounding: each panel of kinds with probability w is first given floor(m w) of the m
places; the places left go to panels with a fractional remainder, one each at most, chosen
to keep the largest change of any kind's selection probability small. The paper's ILP
rounding minimises that change exactly; an integer program is only reproducible without a
time limit, and on a real pool it may not finish in minutes, so here a deterministic local
search does it (largest remainders first, then the best swap while one helps). The change
it reaches is measured, printed and recorded, never assumed.

The panels of kinds then become panels of people: in each kind, its members are taken in
a seeded random order, cycling, so over the m panels everyone of a kind is on the same
number of panels, give or take one (the change that adds is at most 1/m). What the
rounding costs in fairness is reported as the largest change of any person's
probability, and the lowest probability before and after.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bot.services.draw.kinds import Kinds, person_probabilities
from bot.services.draw.leximin import Distribution


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
    """Which panels get one more place: exactly `left` of those with a remainder. Start
    from the largest remainders, then swap one chosen panel for one not chosen while that
    lowers the largest change of any kind's expected share of the m places. Deterministic
    (no time limit), so the same distribution always gives the same list."""
    candidates = [i for i, r in enumerate(remainders) if r > 1e-9]
    extra = np.zeros(len(remainders), int)
    if len(candidates) <= left:
        extra[candidates] = 1
        return extra
    ranked = sorted(candidates, key=lambda i: (-remainders[i], i))
    chosen, spare = ranked[:left], ranked[left:]
    expected = remainders[candidates] @ shares[candidates]
    change = shares[chosen].sum(axis=0) - expected
    for _ in range(10 * len(candidates)):
        inside, outside = shares[chosen], shares[spare]
        # Every swap at once: chosen x spare x kinds.
        after = change[None, None, :] - inside[:, None, :] + outside[None, :, :]
        worst = np.abs(after).max(axis=2)
        out, into = np.unravel_index(int(np.argmin(worst)), worst.shape)
        if worst[out, into] >= np.abs(change).max() - 1e-12:
            break
        change = after[out, into]
        chosen[out], spare[into] = spare[into], chosen[out]
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
