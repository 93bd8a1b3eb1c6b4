"""Property tests of ballot counting: every method against a naive count written here
independently, and the invariants a count must keep whatever the ballots."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction
from itertools import permutations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.services.ballots.counting import count
from bot.services.ballots.counting.judgment import majority_grade, majority_value

OPTIONS = ("a", "b", "c", "d", "e")
PROPERTY = settings(max_examples=150, deadline=None)


@st.composite
def option_sets(draw, low=1, high=5):
    return OPTIONS[: draw(st.integers(low, high))]


@st.composite
def ranking_election(draw, high=5, max_ballots=30):
    options = draw(option_sets(low=1, high=high))
    ballot = st.permutations(options).flatmap(
        lambda order: st.integers(0, len(order)).map(lambda k: tuple(order[:k]))
    )
    return options, draw(st.lists(ballot, max_size=max_ballots))


@st.composite
def approval_election(draw):
    options = draw(option_sets())
    k = draw(st.integers(1, len(options)))
    ballot = st.frozensets(st.sampled_from(options), max_size=k)
    return options, k, draw(st.lists(ballot, max_size=40))


@st.composite
def judgment_election(draw):
    options = draw(option_sets())
    grades = draw(st.integers(2, 6))
    ballot = st.dictionaries(st.sampled_from(options), st.integers(0, grades - 1))
    return options, grades, draw(st.lists(ballot, max_size=30))


def single_votes(options):
    return st.lists(st.one_of(st.none(), st.sampled_from(options)), max_size=40)


# ---------------------------------------------------------- the naive Schulze count


def prefers(ballot: tuple[str, ...], x: str, y: str) -> bool:
    """Does this ballot put x above y? Unranked options are below every ranked one."""
    if x not in ballot:
        return False
    return y not in ballot or ballot.index(x) < ballot.index(y)


def naive_schulze(options, ballots):
    """d by asking every ballot about every pair; p by trying every simple path."""
    d = {(x, y): sum(prefers(b, x, y) for b in ballots) for x in options for y in options}

    def link(x, y):
        return d[x, y] if d[x, y] > d[y, x] else 0

    p = {}
    for x in options:
        for y in options:
            if x == y:
                continue
            best = 0
            middle = [o for o in options if o not in (x, y)]
            for n in range(len(middle) + 1):
                for via in permutations(middle, n):
                    path = (x, *via, y)
                    best = max(best, min(link(a, b) for a, b in zip(path, path[1:], strict=False)))
            p[x, y] = best
    winners = tuple(x for x in options if all(p[x, y] >= p[y, x] for y in options if y != x))
    return d, p, winners


@PROPERTY
@given(ranking_election())
def test_schulze_equals_the_naive_count(election):
    options, ballots = election
    tally = count("ranking", options, ballots)
    d, p, winners = naive_schulze(options, ballots)
    n = len(options)
    assert tally.details["pairwise"] == [
        [d[options[i], options[j]] if i != j else 0 for j in range(n)] for i in range(n)
    ]
    assert tally.details["strongest_paths"] == [
        [p[options[i], options[j]] if i != j else 0 for j in range(n)] for i in range(n)
    ]
    assert tally.winners == (winners if tally.ballots else ())
    # The order never puts an option above one that beats it, and options grouped
    # together do not beat each other.
    place = {o: i for i, group in enumerate(tally.ranking) for o in group}
    assert sorted(place) == sorted(options)
    for x in options:
        for y in options:
            if x != y and p[x, y] > p[y, x]:
                assert place[x] < place[y]


@PROPERTY
@given(ranking_election())
def test_a_condorcet_winner_always_wins(election):
    options, ballots = election
    d, _, _ = naive_schulze(options, ballots)
    beats_all = [x for x in options if all(d[x, y] > d[y, x] for y in options if y != x)]
    tally = count("ranking", options, ballots)
    if ballots and beats_all and tally.ballots:
        assert tally.winners == (beats_all[0],)
        assert tally.details["condorcet_winner"] == beats_all[0]
    else:
        assert tally.details["condorcet_winner"] is None


@PROPERTY
@given(ranking_election(), st.permutations(OPTIONS))
def test_schulze_ignores_a_ballot_and_its_reverse(election, full):
    options, ballots = election
    order = tuple(o for o in full if o in options)
    before = count("ranking", options, ballots)
    after = count("ranking", options, ballots + [order, order[::-1]])
    if before.ballots:
        assert after.ranking == before.ranking
        assert after.winners == before.winners


# ---------------------------------------------------- order of the ballots, any method


@PROPERTY
@given(st.data())
def test_the_order_of_the_ballots_never_matters(data):
    method = data.draw(st.sampled_from(["single", "approval", "ranking", "scale", "mj"]))
    params: dict = {}
    if method == "single":
        options = data.draw(option_sets())
        ballots = data.draw(single_votes(options))
    elif method == "approval":
        options, params["max_choices"], ballots = data.draw(approval_election())
    elif method == "ranking":
        options, ballots = data.draw(ranking_election())
    elif method == "scale":
        options = ("s",)
        ballots = data.draw(st.lists(st.one_of(st.none(), st.integers(1, 5)), max_size=40))
    else:
        method = "majority_judgment"
        options, params["grades"], ballots = data.draw(judgment_election())
    shuffled = data.draw(st.permutations(ballots))
    assert count(method, options, shuffled, **params) == count(method, options, ballots, **params)


# ------------------------------------------------------------- single, yes/no, approval


@PROPERTY
@given(st.data())
def test_single_choice_against_a_counter(data):
    options = data.draw(option_sets())
    ballots = data.draw(single_votes(options))
    tally = count("single", options, ballots, majority="plurality")
    counted = Counter(b for b in ballots if b is not None)
    assert tally.details["counts"] == {o: counted[o] for o in options}
    assert tally.abstentions == ballots.count(None)
    top = max(counted.values(), default=0)
    assert tally.winners == tuple(o for o in options if top and counted[o] == top)
    if tally.ballots:
        assert sum(Fraction(s) for s in tally.details["shares_exact"].values()) == 1


@PROPERTY
@given(
    st.integers(0, 60),
    st.integers(0, 60),
    st.integers(0, 10),
    st.integers(1, 12),
    st.integers(1, 12),
)
def test_supermajorities_are_exact(yes, no, blank, num, den):
    """Whatever the fraction above one half: yes wins exactly when yes/cast >= num/den,
    decided by whole numbers (yes * den >= num * cast), never by floats."""
    if not Fraction(1, 2) < Fraction(num, den) <= 1:
        return
    ballots = ["yes"] * yes + ["no"] * no + [None] * blank
    tally = count("yes_no", ("yes", "no"), ballots, majority=f"{num}/{den}")
    cast = yes + no
    assert (tally.winners == ("yes",)) == (cast > 0 and yes * den >= num * cast)
    assert tally.winners != ("yes", "no")
    simple = count("yes_no", ("yes", "no"), ballots, majority="simple")
    assert (simple.winners == ("yes",)) == (2 * yes > cast)


@PROPERTY
@given(approval_election())
def test_approval_against_a_counter(election):
    options, k, ballots = election
    tally = count("approval", options, ballots, max_choices=k)
    counted = Counter(o for b in ballots for o in b)
    assert tally.details["counts"] == {o: counted[o] for o in options}
    assert tally.ballots == sum(1 for b in ballots if b)
    top = max(counted.values(), default=0)
    assert tally.winners == tuple(o for o in options if top and counted[o] == top)


@PROPERTY
@given(approval_election())
def test_approving_everything_changes_no_order(election):
    options, _, ballots = election
    before = count("approval", options, ballots)
    after = count("approval", options, ballots + [frozenset(options)])
    assert after.ranking == before.ranking
    if before.ballots:
        assert after.winners == before.winners


# --------------------------------------------------------------------------- scale


@PROPERTY
@given(
    st.lists(st.one_of(st.none(), st.integers(1, 7)), max_size=60),
    st.integers(1, 7),
    st.integers(1, 20),
    st.integers(1, 20),
)
def test_scale_shares_and_threshold(ballots, level, num, den):
    if num > den:
        return
    tally = count(
        "scale", ("s",), ballots, levels=7, threshold_level=level, threshold_share=f"{num}/{den}"
    )
    chosen = [b for b in ballots if b is not None]
    shares = [Fraction(s) for s in tally.details["shares_exact"].values()]
    if chosen:
        assert sum(shares) == 1
        assert Fraction(tally.details["mean_exact"]) == Fraction(sum(chosen), len(chosen))
        ordered = sorted(chosen)
        middle = (ordered[(len(ordered) - 1) // 2] + ordered[len(ordered) // 2]) / 2
        assert tally.details["median"] == middle
    above = sum(1 for b in chosen if b >= level)
    assert tally.details["passed"] == (bool(chosen) and above * den >= num * len(chosen))
    assert tally.abstentions == ballots.count(None)


# --------------------------------------------------------------- majority judgment


def naive_majority_value(grades: list[int]) -> tuple[int, ...]:
    """Remove the lower middle grade, one at a time, from a sorted list."""
    left = sorted(grades)
    out = []
    while left:
        out.append(left.pop((len(left) - 1) // 2))
    return tuple(out)


def as_distribution(grades: list[int], size: int) -> list[int]:
    return [grades.count(g) for g in range(size)]


@PROPERTY
@given(st.lists(st.integers(0, 5), max_size=60))
def test_majority_value_equals_iterative_removal(grades):
    dist = as_distribution(grades, 6)
    assert majority_value(dist) == naive_majority_value(grades)
    if grades:
        assert majority_grade(dist) == sorted(grades)[(len(grades) - 1) // 2]


@PROPERTY
@given(judgment_election())
def test_majority_judgment_against_the_naive_rule(election):
    options, grades, ballots = election
    tally = count("majority_judgment", options, ballots, grades=grades)
    cast = [b for b in ballots if b]
    values = {o: naive_majority_value([b.get(o, 0) for b in cast]) for o in options}
    place = {o: i for i, group in enumerate(tally.ranking) for o in group}
    for x in options:
        for y in options:
            assert (place[x] < place[y]) == (values[x] > values[y])
    best = max(values.values())
    assert tally.winners == (tuple(o for o in options if values[o] == best) if cast else ())


@PROPERTY
@given(judgment_election())
def test_majority_judgment_ignores_one_top_and_one_bottom_ballot(election):
    options, grades, ballots = election
    before = count("majority_judgment", options, ballots, grades=grades)
    extremes = [dict.fromkeys(options, grades - 1), dict.fromkeys(options, 0)]
    after = count("majority_judgment", options, ballots + extremes, grades=grades)
    if before.ballots:
        assert after.ranking == before.ranking
