"""Quotas that cannot be met: one message with every problem, in the organiser's terms,
and the smallest relaxation, which does make the draw possible."""

from __future__ import annotations

import itertools

import pytest

from bot.services import draw
from bot.services.draw import Bounds, DrawInput, Respondent, relax
from bot.services.draw import kinds as kinds_of


def pool():
    """Twelve people: four women, eight men; two aged 65+, both men; two households of two."""
    people = []
    for i in range(12):
        people.append(
            Respondent(
                f"P{i:03d}",
                f"H{i // 2}" if i < 4 else None,
                {
                    "gender": "woman" if i >= 8 else "man",
                    "age": "65+" if i in (4, 5) else "under 65",
                },
            )
        )
    return people


QUOTAS = {
    # Minimums add up to 7 for a panel of 6; only 4 women for a min of 5.
    "gender": {"woman": {"min": 5, "max": 6}, "man": {"min": 2, "max": 6}},
    # Three 65+ wanted, two in the pool.
    "age": {"65+": {"min": 3, "max": 6}, "under 65": {"min": 0, "max": 6}},
}


def test_every_problem_at_once_with_the_smallest_change_that_works():
    inp = DrawInput(pool(), draw.quota_bounds(QUOTAS, 6), 6, one_per_household=True)
    with pytest.raises(draw.DrawError) as caught:
        draw.run_draw(inp, "1")
    message = caught.value.message
    assert caught.value.kind == "infeasible"
    assert set(caught.value.categories) == {"age", "gender"}
    assert "gender: the minimums add up to 7, more than the panel of 6" in message
    assert "gender = woman: at least 5 wanted, but only 4 respondents (P008, P009" in message
    assert "age = 65+: at least 3 wanted, but only 2 respondents (P004, P005)" in message
    # Each minimum lowered by one: two in all (the next test shows nothing smaller works),
    # and the relaxed quotas do draw a panel.
    assert "Smallest change that makes the draw possible (checked; 2 in all):" in message
    assert "  - gender = woman: min 5 -> 4" in message and "  - age = 65+: min 3 -> 2" in message
    relaxed = {"gender": {"woman": Bounds(4, 6), "man": Bounds(2, 6)}}
    relaxed["age"] = {"65+": Bounds(2, 6), "under 65": Bounds(0, 6)}
    result = draw.run_draw(DrawInput(pool(), relaxed, 6, one_per_household=True), "1")
    assert len(result.selected) == 6 and all(row.met for row in result.quota_table)


def test_the_suggestion_is_the_smallest_by_brute_force():
    people = pool()
    rows = DrawInput(people, draw.quota_bounds(QUOTAS, 6), 6, one_per_household=True)
    canonical = rows.canonical()
    quotas = canonical["quotas"]
    kinds = kinds_of.group(canonical["respondents"], list(quotas), True)
    changes = relax.smallest_relaxation(kinds, quotas, 6)
    total = sum(c.low[0] - c.low[1] + c.high[1] - c.high[0] for c in changes)
    # Every way of lowering the two offending minimums by less is still infeasible.
    for women, older in itertools.product(range(6), range(4)):
        if (5 - women) + (3 - older) >= total:
            continue
        trial = relax.relaxed(quotas, [])
        trial["gender"]["woman"][0], trial["age"]["65+"][0] = women, older
        assert not relax.feasible(kinds, trial, 6)


def test_flex_limits_bound_the_relaxation():
    flex = {"gender": {"woman": Bounds(5, 6)}, "age": {"65+": Bounds(3, 6)}}
    inp = DrawInput(pool(), draw.quota_bounds(QUOTAS, 6), 6, one_per_household=True, flex=flex)
    with pytest.raises(draw.DrawError) as caught:
        draw.run_draw(inp, "1")
    assert "no change within the flex limits" in caught.value.message
    assert "Smallest change" not in caught.value.message
