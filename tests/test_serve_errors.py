"""`concorder serve` that cannot start says why in a sentence and exits at once, before it
listens: a port in use, a broken assembly file, a database that is missing or a server that
does not answer. The real command, in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import PG_SERVER

CONCORDER = Path(sys.executable).parent / "concorder"


def serve(tmp_path: Path, *args: str, **env: str) -> tuple[int, str, float]:
    """Run `concorder serve`; its exit code, everything it printed, and how long it took."""
    settings = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CONCORDER_", "TELEGRAM_", "TWILIO_"))
    }
    settings.setdefault("CONCORDER_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}")
    settings.update(env)
    started = time.monotonic()
    try:
        done = subprocess.run(
            [str(CONCORDER), "serve", *args],
            cwd=tmp_path,
            env=settings,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("concorder serve was still running after 60 s")
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_one_clear_sentence(code: int, output: str, took: float, sentence: str) -> None:
    assert code != 0
    assert took < 20
    assert "Traceback" not in output and "Concorder Relay on" not in output, output
    assert output.strip() == sentence


def test_a_port_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, output, took = serve(tmp_path, "--port", str(port))
    assert_one_clear_sentence(
        code,
        output,
        took,
        f"Cannot start: Port {port} is already in use on 127.0.0.1 (is another concorder serve "
        f"running?): stop what uses it, or choose another port with --port.",
    )


def test_a_broken_assembly_file_names_its_problems(tmp_path):
    assembly = tmp_path / "assembly.toml"
    assembly.write_text('[assembly]\nname = "Riverside"\nlanguages = ["en", "de"]\n')
    code, output, took = serve(
        tmp_path, "--port", str(free_port()), CONCORDER_ASSEMBLY=str(assembly)
    )
    assert code == 2 and took < 20
    assert "Traceback" not in output and "Concorder Relay on" not in output, output
    lines = output.strip().splitlines()
    assert lines[0] == f"The assembly file in {assembly} cannot be used:"
    assert (
        "  - assembly (line 1): language 'de' has no translation catalog (available: en, "
        "es, fr)" in lines
    )
    assert "  - consent: Field required" in lines
    assert len(lines) < 10


def test_a_postgresql_database_that_does_not_exist(tmp_path):
    name = f"concorder_missing_{uuid.uuid4().hex[:8]}"
    code, output, took = serve(
        tmp_path,
        "--port",
        str(free_port()),
        CONCORDER_DATABASE_URL=f"postgresql+asyncpg://{PG_SERVER}/{name}",
    )
    server = PG_SERVER.rpartition("@")[2]
    assert_one_clear_sentence(
        code,
        output,
        took,
        f"Cannot start: The database '{name}' does not exist on the PostgreSQL server at "
        f"{server}: create it (createdb {name}) or name another one in CONCORDER_DATABASE_URL.",
    )


def test_a_postgresql_server_that_does_not_answer(tmp_path):
    port = free_port()  # nothing listens there
    code, output, took = serve(
        tmp_path,
        "--port",
        str(free_port()),
        CONCORDER_DATABASE_URL=f"postgresql+asyncpg://relay:secret@127.0.0.1:{port}/relay",
    )
    assert_one_clear_sentence(
        code,
        output,
        took,
        f"Cannot start: No PostgreSQL server answers at 127.0.0.1:{port}: start it, or correct "
        f"the host and port in CONCORDER_DATABASE_URL.",
    )
    assert "secret" not in output
