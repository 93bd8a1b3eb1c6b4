"""`concorder status` per category: registered, selected and confirmed people per value of
each quota category (or each registration question when the assembly has no quotas)."""

from __future__ import annotations

import asyncio
import re
from types import SimpleNamespace

from sqlalchemy import select
from typer.testing import CliRunner

from bot.bootstrap import build, build_cli
from bot.services import recruitment
from bot.settings import Settings
from flows.assembly import load_assembly
from store.db import make_engine, sessionmaker, upgrade
from store.recruitment import CONFIRMED, DECLINED, SELECTED, Selection
from tests import test_recruitment_flows as flows_tests
from tests.test_recruitment_flows import EXAMPLE, PHONE, PHONE_FR, _register, invitation_of, say

# Three people invited to the example assembly (see tests/test_recruitment_flows.py).
invited = flows_tests.invited


async def register_two_and_draw(db, relay) -> None:
    """PHONE (age 30-49 from the pool) confirms her place; PHONE_FR (16-29) is selected and
    has not answered yet. Both answer 'car' and 'woman'."""
    await _register(db, relay, PHONE)
    await _register(db, relay, PHONE_FR)
    first = (await invitation_of(db, PHONE)).participant_id
    second = (await invitation_of(db, PHONE_FR)).participant_id
    async with db.sessions.begin() as session:
        session.add(Selection(participant_id=first, draw_id="d1", status=CONFIRMED))
        session.add(Selection(participant_id=second, draw_id="d1", status=SELECTED))


def rows(categories) -> dict[tuple[str, str], tuple[int, int, int]]:
    return {
        (c.category, value): (c.registered[value], c.selected[value], c.confirmed[value])
        for c in categories
        for value in c.values
    }


async def test_counts_per_quota_category(db, relay, invited, assembly):
    await register_two_and_draw(db, relay)
    async with db.sessions() as session:
        categories = await recruitment.funnel_by_category(session, assembly)
    # The quota categories of the example, in its order; values in the assembly's order.
    assert [c.category for c in categories] == ["region", "age", "gender"]
    assert categories[1].values == ["16-29", "30-49", "50-64", "65+"]
    counts = rows(categories)
    assert counts[("age", "30-49")] == (1, 1, 1)  # known from the pool file
    assert counts[("age", "16-29")] == (1, 1, 0)  # answered in the conversation
    assert counts[("age", "65+")] == (0, 0, 0)
    assert counts[("gender", "woman")] == (2, 2, 1)
    # Nobody's pool row gave a region: they show as such, not lost.
    assert counts[("region", recruitment.NO_VALUE)] == (2, 2, 1)
    assert counts[("region", "north")] == (0, 0, 0)

    # A place declined leaves the selected; a withdrawal leaves every count.
    async with db.sessions.begin() as session:
        chosen = await session.scalar(select(Selection).where(Selection.status == SELECTED))
        chosen.status = DECLINED
    await say(db, relay, PHONE, "withdraw")
    await say(db, relay, PHONE, "1")  # a confirmed member is asked first
    async with db.sessions() as session:
        counts = rows(await recruitment.funnel_by_category(session, assembly))
    assert counts[("age", "16-29")] == (1, 0, 0)
    assert counts[("age", "30-49")] == (0, 0, 0)


async def test_without_quotas_every_registration_question_is_a_category(
    db, relay, invited, assembly
):
    await register_two_and_draw(db, relay)
    plain = assembly.model_copy(update={"selection": None})
    async with db.sessions() as session:
        categories = await recruitment.funnel_by_category(session, plain)
    assert [c.category for c in categories] == ["age", "travel", "gender"]
    counts = rows(categories)
    assert counts[("travel", "car")] == (2, 2, 1)
    assert counts[("travel", "bike")] == (0, 0, 0)


def test_the_status_command_prints_the_table_per_category(tmp_path, monkeypatch):
    url = f"sqlite+aiosqlite:///{tmp_path}/status.db"
    upgrade(url)
    settings = Settings(CONCORDER_DATABASE_URL=url, _env_file=None)

    async def prepare() -> None:
        example = load_assembly(EXAMPLE / "assembly.toml")
        pool = tmp_path / "pool.csv"
        pool.write_text(f"phone,language,household,age\n{PHONE},en,H1,30-49\n{PHONE_FR},fr,H2,\n")
        engine = make_engine(url)
        try:
            db = SimpleNamespace(sessions=sessionmaker(engine))
            parsed = recruitment.parse_pool(pool, example)
            await recruitment.import_pool(db.sessions, example, parsed.rows)
            await recruitment.send_invitations(db.sessions, settings, example, "JuryBot")
            relay = build(settings, assembly=example, sessions=db.sessions)
            await register_two_and_draw(db, relay)
        finally:
            await engine.dispose()

    asyncio.run(prepare())
    monkeypatch.setenv("CONCORDER_DATABASE_URL", url)
    monkeypatch.setenv("CONCORDER_ASSEMBLY", str(EXAMPLE / "assembly.toml"))
    result = CliRunner().invoke(build_cli(), ["status"])
    assert result.exit_code == 0, result.output
    assert "By category" in result.output
    cells = r"\s*│\s*"
    assert re.search(rf"age{cells}16-29{cells}1{cells}1{cells}0\s*│", result.output)
    assert re.search(rf"│{cells}30-49{cells}1{cells}1{cells}1\s*│", result.output)
    assert re.search(rf"gender{cells}woman{cells}2{cells}2{cells}1\s*│", result.output)
    assert re.search(rf"region{cells}north{cells}0{cells}0{cells}0\s*│", result.output)
