"""The benches' scratch databases: a temporary SQLite file, a PostgreSQL database of their own
(created, migrated, and dropped afterwards), or an empty database the caller names."""

from __future__ import annotations

import tempfile
import uuid


class Database:
    """`async with Database("sqlite" | "postgresql", pg_server, url=None) as db`: db.url,
    db.engine, db.sessions; `url` (an empty database) replaces the scratch one."""

    def __init__(self, kind: str, pg_server: str | None = None, url: str | None = None):
        self.kind, self.pg_server, self.given = kind, pg_server, url
        self.tmp = tempfile.TemporaryDirectory(prefix="concorder-bench-")
        self.name = f"concorder_bench_{uuid.uuid4().hex[:8]}"
        self.engine = None
        self.created = False

    async def __aenter__(self) -> Database:
        from store.db import make_engine, sessionmaker, upgrade_async

        if self.given:
            self.url = self.given
        elif self.kind == "sqlite":
            self.url = f"sqlite+aiosqlite:///{self.tmp.name}/bench.db"
        else:
            await pg_admin(self.pg_server, f'CREATE DATABASE "{self.name}"')
            self.created = True
            self.url = f"postgresql+asyncpg://{self.pg_server}/{self.name}"
        await upgrade_async(self.url)
        self.engine = make_engine(self.url)
        self.sessions = sessionmaker(self.engine)
        return self

    async def __aexit__(self, *exc) -> None:
        if self.engine is not None:
            await self.engine.dispose()
        if self.created:
            await pg_admin(self.pg_server, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.tmp.cleanup()


async def pg_admin(server: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(f"postgresql://{server}/postgres", timeout=3)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def pg_reachable(server: str) -> bool:
    try:
        await pg_admin(server, "SELECT 1")
        return True
    except Exception:
        return False
