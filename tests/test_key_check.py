"""A process with another secret key than the one the database was first used with refuses
to start, saying what to do, instead of silently making links, pseudonyms and opt-out marks
that the rest of the service does not recognise."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot.bootstrap import build_cli, create_app
from bot.services import key_check
from bot.services.invite_codes import KEY_FILE
from bot.settings import Settings
from store.db import make_engine, sessionmaker, upgrade
from store.models import KeyFingerprint
from tests.test_serve_errors import free_port, serve

SERVICE_KEY = "the-service-key-0123456789abcdefghijklmnop"
OTHER_KEY = "a-stray-key-0123456789abcdefghijklmnopqrstu"


def keyed(db, key: str | None) -> Settings:
    return Settings(CONCORDER_DATABASE_URL=db.url, CONCORDER_SECRET_KEY=key, _env_file=None)


def concorder(db, tmp_path, monkeypatch, *args: str, key: str | None):
    """A `concorder` command run from `tmp_path`, as the console script builds it."""
    monkeypatch.chdir(tmp_path)
    env = {"CONCORDER_DATABASE_URL": db.url, "CONCORDER_SECRET_KEY": key}
    return CliRunner().invoke(build_cli(), list(args), env=env)


async def recorded(db) -> list[str]:
    async with db.sessions() as session:
        return list(await session.scalars(select(KeyFingerprint.fingerprint)))


async def test_a_command_with_the_services_key_runs_and_another_key_is_refused(
    db, tmp_path, monkeypatch
):
    ran = await asyncio.to_thread(
        concorder, db, tmp_path, monkeypatch, "outbox", "status", key=SERVICE_KEY
    )
    assert ran.exit_code == 0 and "The outbox is empty" in ran.output, ran.output
    again = await asyncio.to_thread(
        concorder, db, tmp_path, monkeypatch, "outbox", "status", key=SERVICE_KEY
    )
    assert again.exit_code == 0, again.output

    refused = await asyncio.to_thread(
        concorder, db, tmp_path, monkeypatch, "outbox", "status", key=OTHER_KEY
    )
    assert refused.exit_code == 1
    said = " ".join(refused.output.split())
    assert said.startswith(
        "Cannot start: This database was first used with another secret key "
        "(CONCORDER_SECRET_KEY is set to another key)."
    ), said
    assert "Set CONCORDER_SECRET_KEY to the key the service uses on this database" in said
    assert "The outbox is empty" not in said
    assert OTHER_KEY not in said and SERVICE_KEY not in said
    assert await recorded(db) == [key_check.fingerprint(SERVICE_KEY.encode())]


async def test_a_command_without_the_key_says_where_the_key_file_was_expected_and_makes_none(
    db, tmp_path, monkeypatch
):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    await key_check.checked_key(keyed(db, SERVICE_KEY), db.sessions)

    refused = await asyncio.to_thread(
        concorder, db, elsewhere, monkeypatch, "outbox", "status", key=None
    )
    assert refused.exit_code == 1
    beside = tmp_path if db.dialect == "sqlite" else elsewhere  # the SQLite file, or here
    assert (
        f"(CONCORDER_SECRET_KEY is not set and there is no key file at {beside / KEY_FILE})"
        in refused.output
    ), refused.output
    assert not (elsewhere / KEY_FILE).exists()


async def test_serve_does_not_start_with_another_key(db, aiohttp_client):
    first = await aiohttp_client(create_app(keyed(db, SERVICE_KEY), migrate=False, dispatch=False))
    assert (await first.get("/healthz")).status == 200

    with pytest.raises(key_check.WrongKey) as refused:
        await aiohttp_client(create_app(keyed(db, OTHER_KEY), migrate=False, dispatch=False))
    assert "Set CONCORDER_SECRET_KEY to the key the service uses" in str(refused.value)
    assert OTHER_KEY not in str(refused.value) and SERVICE_KEY not in str(refused.value)


async def test_a_database_used_before_the_check_records_its_key_on_first_use(db):
    assert await recorded(db) == []
    key = await key_check.checked_key(keyed(db, SERVICE_KEY), db.sessions)
    assert key == SERVICE_KEY.encode()
    assert await recorded(db) == [key_check.fingerprint(key)]


async def test_instances_starting_at_once_record_one_fingerprint_and_agree(db):
    engines = [make_engine(db.url) for _ in range(4)]
    try:
        keys = await asyncio.gather(
            *(key_check.checked_key(keyed(db, SERVICE_KEY), sessionmaker(e)) for e in engines)
        )
    finally:
        for engine in engines:
            await engine.dispose()
    assert keys == [SERVICE_KEY.encode()] * 4
    assert await recorded(db) == [key_check.fingerprint(SERVICE_KEY.encode())]


async def test_of_two_keys_racing_to_a_new_database_exactly_one_wins(db):
    engines = [make_engine(db.url) for _ in range(2)]
    try:
        results = await asyncio.gather(
            *(
                key_check.checked_key(keyed(db, key), sessionmaker(engine))
                for key, engine in zip((SERVICE_KEY, OTHER_KEY), engines, strict=True)
            ),
            return_exceptions=True,
        )
    finally:
        for engine in engines:
            await engine.dispose()
    won = [r for r in results if isinstance(r, bytes)]
    lost = [r for r in results if isinstance(r, key_check.WrongKey)]
    assert len(won) == 1 and len(lost) == 1, results
    assert await recorded(db) == [key_check.fingerprint(won[0])]


async def test_the_fingerprint_reveals_nothing_of_the_key(db):
    await key_check.checked_key(keyed(db, SERVICE_KEY), db.sessions)
    async with db.sessions() as session:
        row = (await session.scalars(select(KeyFingerprint))).one()
    key = SERVICE_KEY.encode()
    plain = {hashlib.new(name, key).hexdigest() for name in ("md5", "sha1", "sha256", "sha512")}
    assert SERVICE_KEY not in row.fingerprint and row.fingerprint not in plain
    assert len(row.fingerprint) == 64
    # Another key gives another fingerprint; the same key always the same one.
    assert key_check.fingerprint(OTHER_KEY.encode()) != row.fingerprint
    assert key_check.fingerprint(key) == row.fingerprint


def test_concorder_serve_with_another_key_says_so_and_exits(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}"
    upgrade(url)

    async def first_use():
        engine = make_engine(url)
        try:
            settings = Settings(CONCORDER_DATABASE_URL=url, _env_file=None)
            await key_check.checked_key(settings, sessionmaker(engine))  # the key file beside
        finally:
            await engine.dispose()

    asyncio.run(first_use())
    code, output, took = serve(tmp_path, "--port", str(free_port()), CONCORDER_SECRET_KEY=OTHER_KEY)
    assert code == 1 and took < 20
    assert "Traceback" not in output and "Concorder Relay on" not in output, output
    said = " ".join(output.split())
    assert said.startswith(
        "Cannot start: This database was first used with another secret key "
        "(CONCORDER_SECRET_KEY is set to another key)."
    ), said
    assert OTHER_KEY not in said
    assert (tmp_path / KEY_FILE).read_text().strip() not in said
