"""Signed checkpoints pin the audit chain: `concorder audit verify --checkpoint` catches what
the chain alone cannot (a missing tail, an emptied table, a rewrite that recomputes every
hash), on a copy of a real run's database, with the real command."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, select, text, update
from typer.testing import CliRunner

from bot.bootstrap import build, build_cli, create_app
from bot.services import audit_checkpoints
from bot.services.turns import receive
from bot.settings import Settings
from scheduler import timers
from store import audit
from store.checkpoints import AuditCheckpoint
from store.models import AuditEvent, AuditHead, utcnow
from tests.conftest import EXAMPLE_ASSEMBLY
from tests.test_outbox_cli import on_db

runner = CliRunner()
SECRET = "4f1c9a7e2b8d6035a9e4c7b1f0d2836e5a9c4b7d1e0f3a62"
README = Path(__file__).resolve().parent.parent / "README.md"


def env(url: str, secret: str = SECRET) -> dict[str, str]:
    return {
        "CONCORDER_DATABASE_URL": url,
        "CONCORDER_SECRET_KEY": secret,
        "CONCORDER_ASSEMBLY": str(EXAMPLE_ASSEMBLY / "assembly.toml"),
    }


def concorder(url: str, *args: str, secret: str = SECRET):
    return runner.invoke(build_cli(), list(args), env=env(url, secret))


def drive(url: str, people: range) -> None:
    """A few people write to the service: the chain grows as it does in a real run."""
    settings = Settings(**env(url), _env_file=None)

    async def work(sessions):
        relay = build(settings, sessions=sessions)
        for n in people:
            address = f"+4477009007{n:02d}"
            for step, said in enumerate(("hello", "2", "STOP", "START")):
                await receive(
                    relay, channel="sms", address=address, text=said, provider_id=f"SM{n}-{step}"
                )
        await audit.sequence_all(sessions)

    on_db(url, work)


@pytest.fixture
def run(db, tmp_path):
    """A real run checkpointed half way (the file an organiser published), then carried on;
    the database the test tampers with is a copy (PostgreSQL: the test's own database)."""
    drive(db.url, range(3))
    published = tmp_path / "checkpoint.txt"
    made = concorder(db.url, "audit", "checkpoint", "--out", str(published))
    assert made.exit_code == 0, made.output
    drive(db.url, range(3, 5))
    if db.dialect != "sqlite":
        return db.url, published
    copy = tmp_path / "copy.db"
    with sqlite3.connect(db.url.split("///", 1)[1]) as source, sqlite3.connect(copy) as target:
        source.backup(target)
    return f"sqlite+aiosqlite:///{copy}", published


def signed_size(published: Path) -> int:
    return int(published.read_text().splitlines()[1])


async def cut_tail(sessions, keep: int) -> None:
    """Events after `keep` deleted, and the head made to match: nothing inside says so."""
    async with sessions.begin() as session:
        await session.execute(delete(AuditEvent).where(AuditEvent.seq > keep))
        last = await session.scalar(select(AuditEvent.hash).where(AuditEvent.seq == keep))
        await session.execute(update(AuditHead).values(seq=keep, hash=last or audit.GENESIS))
        await session.execute(delete(AuditCheckpoint))


async def rewrite(sessions, drop: int, forget_checkpoints: bool = True) -> None:
    """One event dropped and every later hash recomputed, head and all: a chain that is
    consistent in itself (and the stored checkpoints gone, as a careful forger would)."""
    async with sessions.begin() as session:
        events = (await session.execute(select(AuditEvent).order_by(AuditEvent.seq))).scalars()
        kept = [e for e in events if e.seq != drop]
        rows, prev = [], audit.GENESIS
        for seq, e in enumerate(kept, start=1):
            body = audit.canonical(seq, e.at, e.kind, e.participant_id, e.data)
            digest = audit.link_hash(prev, body)
            rows.append(
                dict(
                    seq=seq,
                    at=e.at,
                    kind=e.kind,
                    participant_id=e.participant_id,
                    data=e.data,
                    prev_hash=prev,
                    hash=digest,
                )
            )
            prev = digest
        await session.execute(delete(AuditEvent))
        await session.execute(insert(AuditEvent), rows)
        await session.execute(update(AuditHead).values(seq=len(rows), hash=prev))
        if forget_checkpoints:
            await session.execute(delete(AuditCheckpoint))


def sql(*statements: str):
    async def work(sessions):
        async with sessions.begin() as session:
            for statement in statements:
                await session.execute(text(statement))

    return work


SWAP_2_AND_3 = sql(
    "UPDATE audit_events SET seq = -2 WHERE seq = 2",
    "UPDATE audit_events SET seq = 2 WHERE seq = 3",
    "UPDATE audit_events SET seq = 3 WHERE seq = -2",
)
EMPTIED = sql(
    "DELETE FROM audit_events",
    f"UPDATE audit_head SET seq = 0, hash = '{audit.GENESIS}'",
    "DELETE FROM audit_checkpoints",
)
FORGED = sql("UPDATE audit_events SET data = '{\"forged\": true}' WHERE seq = 4")


@pytest.mark.parametrize(
    "tamper, said",
    [
        pytest.param(
            lambda published: lambda s: cut_tail(s, signed_size(published) - 2),
            "events were removed from the end",
            id="missing tail",
        ),
        pytest.param(
            lambda published: EMPTIED,
            "the chain ends at event 0 but the checkpoint records",
            id="emptied table",
        ),
        pytest.param(
            lambda published: FORGED, "breaks at event 4: content altered", id="forged event"
        ),
        pytest.param(
            lambda published: SWAP_2_AND_3,
            "breaks at event 2: previous hash differs",
            id="reordered events",
        ),
        pytest.param(
            lambda published: lambda s: rewrite(s, drop=2),
            "the chain was rewritten up to there",
            id="full rewrite",
        ),
    ],
)
def test_verify_with_a_published_checkpoint_names_each_tampering(run, tamper, said):
    url, published = run
    before = concorder(url, "audit", "verify", "--checkpoint", str(published))
    assert before.exit_code == 0, before.output
    assert "agrees with the 1 checkpoint(s) given" in before.output

    on_db(url, tamper(published))
    after = concorder(url, "audit", "verify", "--checkpoint", str(published))
    assert after.exit_code == 1, after.output
    assert "Audit trail NOT verified" in after.output
    assert said in after.output
    assert "Traceback" not in after.output


def test_without_a_checkpoint_a_rewrite_goes_unseen_and_the_command_says_so(run):
    url, published = run
    on_db(url, lambda s: rewrite(s, drop=2))
    alone = concorder(url, "audit", "verify")
    assert alone.exit_code == 0, alone.output
    assert "Only a checkpoint published outside this database proves" in alone.output
    assert concorder(url, "audit", "verify", "--checkpoint", str(published)).exit_code == 1


def test_without_a_checkpoint_the_stored_head_and_checkpoints_catch_a_clumsy_cut(run):
    url, published = run
    size = signed_size(published)
    on_db(url, sql(f"DELETE FROM audit_events WHERE seq > {size - 2}"))
    alone = concorder(url, "audit", "verify")
    assert alone.exit_code == 1, alone.output
    assert "the stored head counts" in alone.output
    assert f"stored #1: the chain ends at event {size - 2}" in alone.output


def test_a_forged_checkpoint_and_one_under_another_key_are_refused(run, tmp_path):
    url, published = run
    lines = published.read_text().split("\n")
    lines[1] = str(int(lines[1]) - 1)  # claims fewer events, signature left as it was
    forged = tmp_path / "forged.txt"
    forged.write_text("\n".join(lines))
    result = concorder(url, "audit", "verify", "--checkpoint", str(forged))
    assert result.exit_code == 1
    assert "the signature does not match the text: the checkpoint was altered or forged" in (
        result.output
    )

    other = "0" * 16 + SECRET[16:] + "x"
    result = concorder(url, "audit", "verify", "--checkpoint", str(published), secret=other)
    assert result.exit_code == 1
    assert "signed by another key" in result.output and "concorder audit key" in result.output


def test_a_file_that_is_not_a_checkpoint_is_named(run, tmp_path):
    url, _ = run
    junk = tmp_path / "notes.txt"
    junk.write_text("riverside\n12\n")
    result = concorder(url, "audit", "verify", "--checkpoint", str(junk))
    assert result.exit_code == 1
    assert "notes.txt: no blank line between the checkpoint and its signature" in result.output
    missing = concorder(url, "audit", "verify", "--checkpoint", str(tmp_path / "nowhere.txt"))
    assert missing.exit_code == 2 and "Traceback" not in missing.output


def test_no_checkpoint_is_signed_over_a_rewritten_chain(run):
    url, published = run
    on_db(url, lambda s: rewrite(s, drop=2, forget_checkpoints=False))
    result = concorder(url, "audit", "checkpoint", "--dry-run")
    assert result.exit_code == 1
    size = signed_size(published)
    assert f"Not signed: event {size} no longer has the hash of the checkpoint" in result.output


def test_the_published_key_and_the_readme_recipes_check_a_checkpoint(run, tmp_path):
    """The openssl and python recipes of the README, run as written, accept the checkpoint
    and refuse it once one figure changes."""
    url, published = run
    pem = concorder(url, "audit", "key", "--pem")
    assert pem.output.startswith("-----BEGIN PUBLIC KEY-----")
    (tmp_path / "audit-key.pem").write_text(pem.output)
    shown = concorder(url, "audit", "key")
    assert "riverside-citizens-jury-on-transport+" in shown.output

    readme = README.read_text()
    shell = re.search(r"<!-- checkpoint-openssl -->\n```sh\n(.*?)```", readme, re.S)[1]
    python = re.search(r"<!-- checkpoint-python -->\n```python\n(.*?)```", readme, re.S)[1]

    def recipes() -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
        kw = dict(cwd=tmp_path, capture_output=True, text=True)
        return (
            subprocess.run(["sh", "-c", shell], **kw),
            subprocess.run([sys.executable, "-c", python], **kw),
        )

    (tmp_path / "checkpoint.txt").write_text(published.read_text())
    by_openssl, by_python = recipes()
    assert by_openssl.returncode == 0 and "Signature Verified Successfully" in by_openssl.stdout
    size = signed_size(published)
    assert by_python.returncode == 0, by_python.stderr
    hash_of_size = on_db(
        url,
        lambda s: _scalar(s, select(AuditEvent.hash).where(AuditEvent.seq == size)),
    )
    assert by_python.stdout.split() == ["riverside-citizens-jury-on-transport", str(size)] + [
        hash_of_size
    ]

    changed = published.read_text().replace(f"\n{size}\n", f"\n{size + 1}\n", 1)
    (tmp_path / "checkpoint.txt").write_text(changed)
    by_openssl, by_python = recipes()
    assert by_openssl.returncode != 0 and by_python.returncode != 0


async def _scalar(sessions, query):
    async with sessions() as session:
        return await session.scalar(query)


async def test_serve_signs_one_when_due_and_writes_it(db, tmp_path):
    settings = Settings(
        **env(db.url),
        CONCORDER_CHECKPOINT_DIR=str(tmp_path / "published"),
        _env_file=None,
    )
    relay = build(settings, sessions=db.sessions)
    app = create_app(relay=relay, migrate=False)
    assert any(t.name.startswith("audit: sign a checkpoint") for t in app[timers.TIMERS])

    start = utcnow()
    assert await audit_checkpoints.scheduled(relay, now=start) is None  # nothing to sign
    async with db.sessions.begin() as session:
        await audit.append(session, "x", {"n": 1}, at=start)
    assert await audit_checkpoints.scheduled(relay, now=start + timedelta(hours=1)) is None
    first = await audit_checkpoints.scheduled(relay, now=start + timedelta(hours=25))
    assert first is not None and first.parent == tmp_path / "published"
    assert first.read_text().split("\n")[:2] == ["riverside-citizens-jury-on-transport", "1"]
    # Due again a day after the last one; the chain carries each checkpoint as an event.
    assert await audit_checkpoints.scheduled(relay, now=start + timedelta(hours=30)) is None
    second = await audit_checkpoints.scheduled(relay, now=start + timedelta(hours=50))
    assert second.read_text().split("\n")[1] == "2"
    async with db.sessions() as session:
        kinds = (await session.execute(select(AuditEvent.kind).order_by(AuditEvent.id))).all()
        kept = (await session.execute(select(AuditCheckpoint.size))).scalars().all()
    assert [k for (k,) in kinds] == ["x", "audit.checkpoint", "audit.checkpoint"]
    assert kept == [1, 2]

    # A rewritten chain gets no new signature.
    async with db.sessions.begin() as session:
        await session.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(hash="f" * 64))
    assert await audit_checkpoints.scheduled(relay, now=start + timedelta(hours=80)) is None
    async with db.sessions() as session:
        assert len((await session.execute(select(AuditCheckpoint))).all()) == 2


def test_help_names_the_commands_and_their_options():
    cli = build_cli()
    for command, said in (
        (["audit", "--help"], "checkpoint"),
        (["audit", "verify", "--help"], "--checkpoint"),
        (["audit", "checkpoint", "--help"], "--dry-run"),
        (["audit", "key", "--help"], "--pem"),
    ):
        result = runner.invoke(cli, command)
        assert result.exit_code == 0 and said in result.output, result.output


def test_anyone_with_the_published_key_checks_without_the_secret(run, tmp_path):
    url, published = run
    pem = tmp_path / "audit-key.pem"
    pem.write_text(concorder(url, "audit", "key", "--pem").output)
    stranger = "9" * 40  # an auditor's own setting: not the assembly's secret
    args = ("audit", "verify", "--checkpoint", str(published), "--key", str(pem))
    assert concorder(url, *args, secret=stranger).exit_code == 0

    # Another secret's key comes from its own database: this one refuses another secret.
    refused_key = concorder(url, "audit", "key", "--pem", secret=stranger)
    assert refused_key.exit_code == 1 and "another secret key" in refused_key.output
    assert "BEGIN PUBLIC KEY" not in refused_key.output
    theirs = f"sqlite+aiosqlite:///{tmp_path / 'theirs.db'}"
    other = tmp_path / "other.pem"
    other.write_text(concorder(theirs, "audit", "key", "--pem", secret=stranger).output)
    refused = concorder(url, "audit", "verify", "--checkpoint", str(published), "--key", str(other))
    assert refused.exit_code == 1 and "signed by another key" in refused.output
    junk = concorder(url, "audit", "verify", "--key", str(published))
    assert junk.exit_code == 2 and "not an Ed25519 public key" in junk.output


def test_verify_alone_makes_no_key(sqlite_db):
    """Checking the chain needs no secret: none is made where there was none."""
    drive(sqlite_db.url, range(1))
    folder = Path(sqlite_db.url.split("///", 1)[1]).parent
    result = runner.invoke(
        build_cli(), ["audit", "verify"], env={"CONCORDER_DATABASE_URL": sqlite_db.url}
    )
    assert result.exit_code == 0 and "Audit trail intact" in result.output, result.output
    assert not (folder / "concorder-secret.key").exists()
