"""Engines, sessions and schema upgrades for SQLite (embedded) and PostgreSQL."""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
DEFAULT_URL = "sqlite+aiosqlite:///concorder.db"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def dialect_insert(session: AsyncSession, table):
    """An INSERT on `table` (a model or Table) in the session's dialect, so that
    `.on_conflict_do_nothing(...)` is there: what several instances racing to store one
    row use, the second doing nothing instead of failing."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def make_engine(url: str = DEFAULT_URL, **kwargs) -> AsyncEngine:
    # SQL parameters carry message text and phone numbers: keep them out of error text/logs.
    kwargs.setdefault("hide_parameters", True)
    if is_sqlite(url):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        _sqlite_setup(engine.sync_engine)
        return engine
    kwargs.setdefault("pool_size", 10)
    return create_async_engine(url, **kwargs)


def sqlite_file_engine(engine: AsyncEngine) -> Engine | None:
    """A synchronous engine on the same SQLite file as `engine`, set up alike, for work that
    runs whole in a thread of its own; None when `engine` is not on an SQLite file."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    sync = create_engine(
        url.set(drivername="sqlite"),
        hide_parameters=True,
        connect_args={"timeout": 30, "check_same_thread": False},
    )
    _sqlite_setup(sync)
    return sync


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn, _record):
        # We issue BEGIN ourselves (below); WAL lets the dispatcher read while a webhook
        # writes; foreign keys are off by default in SQLite.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # Deleted and overwritten rows are zeroed on disk, not left in free space: an
        # erased person's number or words must not survive in the file.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn):
        # Take the write lock at BEGIN so two writers queue instead of deadlocking.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade(url: str = DEFAULT_URL, revision: str = "heads") -> None:
    """Bring the schema up to date. Safe to run on every start."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        command.upgrade(alembic_config(url), revision)
        return
    # Migrations run their own event loop; inside a running one they need a thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(command.upgrade, alembic_config(url), revision).result()


async def upgrade_async(url: str = DEFAULT_URL) -> None:
    await asyncio.to_thread(upgrade, url)
