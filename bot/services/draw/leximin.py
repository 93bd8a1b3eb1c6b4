"""Maximin and leximin over kinds of people, on the open HiGHS solver (through SciPy).

Leximin (Flanigan, Goelz, Gupta, Hennig and Procaccia, "Fair algorithms for selecting
citizens' assemblies", Nature 596, 2021): among all distributions over quota-compliant
panels, raise the lowest selection probability as far as it goes, fix the kinds that
cannot go higher, raise the lowest of the rest, and so on until every kind is fixed.
Maximin stops after the first level.

Each level is a linear program over panels, solved through its dual with column
generation: the dual has one constraint per panel, and the panel that most violates it
(the pricing problem) is an integer program over kinds (`PanelSpace.best`). When no panel
violates it, the level's value is the dual's optimum, and a kind with a positive dual
value is tight in every optimal distribution (complementary slackness): those are fixed.
A last linear program over the panels found gives the distribution itself.

Working on kinds instead of people makes every program as small as the number of kinds
(four on the published 2,000-respondent instance, a few hundred on a real pool).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bot.services.draw.kinds import Kinds
from bot.services.draw.rules import DrawError

PRICE_EPS = 1e-7  # a panel must improve the dual by more than this to be added
FIX_EPS = 1e-7  # a dual value above this marks a kind as tight
SLACK = 1e-6  # fixed probabilities are kept with this much slack, against rounding
MAX_LPS = 20_000
QUICK_GAP = 1e-2  # the quick search for improving panels
SMOOTHING = 0.9  # weight of the last search's duals in the next search
STARTS = 1  # known panels the swap search starts from, the heaviest first

Report = Callable[[dict[str, Any]], None]


class Infeasible(DrawError):
    def __init__(self) -> None:
        super().__init__("The quotas cannot all be met with these respondents.", kind="infeasible")


def _highs() -> Any:
    import highspy

    model = highspy.Highs()
    model.setOptionValue("output_flag", False)
    model.setOptionValue("random_seed", 0)
    return model


def _optimal(model: Any) -> bool:
    import highspy

    return model.getModelStatus() == highspy.HighsModelStatus.kOptimal


class PanelSpace:
    """The quota-compliant panels of kinds: integer counts per kind, one integer program
    built once; each search only changes its objective."""

    def __init__(self, kinds: Kinds, quotas: dict[str, dict[str, Sequence[int]]], size: int):
        import highspy

        self.kinds, self.size = kinds, size
        self.sizes = np.array([k.size for k in kinds.kinds], float)
        count = len(self.sizes)
        self._rows: list[tuple[float, float, Sequence[int]]] = []
        self.model = model = _highs()
        model.setOptionValue("mip_improving_solution_save", True)
        model.addVars(count, np.zeros(count), self.sizes)
        everyone = np.arange(count, dtype=np.int32)
        model.changeColsIntegrality(
            count, everyone, np.array([highspy.HighsVarType.kInteger] * count)
        )
        model.changeObjectiveSense(highspy.ObjSense.kMaximize)
        # Per category, the quota row of each kind's value (for the swap search).
        self.value_row = np.zeros((len(kinds.categories), count), int)
        for position, category in enumerate(kinds.categories):
            for value, (least, most) in quotas[category].items():
                members = [i for i, k in enumerate(kinds.kinds) if k.values[position] == value]
                self.value_row[position, members] = len(self._rows)
                self._row(least, most, members)
        self.quota_rows = len(self._rows)
        self.household_of = np.full(count, -1, int)
        for h, members in enumerate(kinds.households):
            self.household_of[list(members)] = h
        self._row(size, size, list(range(count)))
        for members in kinds.households:
            self._row(0, 1, list(members))
        self.solves = 0
        # The same rows as arrays, for the swap search.
        self.matrix = np.zeros((len(self._rows), count))
        for r, (_, _, members) in enumerate(self._rows):
            self.matrix[r, list(members)] = 1.0
        self.low = np.array([low for low, _, _ in self._rows], float)
        self.high = np.array([high for _, high, _ in self._rows], float)

    def _row(self, low: float, high: float, members: Sequence[int]) -> None:
        self._rows.append((low, high, members))
        self.model.addRow(
            low, high, len(members), np.array(members, np.int32), np.ones(len(members))
        )

    def best(self, weights: np.ndarray, gap: float = 1e-9) -> tuple[int, ...]:
        """The panel with the largest sum of weight x count (within a relative `gap`);
        Infeasible if there is none."""
        import highspy

        self.solves += 1
        count = len(self.sizes)
        self.model.setOptionValue("mip_rel_gap", gap)
        self.model.changeColsCost(count, np.arange(count, dtype=np.int32), np.asarray(weights))
        self.model.run()
        status = self.model.getModelStatus()
        if status == highspy.HighsModelStatus.kInfeasible:
            raise Infeasible()
        if status != highspy.HighsModelStatus.kOptimal:
            status_text = self.model.modelStatusToString(status)
            raise DrawError(f"The solver failed on a panel: {status_text}")
        return tuple(int(round(v)) for v in self.model.getSolution().col_value)

    def improve(self, start: tuple[int, ...], weights: np.ndarray) -> tuple[int, ...]:
        """A cheap search before the integer program: from a known panel, swap one person
        of one kind for one of another while it raises the weight and keeps every quota
        (and household) bound; the best swap each time."""
        counts = np.array(start, int)
        totals = self.matrix[: self.quota_rows] @ counts
        in_household = np.bincount(
            self.household_of[self.household_of >= 0],
            weights=counts[self.household_of >= 0],
            minlength=len(self.kinds.households),
        )
        for _ in range(2 * self.size):
            out = np.flatnonzero(counts > 0)
            into = np.flatnonzero(counts < self.sizes)
            gain = weights[into][None, :] - weights[out][:, None]
            if gain.size == 0 or gain.max() <= 1e-12:
                break
            gain = np.where(self._fits(out, into, totals, in_household), gain, -np.inf)
            o, i = np.unravel_index(int(np.argmax(gain)), gain.shape)
            if gain[o, i] <= 1e-12:
                break
            leaving, joining = out[o], into[i]
            counts[leaving] -= 1
            counts[joining] += 1
            np.subtract.at(totals, self.value_row[:, leaving], 1)
            np.add.at(totals, self.value_row[:, joining], 1)
            for kind, step in ((leaving, -1), (joining, 1)):
                if self.household_of[kind] >= 0:
                    in_household[self.household_of[kind]] += step
        return tuple(int(v) for v in counts)

    def _fits(
        self, out: np.ndarray, into: np.ndarray, totals: np.ndarray, in_household: np.ndarray
    ) -> np.ndarray:
        """Which swaps (out x into) keep every bound: per category, the same value, or one
        that can lose a person and one that can take one; and no second housemate."""
        fits = np.ones((len(out), len(into)), bool)
        for rows in self.value_row:
            leaving, joining = rows[out], rows[into]
            can_leave = totals[leaving] - 1 >= self.low[leaving] - 1e-9
            can_join = totals[joining] + 1 <= self.high[joining] + 1e-9
            fits &= (leaving[:, None] == joining[None, :]) | (
                can_leave[:, None] & can_join[None, :]
            )
        if not len(in_household):
            return fits
        home = self.household_of[into]
        taken = (home >= 0) & (in_household[np.maximum(home, 0)] >= 1)
        if taken.any():
            fits &= ~taken[None, :] | (self.household_of[out][:, None] == home[None, :])
        return fits

    def found(self) -> list[tuple[int, ...]]:
        """Every improving panel the last search went through (columns for free)."""
        saved = self.model.getSavedMipSolutions()
        return [tuple(int(round(v)) for v in solution.col_value) for solution in saved]


class DualLevels:
    """The dual of one level over the panels found so far, kept in one HiGHS model that
    grows a row per panel (each solve starts from the last basis). Variables: a weight y_k
    per kind, then y0. Minimise y0 - sum(fixed_k y_k) with sum(y_k, k not fixed) = 1 and,
    for every panel, sum(share_k y_k) <= y0."""

    def __init__(self, sizes: np.ndarray):
        self.sizes = sizes
        count = len(sizes)
        self.model = model = _highs()
        model.setOptionValue("presolve", "off")  # so each solve starts from the last basis
        inf = model.inf
        model.addVars(count, np.zeros(count), np.full(count, inf))
        model.addVar(-inf, inf)
        model.changeColCost(count, 1.0)
        model.addRow(1.0, 1.0, count, np.arange(count, dtype=np.int32), np.ones(count))

    def add(self, panel: tuple[int, ...]) -> None:
        count = len(self.sizes)
        used = [k for k in range(count) if panel[k]]
        shares = [panel[k] / self.sizes[k] for k in used]
        self.model.addRow(
            -self.model.inf,
            0.0,
            len(used) + 1,
            np.array([*used, count], np.int32),
            np.array([*shares, -1.0]),
        )

    def fix(self, kind: int, level: float) -> None:
        self.model.changeColCost(kind, -level)
        self.model.changeCoeff(0, kind, 0.0)

    def solve(self) -> tuple[float, np.ndarray, float]:
        """(the level's value, y, y0)"""
        self.model.run()
        if not _optimal(self.model):
            status = self.model.modelStatusToString(self.model.getModelStatus())
            raise DrawError(f"The solver failed on a level: {status}")
        values = np.array(self.model.getSolution().col_value)
        value = self.model.getInfo().objective_function_value
        return float(value), values[:-1], float(values[-1])


@dataclass
class Distribution:
    """Panels of kinds with their probabilities, and each kind's selection probability."""

    panels: list[tuple[int, ...]]
    weights: list[float]
    kind_probabilities: list[float]
    levels: int = 0
    lps: int = 0
    ilps: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def lowest(self) -> float:
        return min(self.kind_probabilities)


class _Columns:
    """The panels found so far, and the dual over them."""

    def __init__(self, space: PanelSpace):
        self.space = space
        self.panels: list[tuple[int, ...]] = []
        self.seen: set[tuple[int, ...]] = set()
        self.dual = DualLevels(space.sizes)
        self.matrix = np.zeros((64, len(space.sizes)))
        self.lps = 0
        self.add(space.best(1.0 / space.sizes))

    def add(self, panel: tuple[int, ...]) -> None:
        if len(self.panels) == len(self.matrix):  # grown by doubling, not per panel
            self.matrix = np.vstack([self.matrix, np.zeros_like(self.matrix)])
        self.matrix[len(self.panels)] = panel
        self.panels.append(panel)
        self.seen.add(panel)
        self.dual.add(panel)

    def search(self, at: np.ndarray, weights: np.ndarray, bound: float, gap: float) -> int:
        """Panels found searching at `at` that cut the dual at `weights`: added. The swap
        search first; the integer program when it finds none."""
        values = self.matrix[: len(self.panels)] @ at
        added = 0
        for start in np.argsort(-values, kind="stable")[:STARTS]:
            candidate = self.space.improve(self.panels[int(start)], at)
            if candidate not in self.seen and np.dot(weights, candidate) > bound + PRICE_EPS:
                self.add(candidate)
                added += 1
        if added:
            return added
        best = self.space.best(at, gap)
        for candidate in [best, *self.space.found()]:
            if candidate in self.seen or float(np.dot(weights, candidate)) <= bound + PRICE_EPS:
                continue
            self.add(candidate)
            added += 1
        return added

    def swap_only(self, weights: np.ndarray, bound: float) -> None:
        values = self.matrix[: len(self.panels)] @ weights
        candidate = self.space.improve(self.panels[int(np.argmax(values))], weights)
        if candidate not in self.seen and np.dot(weights, candidate) > bound + PRICE_EPS:
            self.add(candidate)

    def level(self, report: Callable[[], None]) -> tuple[float, np.ndarray]:
        """Column generation until no panel cuts the dual: (the level's value, duals)."""
        centre: np.ndarray | None = None
        while True:
            self.lps += 1
            if self.lps > MAX_LPS:
                raise DrawError(f"No optimum after {MAX_LPS} linear programs; stopped.")
            value, duals, bound = self.dual.solve()
            weights = duals / self.space.sizes
            # Search at duals smoothed with the last search's (fewer rounds: the duals of
            # column generation swing), then at the duals themselves, quickly, and only
            # when neither finds a panel that cuts the dual, to optimality (the proof).
            added = 0
            if centre is not None:
                centre = SMOOTHING * centre + (1 - SMOOTHING) * weights
                added = self.search(centre, weights, bound, QUICK_GAP)
                if added:  # one more column for free: the swap search at the duals
                    self.swap_only(weights, bound)
            centre = centre if added else weights
            added = added or self.search(weights, weights, bound, QUICK_GAP)
            added = added or self.search(weights, weights, bound, 1e-9)
            if not added:
                return value, duals
            report()


def solve(space: PanelSpace, algorithm: str, report: Report | None = None) -> Distribution:
    """Maximin (one level) or leximin (every level) over kinds."""
    started = time.monotonic()
    count = len(space.sizes)
    columns = _Columns(space)
    fixed: dict[int, float] = {}
    levels = 0

    def tell(**extra: float) -> None:
        if report:
            event = {"level": levels, "lps": columns.lps, "fixed": len(fixed), "kinds": count}
            report({**event, **extra})

    while len(fixed) < count:
        levels += 1
        value, duals = columns.level(tell)
        tight = [k for k in range(count) if k not in fixed and duals[k] > FIX_EPS]
        if not tight:  # numerically flat: fix the one the dual leans on most
            tight = [max((k for k in range(count) if k not in fixed), key=lambda k: duals[k])]
        for k in tight:
            fixed[k] = max(0.0, value - SLACK)
            columns.dual.fix(k, fixed[k])
        tell(lowest=min(fixed.values()))
        if algorithm == "maximin":
            fixed = {k: fixed.get(k, value - SLACK) for k in range(count)}
            break
    panels, lps = columns.panels, columns.lps
    weights = _distribution(space, panels, fixed)
    keep = [i for i, w in enumerate(weights) if w > 1e-12]
    total = sum(weights[i] for i in keep)
    panels = [panels[i] for i in keep]
    weights = [weights[i] / total for i in keep]
    probabilities = _kind_probabilities(space, panels, weights)
    return Distribution(
        panels,
        weights,
        probabilities,
        levels=levels,
        lps=lps,
        ilps=space.solves,
        seconds=time.monotonic() - started,
    )


def _shares(space: PanelSpace, panels: Sequence[tuple[int, ...]]) -> np.ndarray:
    """Panels x kinds: the share of each kind a panel takes (count / kind size)."""
    return np.array(panels, float) / space.sizes


def _distribution(
    space: PanelSpace, panels: Sequence[tuple[int, ...]], fixed: dict[int, float]
) -> list[float]:
    """Weights over the panels giving every kind at least its fixed probability."""
    from scipy.optimize import linprog

    shares = _shares(space, panels).T  # kinds x panels
    floors = np.array([fixed[k] for k in range(len(space.sizes))]) - SLACK
    # Variables: the panels' weights, then a lift t of every floor (up to the slack given
    # away when fixing), maximised so the probabilities come back to their exact levels.
    result = linprog(
        np.concatenate([np.zeros(len(panels)), [-1.0]]),
        A_ub=np.hstack([-shares, np.ones((len(floors), 1))]),
        b_ub=-floors,
        A_eq=np.concatenate([np.ones(len(panels)), [0.0]]).reshape(1, -1),
        b_eq=[1.0],
        bounds=[(0, None)] * len(panels) + [(0, 2 * SLACK)],
        method="highs",
    )
    if result.status != 0:
        raise DrawError(f"The solver failed on the distribution: {result.message}")
    return [max(0.0, float(w)) for w in result.x[:-1]]


def _kind_probabilities(
    space: PanelSpace, panels: Sequence[tuple[int, ...]], weights: Sequence[float]
) -> list[float]:
    return [float(p) for p in np.asarray(weights) @ _shares(space, panels)]
