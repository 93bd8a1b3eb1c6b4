"""The stratified draw: quotas met, reproducible from the seed, recorded and verifiable.

Solver runs are kept small (the library's maximin solves one integer program per
respondent); the 300-respondent pool uses the library's legacy algorithm, which is fast.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.services import draw
from bot.services.draw import DrawInput, Respondent
from store import audit
from store.draw_records import DONE, PUBLISHED, SUPERSEDED, DrawRun, published_lottery
from store.models import AuditEvent, OutboxMessage, Participant
from store.recruitment import (
    DECLINED,
    REGISTERED,
    RESERVE,
    SELECTED,
    WITHDRAWN,
    Invitation,
    PoolEntry,
    RegistrationAnswer,
    Selection,
)

ROOT = Path(__file__).resolve().parent.parent
CATEGORIES = {
    "age": ["16-29", "30-49", "50-64", "65+"],
    "gender": ["woman", "man", "other"],
    "education": ["school", "college", "degree"],
    "area": ["north", "south", "east", "west"],
}


def synthetic_pool(size: int, seed: int = 7, couples_every: int = 5) -> list[Respondent]:
    """`size` respondents; every `couples_every`-th one shares a household with the next."""
    rng = random.Random(seed)
    people = []
    for i in range(size):
        household = f"house-{i // 2}" if i % couples_every in (0, 1) else f"house-solo-{i}"
        people.append(
            Respondent(f"P{i:05d}", household, {c: rng.choice(v) for c, v in CATEGORIES.items()})
        )
    return people


def proportional_quotas(people: list[Respondent], panel: int, slack: float = 0.25):
    spec = {}
    for category, values in CATEGORIES.items():
        spec[category] = {}
        for value in values:
            share = sum(1 for p in people if p.attributes[category] == value) / len(people)
            spec[category][value] = {
                "min": int(share * panel * (1 - slack)),
                "max": int(share * panel * (1 + slack)) + 1,
            }
    return draw.quota_bounds(spec, panel)


def assert_quotas_met(result_table, people, chosen, quotas):
    by_id = {p.id: p for p in people}
    for category, values in quotas.items():
        counts = Counter(by_id[pid].attributes[category] for pid in chosen)
        for value, bounds in values.items():
            assert bounds.min <= counts[value] <= bounds.max, (category, value, counts[value])
    assert all(row.met for row in result_table)


def households(people, ids):
    by_id = {p.id: p for p in people}
    return [by_id[pid].household for pid in ids]


# ------------------------------------------------------------------- plain data, no DB


def test_pool_of_300_meets_quotas_is_reproducible_and_changes_with_the_seed():
    people = synthetic_pool(300)
    quotas = proportional_quotas(people, 30)
    inp = DrawInput(people, quotas, panel_size=30, reserve_size=10, one_per_household=True)

    first = draw.run_draw(inp, "2026-11-25 lottery 07 19 33", "legacy")
    again = draw.run_draw(inp, "2026-11-25 lottery 07 19 33", "legacy")
    other = draw.run_draw(inp, "another seed", "legacy")

    assert len(first.selected) == 30 and len(set(first.selected)) == 30
    assert_quotas_met(first.quota_table, people, first.selected, quotas)
    assert_quotas_met(other.quota_table, people, other.selected, quotas)
    # One per household, across panel and reserve.
    drawn = [*first.selected, *first.reserve]
    assert len(set(households(people, drawn))) == len(drawn) == 40
    assert (first.selected, first.reserve) == (again.selected, again.reserve)
    assert first.selected != other.selected
    assert first.audit["input_sha256"] == inp.sha256() == again.audit["input_sha256"]
    assert first.audit["library_version"] == draw.library_version()
    assert first.audit["seed"] == "2026-11-25 lottery 07 19 33"
    assert first.lowest_probability is None  # legacy computes no distribution


def test_maximin_reports_probabilities_and_gives_the_same_panel_in_another_process():
    people = synthetic_pool(24, seed=3)
    quotas = proportional_quotas(people, 6, slack=0.5)
    inp = DrawInput(people, quotas, panel_size=6, one_per_household=False)
    here = draw.run_draw(inp, "42")
    assert_quotas_met(here.quota_table, people, here.selected, quotas)
    assert 0 < here.lowest_probability <= here.mean_probability
    assert here.mean_probability == pytest.approx(6 / 24, abs=1e-3)

    # The same draw from an interpreter with another hash seed (as `--verify` would be).
    script = (
        "import json, sys; from bot.services import draw; "
        "p = json.loads(sys.stdin.read()); print(json.dumps(draw.rerun(p)))"
    )
    payload = draw.select_payload(here, "42", "maximin", 1, None)
    assert payload["solver_backend"] == draw.KINDS_BACKEND
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(payload),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out)["selected"] == here.selected


def test_leximin_runs_without_gurobi_on_the_open_solver():
    assert not draw.gurobi_available()
    inp = DrawInput(synthetic_pool(10), proportional_quotas(synthetic_pool(10), 4), 4)
    result = draw.run_draw(inp, "1", "leximin")
    assert result.audit["solver_backend"] == draw.KINDS_BACKEND
    assert len(result.selected) == 4 and len(result.probabilities) == 10


def test_infeasible_quotas_name_the_categories_in_conflict():
    # Every older respondent is a man, yet the quotas want 3 older people and 1 man at most.
    people = [
        Respondent(
            f"P{i:03d}",
            None,
            {"age": "65+" if i < 6 else "16-29", "gender": "man" if i < 6 else "woman"},
        )
        for i in range(16)
    ]
    quotas = draw.quota_bounds(
        {
            "age": {"65+": {"min": 3, "max": 4}, "16-29": {"min": 0, "max": 6}},
            "gender": {"man": {"min": 0, "max": 1}, "woman": {"min": 0, "max": 6}},
        },
        6,
    )
    with pytest.raises(draw.DrawError) as caught:
        draw.run_draw(DrawInput(people, quotas, 6), "5")
    assert set(caught.value.categories) == {"age", "gender"}
    assert "age" in caught.value.message and "gender" in caught.value.message


def test_quota_sums_that_cannot_make_the_panel_name_the_category():
    people = synthetic_pool(40)
    spec = {c: {v: {"min": 0, "max": 10} for v in values} for c, values in CATEGORIES.items()}
    spec["gender"] = {v: {"min": 5, "max": 6} for v in CATEGORIES["gender"]}  # 15+ > 10 seats
    with pytest.raises(draw.DrawError) as caught:
        draw.run_draw(DrawInput(people, draw.quota_bounds(spec, 10), 10), "5", "legacy")
    assert caught.value.categories == ["gender"]


def test_target_shares_become_min_and_max():
    quotas = draw.quota_bounds(
        {"gender": {"woman": 0.5, "man": {"share": 0.45}, "other": {"min": 0, "max": 2}}}, 15
    )
    assert quotas["gender"]["woman"] == draw.Bounds(7, 8)
    assert quotas["gender"]["man"] == draw.Bounds(6, 7)
    assert quotas["gender"]["other"] == draw.Bounds(0, 2)
    with pytest.raises(draw.DrawError, match="gender/other"):
        draw.quota_bounds({"gender": {"other": {"min": 3, "max": 1}}}, 15)


def test_quotas_file_is_checked_and_each_mistake_named(tmp_path):
    good = tmp_path / "quotas.toml"
    good.write_text(
        "panel_size = 10\nreserve_size = 3\none_per_household = true\n"
        "[quotas.gender]\nwoman = 0.5\nman = { min = 4, max = 6 }\n"
    )
    rules = draw.rules_from_file(good)
    assert (rules.panel_size, rules.reserve_size, rules.one_per_household) == (10, 3, True)
    assert rules.quotas["gender"] == {"woman": draw.Bounds(5, 5), "man": draw.Bounds(4, 6)}
    for text, complaint in (
        ("panelsize = 10\n", "unknown setting(s) panelsize"),
        ("panel_size = 10\n", "No quotas"),
        ("panel_size = 10\n[quotas.age]\nold = { min = 'two', max = 3 }\n", "age/old"),
        ("panel_size = 10\n[quotas]\nage = 3\n", "age/*"),
        ("panel_size = [\n", "not valid TOML"),
    ):
        bad = tmp_path / "bad.toml"
        bad.write_text(text)
        with pytest.raises(draw.DrawRecordError, match=re.escape(complaint)):
            draw.rules_from_file(bad)


def test_seeds_are_numbers_or_phrases_never_zero():
    assert draw.seed_number("42") == 42
    assert draw.seed_number("0") != 0
    assert draw.seed_number("07 19 33") == draw.seed_number(" 07 19 33 ")
    assert draw.seed_number("07 19 33") != draw.seed_number("07 19 34")
    with pytest.raises(draw.DrawError):
        draw.seed_number("  ")


# ------------------------------------------------------------------ recorded in the DB
# Each of these runs on SQLite and on PostgreSQL; the solve before the recording is the
# same for both, so it is computed once (the verify step always re-runs for real).

_solved: dict[tuple, object] = {}


def solved_once(function, inp, *args, **kwargs):
    key = (function.__name__, inp.sha256(), args, tuple(sorted(kwargs.items())))
    if key not in _solved:
        _solved[key] = function(inp, *args, **kwargs)
    return _solved[key]


async def registered_pool(
    db, people: list[Respondent], questions=("age", "gender", "education")
) -> None:
    async with db.sessions.begin() as session:
        for n, person in enumerate(people):
            session.add(Participant(id=person.id, language="en"))
            await session.flush()
            session.add(
                PoolEntry(
                    participant_id=person.id,
                    household_id=person.household,
                    attributes={"area": person.attributes["area"]},
                )
            )
            session.add(
                Invitation(
                    participant_id=person.id,
                    code_hash=f"{n:064d}",
                    channel="sms",
                    language="en",
                    status=REGISTERED,
                )
            )
            for question in questions:
                session.add(
                    RegistrationAnswer(
                        participant_id=person.id,
                        question_id=question,
                        answer=person.attributes[question],
                        answered_at=audit.utcnow(),
                    )
                )


RULES = {"panel_size": 8, "reserve_size": 4, "one_per_household": True}


def rules_for(people, panel=8):
    return draw.DrawRules(proportional_quotas(people, panel, slack=0.4), panel, 4, True)


async def test_draw_writes_rows_and_audit_together_and_verifies(db):
    people = synthetic_pool(60, seed=21)
    await registered_pool(db, people)
    rules = rules_for(people)
    async with db.sessions() as session:
        inp = await draw.draw_input(session, rules)
    assert sorted(r.id for r in inp.respondents) == sorted(p.id for p in people)
    assert inp.sha256() == DrawInput(people, rules.quotas, 8, 4, True).sha256()

    result = solved_once(draw.run_draw, inp, "1789", "legacy")
    payload = draw.select_payload(result, "1789", "legacy", 1, None)
    async with db.sessions.begin() as session:
        run = await draw.record_selection(session, result, payload)

    async with db.sessions() as session:
        rows = (await session.execute(select(Selection))).scalars().all()
        event = (
            await session.execute(select(AuditEvent).where(AuditEvent.kind == "draw.completed"))
        ).scalar_one()
        assert (await audit.verify(session)).ok
    assert sorted(r.participant_id for r in rows if r.status == SELECTED) == result.selected
    reserve = sorted((r for r in rows if r.status == RESERVE), key=lambda r: r.reserve_rank)
    assert [r.participant_id for r in reserve] == result.reserve
    assert {r.draw_id for r in rows} == {run.draw_id}
    assert event.data["input_sha256"] == inp.sha256()
    assert event.data["seed"] == "1789" and event.data["algorithm"] == "legacy"
    assert event.data["library_version"] == draw.library_version()

    checks = await draw.verify_draws(db.sessions)
    assert [(c.kind, c.ok) for c in checks] == [("audit", True), ("select", True)]

    # A second draw is refused: replacements go through `replace`.
    with pytest.raises(draw.DrawRecordError, match="already drawn"):
        async with db.sessions.begin() as session:
            await draw.record_selection(session, result, payload)

    # Someone edits the recorded panel, or the input: verify names the difference.
    async with db.sessions.begin() as session:
        stored = (await session.execute(select(DrawRun))).scalar_one()
        outsider = next(p.id for p in people if p.id not in result.selected)
        stored.result = {**stored.result, "selected": [*result.selected[1:], outsider]}
        stored.payload = {**stored.payload, "seed": "1790"}
    async with db.sessions() as session:
        stored = (await session.execute(select(DrawRun))).scalar_one()
        differences, _, audited = await draw.check_record(session, stored)
    assert any("seed" in d for d in differences)
    rerun = {"selected": result.selected, "reserve": result.reserve}
    assert draw.compare_rerun(stored, rerun) == [
        f"panel differs: only in the record {outsider}; only in the re-run {result.selected[0]}"
    ]
    # The audit trail still holds the true panel's hash; another panel would not match it.
    assert draw.compare_audited(audited, rerun) == []
    assert draw.compare_audited(audited, {**rerun, "selected": stored.result["selected"]}) == [
        "the re-run's panel does not match the audit trail"
    ]


async def test_replace_promotes_from_the_reserve_and_is_audited(db):
    people = synthetic_pool(60, seed=22)
    await registered_pool(db, people)
    rules = rules_for(people)
    async with db.sessions() as session:
        inp = await draw.draw_input(session, rules)
    result = solved_once(draw.run_draw, inp, "1848", "legacy")
    async with db.sessions.begin() as session:
        await draw.record_selection(
            session, result, draw.select_payload(result, "1848", "legacy", 1, None)
        )

    leaving = [result.selected[0]]
    async with db.sessions() as session:
        rinp = await draw.replace_input(session, rules, leaving)
    assert rinp.candidate_tiers[0] == result.reserve
    replacement = solved_once(draw.run_replace, rinp, "1849", "legacy")
    payload = {
        "mode": "replace",
        "input": replacement.canonical_input,
        "seed": "1849",
        "seed_number": draw.seed_number("1849"),
        "algorithm": "legacy",
    }
    async with db.sessions.begin() as session:
        await draw.record_replacement(session, replacement, payload)

    async with db.sessions() as session:
        rows = {r.participant_id: r for r in (await session.execute(select(Selection))).scalars()}
        event = (
            await session.execute(select(AuditEvent).where(AuditEvent.kind == "draw.replaced"))
        ).scalar_one()
    assert rows[leaving[0]].status == DECLINED and rows[leaving[0]].reason == "dropped_out"
    panel = [pid for pid, r in rows.items() if r.status == SELECTED]
    assert len(panel) == 8 and not set(replacement.added) & set(result.selected)
    assert_quotas_met(replacement.quota_table, people, panel, rules.quotas)
    assert len(set(households(people, panel))) == 8  # still one per household
    if replacement.tier == 0:
        assert set(replacement.added) <= set(result.reserve)
    assert all(rows[pid].notified_at is None for pid in replacement.added)
    assert event.data["leaving"] == leaving and event.data["added"] == replacement.added
    checks = await draw.verify_draws(db.sessions)
    assert [(c.kind, c.ok) for c in checks] == [
        ("audit", True),
        ("select", True),
        ("replace", True),
    ]

    with pytest.raises(draw.DrawRecordError, match="reserve"):
        async with db.sessions() as session:
            reserve_member = next(pid for pid, r in rows.items() if r.status == RESERVE)
            await draw.replace_input(session, rules, [reserve_member])


async def test_published_lottery_then_pick_is_recorded_and_verified(db):
    people = synthetic_pool(14, seed=4, couples_every=100)
    await registered_pool(db, people)
    rules = draw.DrawRules(proportional_quotas(people, 4, slack=0.6), 4, 0, False)
    async with db.sessions() as session:
        inp = await draw.draw_input(session, rules)
    published = solved_once(draw.run_draw, inp, "3", "maximin", panels=4)
    async with db.sessions.begin() as session:
        lottery = await draw.record_publication(
            session, published, draw.select_payload(published, "3", "maximin", 4, None)
        )
    async with db.sessions() as session:
        event = (
            await session.execute(
                select(AuditEvent).where(AuditEvent.kind == "draw.panels_published")
            )
        ).scalar_one()
        assert (await session.execute(select(Selection))).first() is None
    assert event.data["panel_list_sha256"] == published.audit["panel_list_sha256"]
    assert lottery.status == PUBLISHED and not published.complete
    assert len(published.panels) == 4
    for panel in published.panels:
        assert len(panel) == 4
        assert_quotas_met([], people, panel, rules.quotas)
    hashes = [p["sha256"] for p in published.published_panels]
    assert hashes == [draw.panel_hash(p) for p in published.panels]
    assert published.audit["panel_list_sha256"] == draw.panel_list_hash(hashes)

    payload = draw.select_payload(published, "3", "maximin", 4, "announced later")
    picked = solved_once(draw.run_draw, inp, "3", "maximin", panels=4, pick_seed="announced later")
    # One of the panel withdrew between the publication and the pick.
    async with db.sessions.begin() as session:
        invitation = (
            await session.execute(
                select(Invitation).where(Invitation.participant_id == picked.selected[0])
            )
        ).scalar_one()
        invitation.status = WITHDRAWN
    async with db.sessions.begin() as session:
        current = await published_lottery(session)
        run = await draw.record_selection(session, picked, payload, published=current)
    assert run.result["withdrawn_since"] == [picked.selected[0]]
    async with db.sessions() as session:
        statuses = {r.draw_id: r.status for r in (await session.execute(select(DrawRun))).scalars()}
        rows = {r.participant_id: r for r in (await session.execute(select(Selection))).scalars()}
        selected = sorted(rows)
    assert (rows[picked.selected[0]].status, rows[picked.selected[0]].reason) == (
        DECLINED,
        "withdrawn",
    )
    assert all(rows[pid].status == SELECTED for pid in picked.selected[1:])
    assert statuses[lottery.draw_id] == SUPERSEDED and DONE in statuses.values()
    assert picked.panels == published.panels
    assert picked.pick == draw.pick_index("announced later", 4)
    assert selected == picked.selected == published.panels[picked.pick]
    assert picked.audit["pick_seed"] == "announced later"
    checks = await draw.verify_draws(db.sessions)
    assert [(c.kind, c.ok) for c in checks] == [("audit", True), ("select", True)]


# ------------------------------------------------- end to end with the participant flows

EXAMPLE = ROOT / "examples" / "citizens-jury" / "assembly.toml"


HALF_WOMEN = {"woman": 0.5, "man": 0.5}


async def draw_panel_of_four(db, algorithm: str = "legacy", gender: dict | None = None):
    """Sixteen registered people with phones, half women; a panel of four and a reserve of
    two drawn (seed 2027, by `algorithm`) and recorded; nobody told yet. The gender quota:
    `gender`, else half women, half men and no other. (people, rules, result)"""
    rng = random.Random(8)
    people = [
        Respondent(
            f"P{i:05d}",
            f"H{i}",
            {
                "age": rng.choice(["16-29", "30-49", "50-64", "65+"]),
                "gender": ["woman", "man"][i % 2],
                "travel": rng.choice(["car", "bus", "bike"]),
                "area": "north",
            },
        )
        for i in range(16)
    ]
    await registered_pool_with_phones(db, people)
    gender = gender or {**HALF_WOMEN, "other": {"min": 0, "max": 0}}
    rules = draw.DrawRules(draw.quota_bounds({"gender": gender}, 4), 4, 2, True)
    async with db.sessions() as session:
        inp = await draw.draw_input(session, rules)
    result = solved_once(draw.run_draw, inp, "2027", algorithm)
    async with db.sessions.begin() as session:
        await draw.record_selection(
            session, result, draw.select_payload(result, "2027", algorithm, 1, None)
        )
    return people, rules, result


async def test_drawn_people_are_asked_to_confirm_and_a_decline_is_replaced(db, relay, assembly):
    from bot.services import recruitment
    from bot.services.turns import receive
    from store.models import Contact, OutboxMessage

    people, rules, result = await draw_panel_of_four(db)
    told = await recruitment.notify_draw_outcome(relay, assembly)
    assert told == Counter({"selected": 4, "reserve": 2, "not selected": 10})

    async def texts_to(pid):
        async with db.sessions() as session:
            return list(
                (
                    await session.execute(
                        select(OutboxMessage.text)
                        .join(Contact)
                        .where(Contact.participant_id == pid)
                        .order_by(OutboxMessage.id)
                    )
                ).scalars()
            )

    chosen, reserve = result.selected[0], result.reserve[0]
    assert "selected" in (await texts_to(chosen))[-1]
    assert "reserve" in (await texts_to(reserve))[-1]
    outsider = next(p.id for p in people if p.id not in [*result.selected, *result.reserve])
    assert "not selected" in (await texts_to(outsider))[-1]

    # The first selected declines by SMS; a replacement of the same gender is drawn
    # from the reserve and asked to confirm in turn.
    await receive(
        relay,
        channel="sms",
        address=phone_of(chosen),
        text="DECLINE",
        provider_id=f"decline-{chosen}",
    )
    async with db.sessions() as session:
        rinp = await draw.replace_input(session, rules, [])
    assert chosen not in rinp.kept and len(rinp.kept) == 3
    replacement = solved_once(draw.run_replace, rinp, "2028", "legacy")
    async with db.sessions.begin() as session:
        await draw.record_replacement(
            session,
            replacement,
            {
                "mode": "replace",
                "input": replacement.canonical_input,
                "seed": "2028",
                "seed_number": draw.seed_number("2028"),
                "algorithm": "legacy",
            },
        )
    told = await recruitment.notify_draw_outcome(relay, assembly)
    assert told == Counter({"selected": 1})
    (added,) = replacement.added
    by_id = {p.id: p for p in people}
    assert by_id[added].attributes["gender"] == by_id[chosen].attributes["gender"]
    assert "selected" in (await texts_to(added))[-1]
    async with db.sessions() as session:
        assert (await audit.verify(session)).ok


def phone_of(pid: str) -> str:
    return f"+4477009{int(pid[1:]):05d}"


async def registered_pool_with_phones(db, people: list[Respondent]) -> None:
    from store.models import Contact

    await registered_pool(db, people, questions=("age", "gender", "travel"))
    async with db.sessions.begin() as session:
        for person in people:
            session.add(
                Contact(
                    participant_id=person.id,
                    channel="sms",
                    address=phone_of(person.id),
                    sms_consent=True,
                )
            )


# ------------------------------------------------------------ the organiser's commands

QUOTAS_TOML = """
panel_size = 4
reserve_size = 2
one_per_household = true

[quotas.gender]
woman = 0.5
man = 0.5
other = { min = 0, max = 0 }
"""


async def concorder_process(db, tmp_path, *args):
    """Run the installed `concorder` command; (exit code, stdout, stderr)."""
    env = {**os.environ, "CONCORDER_DATABASE_URL": db.url, "COLUMNS": "200"}
    env.pop("CONCORDER_ASSEMBLY", None)
    process = await asyncio.create_subprocess_exec(
        str(ROOT / ".venv" / "bin" / "concorder"),
        *args,
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode, out.decode(), err.decode()


async def concorder(db, tmp_path, *args):
    """The same command line, run in this process (a thread: it runs its own event loop)."""
    from typer.testing import CliRunner

    from bot.bootstrap import build_cli

    env = {"CONCORDER_DATABASE_URL": db.url, "COLUMNS": "200", "CONCORDER_ASSEMBLY": None}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        result = await asyncio.to_thread(CliRunner().invoke, build_cli(), list(args), env=env)
    finally:
        os.chdir(cwd)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


async def test_select_replace_and_verify_from_the_command_line(sqlite_db, tmp_path):
    db = sqlite_db
    rng = random.Random(9)
    people = [
        Respondent(
            f"P{i:05d}",
            f"H{i}",
            {
                "age": rng.choice(["16-29", "30-49", "50-64", "65+"]),
                "gender": ["woman", "man"][i % 2],
                "travel": rng.choice(["car", "bus", "bike"]),
                "area": "north",
            },
        )
        for i in range(12)
    ]
    await registered_pool_with_phones(db, people)
    (tmp_path / "quotas.toml").write_text(QUOTAS_TOML)
    common = ["--quotas", "quotas.toml", "--assembly", str(EXAMPLE)]

    code, out, err = await concorder_process(
        db, tmp_path, "select", "--seed", "1", "--algorithm", "leximin", "--dry-run", *common
    )
    assert code == 0 and "Traceback" not in err + out, err
    assert "Selection probabilities of the 12 respondents" in out and "Dry run" in out
    # Not a terminal: the solver's progress comes as plain lines with the elapsed time.
    assert re.search(r"\[ +\d+\.\d s\] leximin: \d+ kinds of people", err), err

    code, out, err = await concorder(
        db,
        tmp_path,
        "select",
        "--seed",
        "2027",
        "--algorithm",
        "legacy",
        "--estimate-draws",
        "30",
        "--dry-run",
        *common,
    )
    assert code == 0, err
    assert "Dry run" in out and "woman" in out and "Reserve, in order (2)" in out
    assert "estimated from 30 draws" in out
    async with db.sessions() as session:
        assert (await session.execute(select(Selection))).first() is None

    code, out, err = await concorder(
        db,
        tmp_path,
        "select",
        "--seed",
        "2027",
        "--algorithm",
        "legacy",
        "--estimate-draws",
        "30",
        *common,
    )
    assert code == 0, err
    assert "Nobody has been told yet" in out  # telling people is its own step
    async with db.sessions() as session:
        assert (await session.execute(select(OutboxMessage))).first() is None
    code, out, err = await concorder(db, tmp_path, "notify-draw", "--assembly", str(EXAMPLE))
    assert code == 0, err
    assert "4 selected" in out and "2 reserve" in out and "6 not selected" in out
    async with db.sessions() as session:
        rows = {r.participant_id: r for r in (await session.execute(select(Selection))).scalars()}
    panel = sorted(pid for pid, r in rows.items() if r.status == SELECTED)
    assert len(panel) == 4 and all(rows[pid].confirm_by is not None for pid in panel)

    code, out, err = await concorder(
        db,
        tmp_path,
        "replace",
        panel[0],
        "--seed",
        "5",
        "--algorithm",
        "legacy",
        "--assembly",
        str(EXAMPLE),
    )
    assert code == 0, err
    assert "1 selected" in out
    async with db.sessions() as session:
        rows = {r.participant_id: r for r in (await session.execute(select(Selection))).scalars()}
    assert rows[panel[0]].status == DECLINED
    assert sum(1 for r in rows.values() if r.status == SELECTED) == 4

    code, out, err = await concorder(db, tmp_path, "select", "--verify")
    assert code == 0, err
    assert out.count("same result") == 2

    async with db.sessions.begin() as session:
        run = (await session.execute(select(DrawRun).where(DrawRun.kind == "select"))).scalar_one()
        run.result = {**run.result, "reserve": list(reversed(run.result["reserve"]))}
    code, out, err = await concorder(db, tmp_path, "select", "--verify")
    assert code == 1
    assert "reserve: same people in another order" in err


async def test_transparent_lottery_from_the_command_line(sqlite_db, tmp_path):
    db = sqlite_db
    people = [
        Respondent(
            f"P{i:05d}",
            f"H{i}",
            {"age": "30-49", "gender": ["woman", "man"][i % 2], "travel": "bus", "area": "north"},
        )
        for i in range(10)
    ]
    await registered_pool_with_phones(db, people)
    (tmp_path / "quotas.toml").write_text(
        QUOTAS_TOML.replace("reserve_size = 2", "reserve_size = 0")
    )
    common = ["--quotas", "quotas.toml", "--assembly", str(EXAMPLE)]

    code, out, err = await concorder(
        db, tmp_path, "select", "--seed", "31", "--panels", "3", "--publish", "panels.json", *common
    )
    assert code == 0, err
    published = json.loads((tmp_path / "panels.json").read_text())
    hashes = [p["sha256"] for p in published["panels"]]
    assert len(hashes) == 3 and published["list_sha256"] == draw.panel_list_hash(hashes)
    assert all(draw.panel_hash(p["members"]) == p["sha256"] for p in published["panels"])
    async with db.sessions() as session:
        event = (
            await session.execute(
                select(AuditEvent).where(AuditEvent.kind == "draw.panels_published")
            )
        ).scalar_one()
        assert (await session.execute(select(Selection))).first() is None
    assert event.data["panel_list_sha256"] == published["list_sha256"]

    # A second list cannot be drawn while this one awaits its pick.
    code, out, err = await concorder(db, tmp_path, "select", "--seed", "32", *common)
    assert code == 1 and "awaits its pick" in err

    code, out, err = await concorder(
        db, tmp_path, "select", "--pick-seed", "EuroMillions 5 17", "--assembly", str(EXAMPLE)
    )
    assert code == 0, err
    chosen = published["panels"][draw.pick_index("EuroMillions 5 17", 3)]
    async with db.sessions() as session:
        selected = sorted(
            r.participant_id for r in (await session.execute(select(Selection))).scalars()
        )
    assert selected == chosen["members"]
    assert f"panel {chosen['index']} of 3" in out
