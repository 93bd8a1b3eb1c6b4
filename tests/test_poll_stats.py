"""The report's statistics against scipy and against numbers worked by hand: the effect
sizes agree with scipy's own test statistics on any data (hypothesis), and a small
worked example gives the values a textbook gives."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from bot.services.polls.report import OVERALL, SCORE, build
from bot.services.polls.stats import paired, rank_biserial, wilcoxon_method

answers = st.lists(st.tuples(st.integers(1, 5), st.integers(1, 5)), min_size=2, max_size=30)


@settings(max_examples=200, deadline=None)
@given(answers)
def test_effect_sizes_agree_with_scipys_statistics(pairs):
    before = [b for b, _ in pairs]
    after = [a for _, a in pairs]
    result = paired(before, after)
    d = [a - b for b, a in pairs]
    nonzero = [x for x in d if x]
    assert result.n == len(pairs)
    assert result.change == pytest.approx(sum(d) / len(d))
    if not nonzero:
        assert result.wilcoxon_p is None and result.rank_biserial is None
        return
    # |r| = 1 - 2 min(W+, W-) / S, where scipy's two-sided statistic is min(W+, W-).
    total = len(nonzero) * (len(nonzero) + 1) / 2
    w = stats.wilcoxon(after, before, zero_method="wilcox", method="asymptotic").statistic
    assert abs(result.rank_biserial) == pytest.approx(1 - 2 * w / total)
    assert (result.rank_biserial > 0) == (
        sum(
            rank
            for rank, x in zip(stats.rankdata([abs(x) for x in nonzero]), nonzero, strict=True)
            if x > 0
        )
        > total / 2
    )
    distinct = len({abs(x) for x in nonzero}) == len(nonzero)
    method = "exact" if len(nonzero) <= 25 and distinct else "asymptotic"
    assert wilcoxon_method(d) == method
    expected = stats.wilcoxon(after, before, zero_method="wilcox", method=method)
    assert result.wilcoxon_p == pytest.approx(expected.pvalue)
    if result.cohens_dz is not None:
        # dz x sqrt(n) is the paired t statistic.
        t = stats.ttest_rel(after, before)
        assert result.cohens_dz * math.sqrt(len(d)) == pytest.approx(t.statistic)
        assert result.t_p == pytest.approx(t.pvalue)


def test_a_small_sample_without_ties_has_its_exact_p():
    # Differences 1, 2, 3, 4, 5 all up: W- = 0, and 2 of the 2^5 sign patterns are as
    # extreme (all up, all down): p = 2/32.
    result = paired([1, 1, 1, 1, 1], [2, 3, 4, 5, 6])
    assert result.wilcoxon_p == pytest.approx(2 / 32)
    assert result.rank_biserial == 1.0


def test_a_worked_example():
    # Eight people; differences +1 +1 +2 +2 +3 -1 0 +1 (the zero is dropped).
    before = [2, 3, 1, 2, 1, 4, 3, 2]
    after = [3, 4, 3, 4, 4, 3, 3, 3]
    result = paired(before, after)
    # Ranks of |d| over the seven non-zero: the four 1s share rank 2.5, the 2s 5.5, the 3
    # is 7; W- = 2.5 (the -1), W+ = 28 - 2.5 = 25.5; r = (25.5 - 2.5) / 28.
    assert result.rank_biserial == pytest.approx(23 / 28)
    assert result.n == 8 and result.before == 2.25 and result.after == 3.375
    d = [a - b for b, a in zip(before, after, strict=True)]
    mean = sum(d) / 8
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / 7)
    assert result.cohens_dz == pytest.approx(mean / sd)
    assert rank_biserial([0, 0, 1]) == 1.0 and rank_biserial([-2, 1]) == pytest.approx(-1 / 3)


def test_a_group_below_the_threshold_is_suppressed_and_the_others_are_not():
    definition = {
        "questions": [
            {"id": "q", "kind": "agree", "text": {"en": "Q"}, "options": [], "answer": None},
            {
                "id": "k",
                "kind": "knowledge",
                "text": {"en": "K"},
                "options": [{"key": "x"}, {"key": "y"}],
                "answer": "y",
            },
        ]
    }
    people = [f"r{n}" for n in range(8)]
    groups = {p: ("north" if n < 6 else "south") for n, p in enumerate(people)}
    rows = []
    for n, p in enumerate(people):
        rows += [("before", "q", p, "2"), ("after", "q", p, str(2 + n % 3))]
        rows += [("before", "k", p, "x"), ("after", "k", p, "y" if n % 2 else None)]
    report = build(definition, rows, "before", "after", groups, min_cell=5)
    by = {(r.question, r.group): r for r in report}
    assert by[("q", OVERALL)].result.n == 8
    assert by[("q", "north")].result.n == 6
    assert by[("q", "south")].result is None and by[("q", "south")].pairs == 2
    # Right went from 0 of 8 to the four odd ones; a skip counts as not right.
    assert by[("k", OVERALL)].result.before == 0 and by[("k", OVERALL)].result.after == 0.5
    assert by[(SCORE, OVERALL)].result.after == 0.5  # the share of the one knowledge question
    assert by[(SCORE, "south")].result is None
    # Nothing of a suppressed group can be read in its row.
    assert "n" not in by[("q", "south")].plain(5) and "before" not in by[("q", "south")].plain(5)
