"""Fairness anyone can check: maximin and leximin on kinds of people with the open HiGHS
solver, against the published exact results and the library itself; every probability
recorded; a re-run refused on another backend; the uniform lottery's panels and figures.
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.services import draw
from bot.services.draw import DrawInput, Respondent
from bot.services.draw import kinds as kinds_of
from bot.services.draw import probabilities as chances
from bot.services.draw.by_kinds import distribution
from store.draw_records import DrawRun
from store.models import AuditEvent
from store.recruitment import Selection
from tests.test_draw import (
    EXAMPLE,
    QUOTAS_TOML,
    assert_quotas_met,
    concorder,
    households,
    proportional_quotas,
    registered_pool,
    registered_pool_with_phones,
    synthetic_pool,
)

# The two instances of Flanigan, Goelz, Gupta, Hennig and Procaccia's replication data
# (pgoelz/citizensassemblies-replication) with their published exact leximin minimum:
# pool by (gender, leaning), quotas min..max on each value, panel size.
PUBLISHED = {
    "example_small_20": {
        "pool": {
            ("female", "liberal"): 99,
            ("male", "conservative"): 100,
            ("female", "conservative"): 1,
        },
        "quota": (9, 20),
        "panel": 20,
        "leximin_minimum": 0.100,
    },
    "example_large_200": {
        "pool": {
            ("female", "liberal"): 999,
            ("male", "conservative"): 1000,
            ("female", "conservative"): 1,
        },
        "quota": (99, 200),
        "panel": 200,
        "leximin_minimum": 0.100,
    },
}
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "sortition-examples"


def published_instance(name: str) -> tuple[list[Respondent], draw.Quotas, int, float]:
    spec = PUBLISHED[name]
    answers = [pair for pair, count in spec["pool"].items() for _ in range(count)]
    people = [
        Respondent(f"R{i:05d}", None, {"gender": gender, "leaning": leaning})
        for i, (gender, leaning) in enumerate(answers)
    ]
    low, high = spec["quota"]
    quotas = {
        "gender": {"female": {"min": low, "max": high}, "male": {"min": low, "max": high}},
        "leaning": {
            "liberal": {"min": low, "max": high},
            "conservative": {"min": low, "max": high},
        },
    }
    if (SHARED / name).exists():  # the same instance as the published files
        with open(SHARED / name / "respondents.csv", encoding="utf-8") as rows:
            counts = Counter((r["gender"], r["leaning"]) for r in csv.DictReader(rows))
        assert counts == Counter(spec["pool"])
        stats = (SHARED / name / "published_statistics.txt").read_text(encoding="utf-8")
        assert f"panel size k:\t{spec['panel']}" in stats and "exact):\t10.0%" in stats
    return people, draw.quota_bounds(quotas, spec["panel"]), spec["panel"], spec["leximin_minimum"]


def solve_on_kinds(inp: DrawInput, algorithm: str):
    canonical = inp.canonical()
    return distribution(
        canonical["respondents"],
        canonical["quotas"],
        inp.panel_size,
        inp.one_per_household,
        algorithm,
    )


@pytest.mark.parametrize("name", ["example_small_20", "example_large_200"])
def test_leximin_and_maximin_reach_the_published_exact_minimum(name):
    people, quotas, size, published = published_instance(name)
    inp = DrawInput(people, quotas, size)
    result = draw.run_draw(inp, "2021", "leximin")
    assert result.lowest_probability == pytest.approx(published, abs=1e-6)
    assert len(result.probabilities) == len(people)
    assert sum(result.probabilities.values()) == pytest.approx(size, abs=1e-6)
    assert_quotas_met(result.quota_table, people, result.selected, quotas)
    assert result.solve["kinds"] == 3  # 2,000 people, but three kinds of them
    assert draw.run_draw(inp, "2021", "maximin").lowest_probability == pytest.approx(
        published, abs=1e-6
    )


POOLS = [
    # (respondents, panel, quota slack, seed, one per household)
    (40, 8, 0.3, 1, False),
    (60, 10, 0.2, 2, True),
    (120, 12, 0.25, 3, False),
]


@pytest.mark.parametrize(("size", "panel", "slack", "seed", "household"), POOLS)
def test_leximin_minimum_is_maximin_and_its_distribution_dominates(
    size, panel, slack, seed, household
):
    people = synthetic_pool(size, seed=seed)
    inp = DrawInput(people, proportional_quotas(people, panel, slack), panel, 0, household)
    kinds, maximin = solve_on_kinds(inp, "maximin")
    _, leximin = solve_on_kinds(inp, "leximin")
    assert leximin.lowest == pytest.approx(maximin.lowest, abs=1e-6)
    by_person_max = sorted(draw_probabilities(kinds, maximin).values())
    by_person_lex = sorted(draw_probabilities(kinds, leximin).values())
    # Leximin's sorted probabilities are lexicographically at least maximin's.
    for lex, mm in zip(by_person_lex, by_person_max, strict=True):
        if abs(lex - mm) > 1e-6:
            assert lex > mm
            break
    for dist in (maximin, leximin):
        assert sum(dist.weights) == pytest.approx(1.0)
        for panel_of_kinds in dist.panels:
            assert sum(panel_of_kinds) == panel


def draw_probabilities(kinds, dist) -> dict[str, float]:
    return kinds_of.person_probabilities(kinds, dist.kind_probabilities)


@pytest.mark.parametrize(("size", "panel", "slack", "seed", "household"), POOLS[:2])
def test_maximin_on_kinds_equals_the_library_called_directly(size, panel, slack, seed, household):
    people = synthetic_pool(size, seed=seed)
    inp = DrawInput(people, proportional_quotas(people, panel, slack), panel, 0, household)
    ours = draw.run_draw(inp, "5", "maximin")
    library = draw.run_draw(inp, "5", "maximin", backend=draw.SOLVER_BACKEND)
    assert ours.audit["solver_backend"] == draw.KINDS_BACKEND
    assert library.audit["solver_backend"] == draw.SOLVER_BACKEND
    assert ours.lowest_probability == pytest.approx(library.lowest_probability, abs=1e-4)
    if household:
        assert len(set(households(people, ours.selected))) == panel


def test_the_same_payload_gives_the_same_panel_and_probabilities():
    people = synthetic_pool(80, seed=8)
    inp = DrawInput(people, proportional_quotas(people, 10, 0.3), 10, 4, True)
    first = draw.run_draw(inp, "lottery 4 8 15", "leximin")
    again = draw.rerun(draw.select_payload(first, "lottery 4 8 15", "leximin", 1, None))
    assert again["selected"] == first.selected and again["reserve"] == first.reserve
    assert again["probabilities"] == first.probabilities
    assert len(first.reserve) == 4
    drawn = [*first.selected, *first.reserve]
    assert len(set(households(people, drawn))) == len(drawn)
    assert (
        first.audit["versions"]["highspy"] == draw.backend_versions(draw.KINDS_BACKEND)["highspy"]
    )


# ---------------------------------------------------------------- the uniform lottery


@pytest.mark.parametrize(("m", "seed"), [(50, 1), (1000, 2)])
def test_lottery_panels_meet_the_quotas_and_their_shares_are_the_stated_probabilities(m, seed):
    people = synthetic_pool(90, seed=seed)
    quotas = proportional_quotas(people, 12, 0.25)
    inp = DrawInput(people, quotas, 12, 0, True)
    published = draw.run_draw(inp, "9", "leximin", panels=m)
    assert len(published.panels) == m and published.pick is None
    for panel in published.panels:
        assert len(panel) == len(set(panel)) == 12
        assert_quotas_met([], people, panel, quotas)
        assert len(set(households(people, panel))) == 12
    on_panels = Counter(pid for panel in published.panels for pid in panel)
    for person in people:
        assert published.probabilities[person.id] == pytest.approx(on_panels[person.id] / m)
    # The loss stated is the largest change from leximin's own probabilities.
    kinds, leximin = solve_on_kinds(inp, "leximin")
    exact = draw_probabilities(kinds, leximin)
    change = max(abs(published.probabilities[pid] - exact[pid]) for pid in exact)
    assert published.lottery["max_change"] == pytest.approx(change, abs=1e-9)
    assert published.lottery["lowest_before"] == pytest.approx(min(exact.values()), abs=1e-9)
    # Rounding to m panels costs little: at most a few kinds' worth of 1/m each.
    assert change <= (len(kinds) + 1) / m
    picked = draw.run_draw(inp, "9", "leximin", panels=m, pick_number=m - 1)
    assert picked.selected == published.panels[m - 1]


# ------------------------------------------------------------------ records and verify


async def test_every_probability_is_recorded_and_a_changed_backend_is_refused(db):
    people = synthetic_pool(40, seed=12)
    await registered_pool(db, people)
    rules = draw.DrawRules(proportional_quotas(people, 6, slack=0.4), 6, 2, True)
    async with db.sessions() as session:
        inp = await draw.draw_input(session, rules)
    result = draw.run_draw(inp, "77", "leximin")
    # Recorded on a machine with another HiGHS than this one.
    result.audit["versions"] = {**result.audit["versions"], "highspy": "0.9.0"}
    payload = draw.select_payload(result, "77", "leximin", 1, None)
    async with db.sessions.begin() as session:
        run = await draw.record_selection(session, result, payload)
    async with db.sessions() as session:
        stored = (await session.execute(select(DrawRun))).scalar_one()
        event = (
            await session.execute(select(AuditEvent).where(AuditEvent.seq == run.audit_seq))
        ).scalar_one()
        assert {s.participant_id for s in (await session.execute(select(Selection))).scalars()}
    assert sorted(stored.result["probabilities"]) == sorted(p.id for p in people)
    assert sum(stored.result["probabilities"].values()) == pytest.approx(6)
    assert stored.lowest_probability == pytest.approx(min(stored.result["probabilities"].values()))
    assert event.data["versions"]["highspy"] == "0.9.0"
    assert event.data["probabilities_sha256"] == draw.rules.sha256_of(
        stored.result["probabilities"]
    )

    with pytest.raises(draw.BackendChanged, match=r"highspy 0\.9\.0 recorded"):
        await draw.verify_draws(db.sessions)
    checks = await draw.verify_draws(db.sessions, allow_backend_change=True)
    assert all(check.ok for check in checks)
    assert any("another backend" in w for check in checks for w in check.warnings)

    # A probability edited in the record is caught by the re-run.
    async with db.sessions.begin() as session:
        stored = (await session.execute(select(DrawRun))).scalar_one()
        edited = dict(stored.result["probabilities"])
        edited[people[0].id] = 0.99
        stored.result = {**stored.result, "probabilities": edited}
    checks = await draw.verify_draws(db.sessions, allow_backend_change=True)
    assert any("probabilities differ" in d for check in checks for d in check.differences)


async def test_verify_refuses_another_backend_from_the_command_line(sqlite_db, tmp_path):
    people = [
        Respondent(
            f"P{i:05d}",
            f"H{i}",
            {"age": "30-49", "gender": ["woman", "man"][i % 2], "travel": "bus", "area": "north"},
        )
        for i in range(10)
    ]
    await registered_pool_with_phones(sqlite_db, people)
    (tmp_path / "quotas.toml").write_text(QUOTAS_TOML)
    common = ["--quotas", "quotas.toml", "--assembly", str(EXAMPLE)]
    code, out, err = await concorder(
        sqlite_db, tmp_path, "select", "--seed", "3", "--algorithm", "leximin", *common
    )
    assert code == 0, err
    assert "Selection probabilities of the 10 respondents" in out
    code, out, err = await concorder(sqlite_db, tmp_path, "select", "--verify", "--chart", "v.svg")
    assert code == 0, err
    assert "same result" in out and (tmp_path / "v.svg").read_text().startswith("<svg")

    async with sqlite_db.sessions.begin() as session:
        run = (await session.execute(select(DrawRun))).scalar_one()
        versions = {**run.payload["versions"], "numpy": "1.0.0"}
        run.payload = {**run.payload, "versions": versions}
    code, out, err = await concorder(sqlite_db, tmp_path, "select", "--verify")
    assert code == 1 and "numpy 1.0.0 recorded" in err and "--allow-backend-change" in err
    code, out, err = await concorder(
        sqlite_db, tmp_path, "select", "--verify", "--allow-backend-change"
    )
    assert code == 0, err
    assert "same result" in out and "another backend" in out


async def test_dry_run_compares_algorithms_side_by_side_and_records_nothing(sqlite_db, tmp_path):
    rng = random.Random(4)
    people = [
        Respondent(
            f"P{i:05d}",
            f"H{i}",
            {
                "age": rng.choice(["16-29", "30-49", "50-64", "65+"]),
                "gender": ["woman", "man"][i % 3 == 0],
                "travel": rng.choice(["car", "bus", "bike"]),
                "area": "north",
            },
        )
        for i in range(14)
    ]
    await registered_pool_with_phones(sqlite_db, people)
    (tmp_path / "quotas.toml").write_text(QUOTAS_TOML)
    args = ["--quotas", "quotas.toml", "--assembly", str(EXAMPLE), "--seed", "8", "--dry-run"]
    for algorithm in ("maximin", "leximin", "legacy"):
        args += ["--algorithm", algorithm]
    code, out, err = await concorder(
        sqlite_db, tmp_path, "select", *args, "--estimate-draws", "40", "--chart", "c.svg"
    )
    assert code == 0, err
    table = out.split("by algorithm")[1]
    assert "maximin" in table and "leximin" in table and "legacy" in table
    assert "estimated from 40 draws" in table and "±" in table
    chart = (tmp_path / "c.svg").read_text()
    assert chart.count("<polyline") == 3 and "leximin: lowest" in chart
    async with sqlite_db.sessions() as session:
        assert (await session.execute(select(DrawRun))).first() is None
    code, out, err = await concorder(
        sqlite_db,
        tmp_path,
        "select",
        "--quotas",
        "quotas.toml",
        "--assembly",
        str(EXAMPLE),
        "--seed",
        "8",
        "--algorithm",
        "maximin",
        "--algorithm",
        "legacy",
    )
    assert code == 1 and "--dry-run" in err


async def test_uniform_lottery_published_then_picked_by_a_number_drawn_in_public(
    sqlite_db, tmp_path
):
    people = [
        Respondent(
            f"P{i:05d}",
            f"H{i}",
            {"age": "30-49", "gender": ["woman", "man"][i % 2], "travel": "bus", "area": "north"},
        )
        for i in range(12)
    ]
    await registered_pool_with_phones(sqlite_db, people)
    (tmp_path / "quotas.toml").write_text(
        QUOTAS_TOML.replace("reserve_size = 2", "reserve_size = 1")
    )
    common = ["--quotas", "quotas.toml", "--assembly", str(EXAMPLE)]
    code, out, err = await concorder(
        sqlite_db,
        tmp_path,
        "select",
        "--seed",
        "11",
        "--algorithm",
        "leximin",
        "--lottery",
        "--panels-out",
        "lottery.json",
        *common,
    )
    assert code == 0, err
    assert "1000 equally likely panels" in out and "at most" in out
    published = json.loads((tmp_path / "lottery.json").read_text())
    assert len(published["panels"]) == 1000
    assert published["lottery"]["max_change"] >= 0 and published["solver_backend"] == "highs-kinds"

    code, out, err = await concorder(
        sqlite_db, tmp_path, "select", "--lottery-pick", "1000", "--assembly", str(EXAMPLE)
    )
    assert code == 1 and "0 to 999" in err
    code, out, err = await concorder(
        sqlite_db, tmp_path, "select", "--lottery-pick", "417", "--assembly", str(EXAMPLE)
    )
    assert code == 0, err
    assert "Number drawn 417: panel 417 of 1000" in out
    async with sqlite_db.sessions() as session:
        rows = (await session.execute(select(Selection))).scalars().all()
    assert (
        sorted(r.participant_id for r in rows if r.reserve_rank is None)
        == published["panels"][417]["members"]
    )
    code, out, err = await concorder(sqlite_db, tmp_path, "select", "--verify")
    assert code == 0, err


# ------------------------------------------------------------------ the distribution


@pytest.mark.parametrize(
    ("values", "lowest", "median", "mean", "gini"),
    [
        ([0.1] * 10, 0.1, 0.1, 0.1, 0.0),
        ([0.0, 0.0, 0.0, 0.4], 0.0, 0.0, 0.1, 0.75),
        ([0.05, 0.1, 0.15], 0.05, 0.1, 0.1, 2 / 9),
    ],
)
def test_the_spread_of_probabilities(values, lowest, median, mean, gini):
    found = chances.spread({f"P{i}": v for i, v in enumerate(values)})
    assert found.lowest == pytest.approx(lowest)
    assert found.deciles[4] == pytest.approx(median)
    assert found.mean == pytest.approx(mean)
    assert found.gini == pytest.approx(gini)
    assert chances.standard_error(0.1, 400) == pytest.approx(0.015)
