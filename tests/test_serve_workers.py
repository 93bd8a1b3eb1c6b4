"""`concorder serve --workers N`: the real command in a subprocess, N processes on one port
and one PostgreSQL database; a worker killed is replaced; a stop ends them all."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time

import aiohttp
import pytest
from sqlalchemy import func, select

from store.db import make_engine
from store.models import InboundMessage
from tests.conftest import truncate_pg
from tests.test_serve_errors import CONCORDER, free_port, serve


def workers_of(parent: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == parent and fields[0] != "Z":
                found.add(int(entry))
    return found


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if found := condition():
            return found
        time.sleep(0.1)
    pytest.fail(f"{what} within {seconds} s")


async def post_messages(base: str, tag: str, count: int) -> list[int]:
    async with aiohttp.ClientSession() as http:

        async def one(n: int) -> int:
            body = {"channel": "sms", "address": f"+44770090{n:04d}", "text": f"hello {tag}"}
            async with http.post(f"{base}/simulator/api/messages", json=body) as response:
                return response.status

        return await asyncio.gather(*(one(n) for n in range(count)))


async def stored(url: str, tag: str) -> int:
    """Messages of this test's batch stored (the session's database is shared)."""
    engine = make_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.scalar(
                select(func.count())
                .select_from(InboundMessage)
                .where(InboundMessage.text == f"hello {tag}")
            )
    finally:
        await engine.dispose()


@pytest.fixture
def env(pg_url) -> dict[str, str]:
    """A `serve` on the session's PostgreSQL database, emptied first: the service makes its
    own secret key in the test's folder, which the key an earlier test left recorded there
    would not match."""

    async def empty() -> None:
        engine = make_engine(pg_url)
        try:
            await truncate_pg(engine)
        finally:
            await engine.dispose()

    asyncio.run(empty())
    kept = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CONCORDER_", "TELEGRAM_", "TWILIO_"))
    }
    return {**kept, "CONCORDER_DATABASE_URL": pg_url}


def test_two_workers_serve_one_port_and_a_killed_one_is_replaced(pg_url, env, tmp_path):
    port = free_port()
    command = [str(CONCORDER), "serve", "--port", str(port), "--workers", "2"]
    service = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        first = wait_for(lambda: len(w := workers_of(service.pid)) == 2 and w, 60, "two workers")
        statuses = asyncio.run(post_messages(base, "a", 40))
        assert statuses == [202] * 40
        assert asyncio.run(stored(pg_url, "a")) == 40

        os.kill(min(first), signal.SIGKILL)  # one worker dies mid-service
        wait_for(
            lambda: len(w := workers_of(service.pid)) == 2 and w != first and w,
            30,
            "a new worker in place of the killed one",
        )
        statuses = asyncio.run(post_messages(base, "b", 40))
        assert statuses == [202] * 40
        assert asyncio.run(stored(pg_url, "b")) == 40

        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=20) == 0
        assert workers_of(service.pid) == set()
    finally:
        if service.poll() is None:
            service.kill()  # its workers follow it (they stop when their parent dies)
            service.wait()


def test_workers_stop_when_their_parent_is_killed(env, tmp_path):
    """kill -9 of the parent leaves no worker serving on its own."""
    command = [str(CONCORDER), "serve", "--port", str(free_port()), "--workers", "2"]
    service = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL)
    workers = wait_for(lambda: len(w := workers_of(service.pid)) == 2 and w, 60, "two workers")
    service.kill()
    service.wait()

    def gone() -> bool:
        return not any(os.path.exists(f"/proc/{pid}") and _alive(pid) for pid in workers)

    wait_for(gone, 20, "the workers stopped after their parent was killed")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def test_more_than_one_worker_on_sqlite_is_refused_plainly(tmp_path):
    code, output, took = serve(tmp_path, "--workers", "2", "--port", str(free_port()))
    assert code == 1 and took < 20
    assert "Traceback" not in output
    assert output.startswith("Cannot start: --workers 2 needs PostgreSQL"), output
