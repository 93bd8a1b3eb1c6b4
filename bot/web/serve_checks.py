"""What `concorder serve` checks before it starts: the database answers, and the address is
free to listen on. Each problem is one sentence that says what to do, never a traceback.
"""

from __future__ import annotations

import asyncio
import errno
import socket

from sqlalchemy import URL, create_engine, make_url
from sqlalchemy.exc import ArgumentError, InvalidRequestError, NoSuchModuleError
from sqlalchemy.ext.asyncio import create_async_engine

# PostgreSQL's codes for a database that does not exist and for a refused login.
_NO_SUCH_DATABASE = "3D000"
_LOGIN_REFUSED = ("28P01", "28000")
URL_HELP = (
    "use sqlite+aiosqlite:///FILE or postgresql+asyncpg://USER@HOST:PORT/DATABASE in "
    "CONCORDER_DATABASE_URL"
)


class NotReady(Exception):
    """Why the service cannot start, in one sentence for the person starting it."""


def check_database(url: str, timeout: float = 10.0) -> None:
    """Connect once; NotReady names what is wrong. The password is never shown."""
    try:
        parsed = make_url(url)
        asyncio.run(asyncio.wait_for(_connect(parsed, timeout), timeout))
    except (ArgumentError, NoSuchModuleError, InvalidRequestError, ImportError, ValueError):
        raise NotReady(f"The database URL is not one this service can use: {URL_HELP}.") from None
    except Exception as exc:  # noqa: BLE001  (every failure becomes a sentence)
        raise NotReady(_database_problem(parsed, exc)) from None


async def _connect(url: URL, timeout: float) -> None:
    if url.get_backend_name() == "sqlite":
        # The standard driver, in this thread: aiosqlite's worker thread outlives a failed
        # open and prints a traceback of its own once the loop has closed.
        engine = create_engine(url.set(drivername="sqlite"), hide_parameters=True)
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        finally:
            engine.dispose()
        return
    engine = create_async_engine(url, hide_parameters=True, connect_args={"timeout": timeout})
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")
    finally:
        await engine.dispose()


def _database_problem(url: URL, exc: BaseException) -> str:
    if url.get_backend_name() == "sqlite":
        return (
            f"The SQLite database file {url.database!r} cannot be opened: check that its "
            f"folder exists and can be written, or set CONCORDER_DATABASE_URL."
        )
    server = f"{url.host or 'localhost'}:{url.port or 5432}"
    code = _sqlstate(exc)
    if code == _NO_SUCH_DATABASE:
        return (
            f"The database {url.database!r} does not exist on the PostgreSQL server at "
            f"{server}: create it (createdb {url.database}) or name another one in "
            f"CONCORDER_DATABASE_URL."
        )
    if code in _LOGIN_REFUSED:
        return (
            f"The PostgreSQL server at {server} refused the user {url.username!r}: check "
            f"the user and password in CONCORDER_DATABASE_URL."
        )
    if isinstance(exc, OSError | TimeoutError):  # refused, unknown host, no answer
        return (
            f"No PostgreSQL server answers at {server}: start it, or correct the host "
            f"and port in CONCORDER_DATABASE_URL."
        )
    return (
        f"The PostgreSQL server at {server} did not let the service in "
        f"({type(exc).__name__}): check CONCORDER_DATABASE_URL."
    )


def _sqlstate(exc: BaseException | None) -> str | None:
    """The PostgreSQL error code anywhere in the chain (SQLAlchemy wraps asyncpg's error)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
        if code:
            return str(code)
        exc = getattr(exc, "orig", None) or exc.__cause__
    return None


BACKLOG = 128  # aiohttp's own


def listen(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to every address of `host` on `port`, for aiohttp to serve on."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError):
        raise NotReady(
            f"{host!r} is not an address this machine can listen on: give --host "
            f"an address such as 127.0.0.1 or 0.0.0.0."
        ) from None
    sockets: list[socket.socket] = []
    for family, kind, proto, _, address in dict.fromkeys(addresses):
        sock = socket.socket(family, kind, proto)
        sockets.append(sock)
        # As asyncio would: a restart may reuse a port still in TIME_WAIT; IPv6 stays IPv6.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            for opened in sockets:
                opened.close()
            raise NotReady(_listen_problem(exc, host, port)) from None
        # Listening at once: a request that comes while the application (or a worker
        # process) starts waits in the backlog instead of being refused.
        sock.listen(BACKLOG)
    return sockets


def _listen_problem(exc: OSError, host: str, port: int) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"Port {port} is already in use on {host} (is another "
            f"concorder serve running?): stop what uses it, or choose another port with "
            f"--port."
        )
    if exc.errno == errno.EACCES:
        return (
            f"This system lets only administrators listen on port {port}: choose a port "
            f"above 1023 with --port."
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"{host!r} is not an address of this machine: give --host "
            f"an address such as 127.0.0.1 or 0.0.0.0."
        )
    return f"Cannot listen on {host} port {port} ({exc.strerror}): choose another --host or --port."
