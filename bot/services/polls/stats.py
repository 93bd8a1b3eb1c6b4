"""The paired statistics of a poll report: the shift from one wave to the next of the
same people. Pure: lists of numbers in, numbers out.

- Wilcoxon signed-rank (scipy; zero differences dropped, as Wilcoxon did), two-sided: the
  exact distribution for up to 25 non-zero differences with no ties among them, else the
  normal approximation with its tie correction (scipy's own choice for ties is a
  permutation test that takes seconds, so the method is chosen here, by `wilcoxon_method`);
- paired t test (scipy's ttest_rel), two-sided;
- the matched-pairs rank-biserial correlation (Kerby 2014): the share of the ranked
  non-zero differences in favour of a rise minus the share in favour of a fall, from -1
  to 1; it goes with the Wilcoxon test;
- Cohen's dz: the mean difference over the differences' standard deviation (dz x sqrt(n)
  is the paired t statistic).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Paired:
    n: int  # pairs
    before: float | None = None  # mean
    after: float | None = None
    change: float | None = None  # mean of after - before
    wilcoxon_p: float | None = None
    t_p: float | None = None
    rank_biserial: float | None = None
    cohens_dz: float | None = None

    def plain(self) -> dict[str, float | int | None]:
        return asdict(self)


def _number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


EXACT_UP_TO = 25


def wilcoxon_method(differences: Sequence[float]) -> str:
    d = [abs(x) for x in differences if x != 0]
    return "exact" if len(d) <= EXACT_UP_TO and len(set(d)) == len(d) else "asymptotic"


def rank_biserial(differences: Sequence[float]) -> float | None:
    d = np.asarray(differences, dtype=float)
    d = d[d != 0]
    if d.size == 0:
        return None
    ranks = stats.rankdata(np.abs(d))
    up, down = ranks[d > 0].sum(), ranks[d < 0].sum()
    return float((up - down) / (up + down))


def cohens_dz(differences: Sequence[float]) -> float | None:
    d = np.asarray(differences, dtype=float)
    if d.size < 2:
        return None
    sd = d.std(ddof=1)
    return float(d.mean() / sd) if sd > 0 else None


def paired(before: Sequence[float], after: Sequence[float]) -> Paired:
    """The shift of paired values (the same person's before and after)."""
    if len(before) != len(after):
        raise ValueError("before and after are not paired: their lengths differ")
    n = len(before)
    if n == 0:
        return Paired(0)
    b, a = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    d = a - b
    wilcoxon_p = t_p = None
    if np.any(d != 0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # small samples: scipy says the p is approximate
            wilcoxon_p = _number(
                stats.wilcoxon(a, b, zero_method="wilcox", method=wilcoxon_method(d)).pvalue
            )
            if n >= 2 and d.std(ddof=1) > 0:  # equal differences: t is infinite, p says nothing
                t_p = _number(stats.ttest_rel(a, b).pvalue)
    return Paired(
        n=n,
        before=float(b.mean()),
        after=float(a.mean()),
        change=float(d.mean()),
        wilcoxon_p=wilcoxon_p,
        t_p=t_p,
        rank_biserial=rank_biserial(d),
        cohens_dz=cohens_dz(d),
    )
