"""Shared fixtures: a migrated database on SQLite and on PostgreSQL, settings to match.

PostgreSQL is expected at 127.0.0.1:5432 (user postgres, trust auth); each test run creates
a database of its own and drops it at the end. Set CONCORDER_TEST_PG to point elsewhere.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.settings import Settings
from store.db import make_engine, sessionmaker, upgrade
from store.models import Base

PG_SERVER = os.environ.get("CONCORDER_TEST_PG", "postgres@127.0.0.1:5432")
# Command output is read by the tests: give rich a wide, fixed terminal whatever runs them.
os.environ["COLUMNS"] = "200"


@dataclass
class Database:
    url: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name


def _pg_admin(sql: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(f"postgresql://{PG_SERVER}/postgres", timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    # Session fixtures may be first requested from inside a running loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_url():
    name = f"concorder_test_{uuid.uuid4().hex[:10]}"
    try:
        _pg_admin(f'CREATE DATABASE "{name}"')
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        pytest.fail(
            f"PostgreSQL did not answer at {PG_SERVER} ({exc}). Start it, or point "
            "CONCORDER_TEST_PG at one (user@host:port).",
            pytrace=False,
        )
    url = f"postgresql+asyncpg://{PG_SERVER}/{name}"
    upgrade(url)
    yield url
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def truncate_pg(engine: AsyncEngine) -> None:
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request, tmp_path) -> Database:
    """A freshly migrated, empty database; the test runs once on each backend."""
    if request.param == "sqlite":
        path = tmp_path / "concorder.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url = f"sqlite+aiosqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_url")
    engine = make_engine(url)
    if request.param == "postgresql":
        await truncate_pg(engine)
    yield Database(url, engine, sessionmaker(engine))
    await engine.dispose()


@pytest.fixture
async def sqlite_db(tmp_path, sqlite_template) -> Database:
    """SQLite only, for tests about the embedded default."""
    path = tmp_path / "concorder.db"
    shutil.copy(sqlite_template, path)
    url = f"sqlite+aiosqlite:///{path}"
    engine = make_engine(url)
    yield Database(url, engine, sessionmaker(engine))
    await engine.dispose()


@pytest.fixture
def settings(db) -> Settings:
    """Settings on the test database with no real channel configured (all simulated)."""
    return Settings(CONCORDER_DATABASE_URL=db.url, _env_file=None)


EXAMPLE_ASSEMBLY = Path(__file__).resolve().parent.parent / "examples" / "citizens-jury"


@pytest.fixture
def assembly():
    """The example assembly (the `relay` of a test that asks for both runs it)."""
    from flows.assembly import load_assembly

    return load_assembly(EXAMPLE_ASSEMBLY / "assembly.toml")


@pytest.fixture
def relay(request, settings, db):
    """The application built as the service builds it, on the test database; with the
    example assembly when the test asks for `assembly`, with the test calendar when it
    asks for `calendar`."""
    from bot.bootstrap import build

    assembly = request.getfixturevalue("assembly") if "assembly" in request.fixturenames else None
    calendar = request.getfixturevalue("calendar") if "calendar" in request.fixturenames else None
    return build(settings, assembly=assembly, calendar=calendar, sessions=db.sessions)
