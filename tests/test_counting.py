"""Ballot counting: small hand-counted cases, published examples, refused votes.

The property tests (hypothesis, against naive reference counts) are in
test_counting_properties.py.
"""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from bot.services.ballots.counting import METHODS, InvalidVote, count, validate
from bot.services.ballots.counting.judgment import majority_grade, rank

YES_NO = ("yes", "no")


def votes(spec: dict[str, int]) -> list:
    """{"yes": 6, "no": 3, "": 1} -> six "yes", three "no", one blank."""
    out: list = []
    for key, n in spec.items():
        out += [key or None] * n
    return out


# ------------------------------------------------------------------ yes/no and single


@pytest.mark.parametrize(
    "spec, majority, base, winners, needed",
    [
        # 2/3 of 9 is 6 exactly: 6 passes, 5 does not.
        ({"yes": 6, "no": 3}, Fraction(2, 3), None, ("yes",), 6),
        ({"yes": 5, "no": 4}, Fraction(2, 3), None, (), 6),
        ({"yes": 6, "no": 3}, "2/3", None, ("yes",), 6),
        # Blanks are left out of the votes cast: 6 of 9 cast, 3 blank.
        ({"yes": 6, "no": 3, "": 3}, "2/3", None, ("yes",), 6),
        # ... unless the base is every ballot: 6 of 12 is short of 8.
        ({"yes": 6, "no": 3, "": 3}, "2/3", "ballots", (), 8),
        # 3/5 of 10 is 6; written 0.6 it is still 3/5, not 0.59999.
        ({"yes": 6, "no": 4}, 0.6, None, ("yes",), 6),
        ({"yes": 5, "no": 5}, 0.6, None, (), 6),
        ({"yes": 15, "no": 5}, "0.75", None, ("yes",), 15),
        ({"yes": 14, "no": 6}, "75/100", None, (), 15),
        ({"yes": 10}, 1, None, ("yes",), 10),
        ({"yes": 9, "no": 1}, 1, None, (), 10),
        # Simple: more than half of the votes cast. A tie is no majority.
        ({"yes": 5, "no": 5}, "simple", None, (), 6),
        ({"yes": 6, "no": 5, "": 10}, "simple", None, ("yes",), 6),
        # Absolute: more than half of all ballots, blanks included.
        ({"yes": 6, "no": 5, "": 10}, "absolute", None, (), 11),
        ({"yes": 11, "no": 5, "": 4}, "absolute", None, ("yes",), 11),
        # Nobody voted: nobody wins.
        ({}, "simple", None, (), 1),
        ({"": 4}, "2/3", None, (), 1),
    ],
)
def test_yes_no_majorities(spec, majority, base, winners, needed):
    tally = count("yes_no", YES_NO, votes(spec), majority=majority, base=base)
    assert tally.winners == winners
    assert tally.details["needed"] == needed
    assert tally.ballots == spec.get("yes", 0) + spec.get("no", 0)
    assert tally.abstentions == spec.get("", 0)


def test_absolute_majority_of_the_electorate():
    # 11 of 21 ballots is a majority of those who voted, not of the 30 members.
    tally = count("yes_no", YES_NO, votes({"yes": 11, "no": 10}), majority="absolute")
    assert tally.winners == ("yes",)
    tally = count(
        "yes_no", YES_NO, votes({"yes": 11, "no": 10}), majority="absolute", electorate=30
    )
    assert tally.winners == () and tally.details["needed"] == 16


@pytest.mark.parametrize(
    "spec, majority, winners, ranking",
    [
        ({"a": 4, "b": 3, "c": 2}, "plurality", ("a",), (("a",), ("b",), ("c",))),
        ({"a": 4, "b": 3, "c": 2}, "simple", (), (("a",), ("b",), ("c",))),
        ({"a": 5, "b": 3, "c": 1}, "simple", ("a",), (("a",), ("b",), ("c",))),
        # A tie for the most votes: both win under plurality; ties keep declared order.
        ({"b": 3, "c": 3, "a": 1}, "plurality", ("b", "c"), (("b", "c"), ("a",))),
        ({"c": 2}, "plurality", ("c",), (("c",), ("a", "b"))),
        ({"": 3}, "plurality", (), (("a", "b", "c"),)),
    ],
)
def test_single_choice(spec, majority, winners, ranking):
    tally = count("single", ("a", "b", "c"), votes(spec), majority=majority)
    assert tally.winners == winners
    assert tally.ranking == ranking


def test_single_shares_are_exact():
    tally = count("single", ("a", "b", "c"), votes({"a": 1, "b": 1, "c": 1}))
    assert tally.details["shares_exact"] == {"a": "1/3", "b": "1/3", "c": "1/3"}
    assert sum(Fraction(s) for s in tally.details["shares_exact"].values()) == 1


# ------------------------------------------------------------------------- approval


@pytest.mark.parametrize(
    "ballots, winners, counts",
    [
        ([{"a", "b"}, {"b"}, {"b", "c"}], ("b",), {"a": 1, "b": 3, "c": 1}),
        ([{"a"}, {"c"}], ("a", "c"), {"a": 1, "b": 0, "c": 1}),
        ([set(), {"a"}], ("a",), {"a": 1, "b": 0, "c": 0}),
        ([], (), {"a": 0, "b": 0, "c": 0}),
    ],
)
def test_approval(ballots, winners, counts):
    tally = count("approval", ("a", "b", "c"), [frozenset(b) for b in ballots], max_choices=2)
    assert tally.winners == winners
    assert tally.details["counts"] == counts
    assert tally.abstentions == sum(1 for b in ballots if not b)
    # As JSON keeps them: lists.
    as_lists = [sorted(b) for b in ballots]
    assert count("approval", ("a", "b", "c"), as_lists, max_choices=2) == tally


# -------------------------------------------------------------------------- Schulze


def expand(groups: list[tuple[int, str]]) -> list[tuple[str, ...]]:
    return [tuple(order) for n, order in groups for _ in range(n)]


# Schulze (2011), section 3.1, and Wikipedia's "Schulze method" example: 45 voters.
SCHULZE_45 = expand(
    [
        (5, "ACBED"),
        (5, "ADECB"),
        (8, "BEDAC"),
        (3, "CABED"),
        (7, "CAEBD"),
        (2, "CBADE"),
        (7, "DCEBA"),
        (8, "EBADC"),
    ]
)


def test_schulze_45_voter_example():
    tally = count("ranking", tuple("ABCDE"), SCHULZE_45)
    assert tally.winners == ("E",)
    assert tally.ranking == (("E",), ("A",), ("C",), ("B",), ("D",))
    assert tally.ballots == 45
    # The published matrices, rows A..E.
    assert tally.details["pairwise"] == [
        [0, 20, 26, 30, 22],
        [25, 0, 16, 33, 18],
        [19, 29, 0, 17, 24],
        [15, 12, 28, 0, 14],
        [23, 27, 21, 31, 0],
    ]
    assert tally.details["strongest_paths"] == [
        [0, 28, 28, 30, 24],
        [25, 0, 28, 33, 24],
        [25, 29, 0, 29, 24],
        [25, 28, 28, 0, 24],
        [25, 28, 28, 31, 0],
    ]
    assert tally.details["condorcet_winner"] is None
    json.dumps(tally.details)


def test_schulze_tennessee_example():
    # Wikipedia's Tennessee capital example: Nashville is the Condorcet winner and the
    # Condorcet order is Nashville > Chattanooga > Knoxville > Memphis.
    ballots = (
        [("Memphis", "Nashville", "Chattanooga", "Knoxville")] * 42
        + [("Nashville", "Chattanooga", "Knoxville", "Memphis")] * 26
        + [("Chattanooga", "Knoxville", "Nashville", "Memphis")] * 15
        + [("Knoxville", "Chattanooga", "Nashville", "Memphis")] * 17
    )
    tally = count("ranking", ("Memphis", "Nashville", "Chattanooga", "Knoxville"), ballots)
    assert tally.details["condorcet_winner"] == "Nashville"
    assert tally.winners == ("Nashville",)
    assert tally.ranking == (("Nashville",), ("Chattanooga",), ("Knoxville",), ("Memphis",))


@pytest.mark.parametrize(
    "ballots, winners, ranking",
    [
        # A three-way cycle of equal strength: everybody ties.
        ([("a", "b", "c"), ("b", "c", "a"), ("c", "a", "b")], ("a", "b", "c"), (("a", "b", "c"),)),
        # Partial ballots: unranked options come last, equal among themselves.
        ([("b",), ("b",), ("a",)], ("b",), (("b",), ("a",), ("c",))),
        ([("c",)], ("c",), (("c",), ("a", "b"))),
        # One voter each way: a pairwise tie.
        ([("a", "b", "c"), ("c", "b", "a")], ("a", "b", "c"), (("a", "b", "c"),)),
        # Blank ballots only, and nothing at all.
        ([(), None], (), (("a", "b", "c"),)),
        ([], (), (("a", "b", "c"),)),
    ],
)
def test_schulze_small_cases(ballots, winners, ranking):
    tally = count("ranking", ("a", "b", "c"), ballots)
    assert tally.winners == winners
    assert tally.ranking == ranking


# --------------------------------------------------------------------------- scale


@pytest.mark.parametrize(
    "levels_chosen, passed, share, mean, median",
    [
        # 8 of 10 at 4 or more is exactly 80%: it passes.
        ([4, 4, 4, 4, 5, 5, 5, 5, 1, 2], True, "4/5", 3.9, 4.0),
        ([4, 4, 4, 5, 5, 5, 5, 1, 2, 3], False, "7/10", 3.8, 4.0),
        ([5], True, "1", 5.0, 5.0),
        ([1, 2], False, "0", 1.5, 1.5),
        ([], False, "0", None, None),
    ],
)
def test_scale(levels_chosen, passed, share, mean, median):
    tally = count("scale", ("s1",), levels_chosen + [None])
    assert tally.details["passed"] is passed
    assert tally.details["share_at_or_above_exact"] == share
    assert tally.details["mean"] == mean
    assert tally.details["median"] == median
    assert tally.winners == (("s1",) if passed else ())
    assert tally.abstentions == 1
    if levels_chosen:
        assert sum(Fraction(s) for s in tally.details["shares_exact"].values()) == 1


def test_scale_threshold_written_as_a_float_is_exact():
    # 0.8 as a float is a hair above 4/5; read as the decimal it is exactly 4/5.
    chosen = [4] * 4 + [1]
    assert count("scale", ("s",), chosen, threshold_share=0.8).details["passed"]
    assert count("scale", ("s",), chosen, threshold_share="4/5").details["passed"]
    assert not count("scale", ("s",), chosen, threshold_share="81/100").details["passed"]


def test_scale_other_scales():
    tally = count("scale", ("s",), [7, 6, 1], levels=7, threshold_level=6, threshold_share="2/3")
    assert tally.details["passed"] and tally.details["counts"]["7"] == 1


# -------------------------------------------------------------------- majority judgment

# Balinski and Laraki's Orsay experiment, French presidential election of 22 April 2007,
# per mille of voters at each grade, from "no grade"/Reject up to "Très bien". A ballot
# giving no grade counts as Reject, so those two columns are added together.
ORSAY = {
    # reject, no grade, insuffisant, passable, assez bien, bien, très bien
    "Laguiller": (348, 53, 259, 166, 102, 53, 21),
    "Besancenot": (279, 32, 226, 160, 163, 99, 41),
    "Buffet": (261, 43, 264, 206, 125, 76, 25),
    "Schivardi": (546, 58, 249, 95, 39, 10, 5),
    "Bové": (353, 42, 257, 160, 114, 60, 15),
    "Voynet": (162, 43, 261, 237, 175, 93, 29),
    "Royal": (108, 18, 122, 140, 168, 191, 227),
    "Bayrou": (45, 29, 84, 148, 251, 307, 136),
    "Sarkozy": (265, 17, 71, 115, 143, 198, 191),
    "Nihous": (478, 72, 267, 110, 53, 18, 3),
    "de Villiers": (512, 43, 158, 113, 87, 64, 24),
    "Le Pen": (717, 27, 54, 81, 65, 62, 46),
}
ORSAY_GRADES = ("À rejeter", "Insuffisant", "Passable", "Assez bien", "Bien", "Très bien")


def test_majority_judgment_orsay_2007():
    dists = {name: (r + none, *rest) for name, (r, none, *rest) in ORSAY.items()}
    grades = {name: ORSAY_GRADES[majority_grade(d)] for name, d in dists.items()}
    # The majority grades read off the published distributions.
    assert grades["Bayrou"] == grades["Royal"] == grades["Sarkozy"] == "Assez bien"
    assert grades["Voynet"] == "Passable"
    assert grades["Le Pen"] == "À rejeter"
    ranking, _ = rank(list(ORSAY), dists)
    order = [group[0] for group in ranking]
    # The published outcome: Bayrou first, then Royal, then Sarkozy; Le Pen last
    # (the first round's order was Sarkozy, Royal, Bayrou, Le Pen).
    assert order[:3] == ["Bayrou", "Royal", "Sarkozy"]
    assert order[-1] == "Le Pen"
    assert all(len(group) == 1 for group in ranking)


def test_majority_judgment_ballots_and_details():
    options = ("a", "b", "c")
    ballots = [
        {"a": 5, "b": 3, "c": 0},
        {"a": 0, "b": 3, "c": 1},
        {"a": 4, "b": 2},  # c left out: graded Reject
        {},  # blank
    ]
    tally = count("majority_judgment", options, ballots)
    assert tally.ballots == 3 and tally.abstentions == 1
    assert tally.details["distribution"]["c"] == [2, 1, 0, 0, 0, 0]
    # a: 0,4,5 -> Very good; b: 2,3,3 -> Good; c: 0,0,1 -> Reject.
    assert tally.details["majority_grade"] == {"a": "Very good", "b": "Good", "c": "Reject"}
    assert tally.ranking == (("a",), ("b",), ("c",))
    assert tally.winners == ("a",)
    json.dumps(tally.details)


@pytest.mark.parametrize(
    "a, b, first",
    [
        # Same majority grade (Good): a has more above it than b.
        ([2, 3, 3, 4], [2, 3, 3, 3], "a"),
        # Same majority grade; b has fewer below it.
        ([1, 3, 3, 3], [2, 3, 3, 3], "b"),
        # Identical distributions stay tied.
        ([1, 3, 5], [5, 3, 1], None),
    ],
)
def test_majority_judgment_tie_breaks(a, b, first):
    ballots = [{"a": x, "b": y} for x, y in zip(a, b, strict=True)]
    tally = count("majority_judgment", ("a", "b"), ballots)
    if first is None:
        assert tally.ranking == (("a", "b"),) and tally.winners == ("a", "b")
    else:
        assert tally.winners == (first,)
        assert tally.details["decided_by"][0]["by"] == "majority value"


def test_majority_judgment_grade_count():
    tally = count("majority_judgment", ("x", "y"), [{"x": 2, "y": 1}], grades=3)
    assert tally.details["grades"] == ["0", "1", "2"] and tally.winners == ("x",)


# ------------------------------------------------------------------ refused votes


@pytest.mark.parametrize(
    "method, vote, params, reason",
    [
        ("yes_no", "maybe", {}, "unknown_option"),
        ("yes_no", 1, {}, "wrong_shape"),
        ("single", "d", {}, "unknown_option"),
        ("approval", frozenset({"a", "z"}), {}, "unknown_option"),
        ("approval", frozenset({"a", "b", "c"}), {"max_choices": 2}, "too_many_choices"),
        ("approval", "a", {}, "wrong_shape"),
        ("approval", ["a", "a"], {}, "duplicate_option"),
        ("ranking", ("a", "b", "a"), {}, "duplicate_option"),
        ("ranking", ("a", "q"), {}, "unknown_option"),
        ("ranking", "abc", {}, "wrong_shape"),
        ("scale", 6, {}, "out_of_range"),
        ("scale", 0, {}, "out_of_range"),
        ("scale", 8, {"levels": 7}, "out_of_range"),
        ("scale", True, {}, "wrong_shape"),
        ("scale", "4", {}, "wrong_shape"),
        ("majority_judgment", {"a": 6}, {}, "out_of_range"),
        ("majority_judgment", {"a": -1}, {}, "out_of_range"),
        ("majority_judgment", {"z": 1}, {}, "unknown_option"),
        ("majority_judgment", {"a": 3}, {"grades": 3}, "out_of_range"),
        ("majority_judgment", ["a"], {}, "wrong_shape"),
    ],
)
def test_bad_votes_are_refused_by_validate_and_count(method, vote, params, reason):
    options = ("s",) if method == "scale" else ("yes", "no") if method == "yes_no" else "abc"
    with pytest.raises(InvalidVote) as refused:
        validate(method, tuple(options), vote, **params)
    assert refused.value.reason == reason
    with pytest.raises(InvalidVote):
        count(method, tuple(options), [vote], **params)


@pytest.mark.parametrize(
    "method, vote, params",
    [
        ("yes_no", "yes", {}),
        ("yes_no", None, {}),
        ("approval", frozenset({"a", "b"}), {"max_choices": 2}),
        ("approval", frozenset(), {}),
        ("approval", ["b", "a"], {"max_choices": 2}),
        ("ranking", ("c", "a"), {}),
        ("ranking", (), {}),
        ("scale", 5, {}),
        ("scale", 7, {"levels": 7}),
        ("majority_judgment", {"a": 5, "b": 0}, {}),
        ("majority_judgment", {}, {}),
    ],
)
def test_good_votes_pass_validate(method, vote, params):
    options = ("s",) if method == "scale" else ("yes", "no") if method == "yes_no" else "abc"
    validate(method, tuple(options), vote, **params)


@pytest.mark.parametrize(
    "method, options, params",
    [
        ("condorcet", ("a", "b"), {}),
        ("single", (), {}),
        ("single", ("a", "a"), {}),
        ("yes_no", YES_NO, {"majority": "most"}),
        ("yes_no", YES_NO, {"majority": "1/3"}),
        ("yes_no", YES_NO, {"majority": True}),
        ("approval", ("a", "b"), {"max_choices": 0}),
        ("scale", ("s",), {"threshold_level": 6}),
        ("scale", ("s",), {"threshold_share": 0}),
        ("scale", ("s", "t"), {}),
        ("majority_judgment", ("a",), {"grades": 1}),
    ],
)
def test_bad_parameters_raise_value_error(method, options, params):
    with pytest.raises(ValueError) as refused:
        count(method, options, [], **params)
    assert not isinstance(refused.value, InvalidVote)


@pytest.mark.parametrize("method", METHODS)
def test_empty_input_counts_nothing(method):
    options = ("s",) if method == "scale" else ("a", "b")
    tally = count(method, options, [])
    assert (tally.ballots, tally.abstentions, tally.winners) == (0, 0, ())
    assert tally.options == options
    assert sorted(o for group in tally.ranking for o in group) == sorted(options)
    json.dumps(tally.details)
