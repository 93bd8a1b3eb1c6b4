"""How the dispatcher opens its transactions, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from store.db import sqlite_file_engine

T = TypeVar("T")


class Transactions:
    """Opens the dispatcher's transactions; on SQLite one at a time.

    SQLite has one writer (every transaction begins IMMEDIATE); two of ours contending
    would sleep in SQLite's busy handler instead of queueing here in order.
    """

    def __init__(self, sessions: async_sessionmaker[AsyncSession]):
        self.sessions = sessions
        bind = sessions.kw.get("bind")
        self.serial = bind is None or bind.dialect.name == "sqlite"
        self.postgres = bind is not None and bind.dialect.name == "postgresql"
        self._lock: asyncio.Lock | None = None
        self._held: AsyncConnection | None = None
        # SQLite on a file: the loop's transactions run whole in a thread of their own.
        self._file: Engine | None = (
            sqlite_file_engine(bind) if isinstance(bind, AsyncEngine) else None
        )
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None
        self._file_held: Connection | None = None

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """`work(connection, *args)` in one transaction on the loop's own connection.

        On an SQLite file the whole transaction runs in one call to a thread of its own,
        on a synchronous connection: aiosqlite hands every statement, fetch and cursor to
        its thread and back (each a wake-up of the event loop), a dozen hand-overs for
        what is here one. Elsewhere it runs on the held asynchronous connection.
        """
        if self._file is None:
            async with self.held() as connection:
                return await connection.run_sync(work, *args)
        if self._thread is None:
            self._thread = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="outbox-transactions"
            )
        loop = asyncio.get_running_loop()
        async with self._serialised():
            return await loop.run_in_executor(self._thread, self._in_thread, work, args)

    def _in_thread(self, work: Callable[..., T], args: tuple[Any, ...]) -> T:
        assert self._file is not None
        if self._file_held is None:
            self._file_held = self._file.connect()
        try:
            with self._file_held.begin():
                return work(self._file_held, *args)
        except BaseException:
            self._close_in_thread()
            raise

    def _close_in_thread(self) -> None:
        connection, self._file_held = self._file_held, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncSession]:
        if not self.serial:
            async with self.sessions.begin() as session:
                yield session
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock, self.sessions.begin() as session:
            yield session

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A Core transaction for the hot path: no ORM session to build and tear down."""
        engine = self.sessions.kw.get("bind")
        if not isinstance(engine, AsyncEngine):
            async with self.begin() as session:
                yield await session.connection()
            return
        async with self._serialised(), engine.begin() as connection:
            yield connection

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[AsyncConnection]:
        """Like `connect`, on one connection kept open from call to call (the loop's own):
        no pool check-out and reset per transaction. Any error closes it; the next call
        opens a fresh one."""
        engine = self.sessions.kw.get("bind")
        if not isinstance(engine, AsyncEngine):
            async with self.connect() as connection:
                yield connection
            return
        async with self._serialised():
            if self._held is None:
                self._held = await engine.connect()
            try:
                async with self._held.begin():
                    yield self._held
            except BaseException:
                await self.release()
                raise

    async def release(self) -> None:
        connection, self._held = self._held, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.get_running_loop().run_in_executor(thread, self._close_file)
            thread.shutdown(wait=False)

    def _close_file(self) -> None:
        """Close the thread's connection and the file engine's pool: the file is let go."""
        self._close_in_thread()
        if self._file is not None:
            self._file.dispose()

    @contextlib.asynccontextmanager
    async def _serialised(self) -> AsyncIterator[None]:
        if not self.serial:
            yield
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            yield
