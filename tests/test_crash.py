"""A `kill -9` loses nothing: the real `concorder` commands in child processes, on an SQLite
file and on PostgreSQL, sending through the real twilio client to Prism (Twilio's spec).

The service is killed once some messages of a broadcast or of an invitation wave have gone
out, and started again: everyone gets the message, and no message goes out more than twice,
nor more messages twice than one dispatcher holds claimed (README, "What the service
promises").
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select

from bot.services import recruitment
from flows.assembly import load_assembly
from store.models import OutboxMessage
from store.recruitment import Invitation
from tests.test_broadcast import add_member
from tests.twilio_peer import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, free_port

pytest_plugins = ["tests.twilio_peer"]

CONCORDER = str(Path(sys.executable).parent / "concorder")
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "citizens-jury"
SMS_RATE = 10  # per second: slow enough to kill the service half way
# What one dispatcher holds claimed on a rate-limited channel: twice the rate (see
# Dispatcher._channel_budget). At most these can go out a second time after a crash.
HELD_AT_MOST = math.ceil(2 * SMS_RATE)
LEASE = "6s"


def environment(db, twilio_url: str, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CONCORDER_", "TWILIO_", "TELEGRAM_"))
    }
    env.update(
        CONCORDER_DATABASE_URL=db.url,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_FROM_NUMBER=FROM_NUMBER,
        TWILIO_API_BASE_URL=twilio_url,
        CONCORDER_SMS_RATE=str(SMS_RATE),
        CONCORDER_SEND_LEASE=LEASE,
        COLUMNS="200",
        **extra,
    )
    return env


class Service:
    """`concorder serve` in a child process of its own."""

    def __init__(self, env: dict[str, str], cwd: Path):
        self.env, self.cwd = env, cwd
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.cwd / f"serve-{self.starts}.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [CONCORDER, "serve", "--port", str(free_port())],
            env=self.env,
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def kill(self) -> None:
        assert self.process is not None and self.process.poll() is None, self.log()
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return (self.cwd / f"serve-{self.starts}.log").read_text(errors="replace")[-3000:]


async def command(env: dict[str, str], cwd: Path, *args: str) -> str:
    process = await asyncio.create_subprocess_exec(
        CONCORDER,
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    return output.decode()


async def until(condition, seconds: float, service: Service | None = None) -> None:
    try:
        async with asyncio.timeout(seconds):
            while not await condition():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(service.log() if service else "timed out") from None


async def outbox_statuses(db) -> Counter[str]:
    async with db.sessions() as session:
        return Counter(
            dict(
                (
                    await session.execute(
                        select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
                    )
                ).all()
            )
        )


async def crash_and_recover(db, service: Service, hop, total: int) -> Counter[str]:
    """Start the service, kill -9 it once some messages went out, start it again, and wait
    until every message is sent. Returns how often Twilio got a message for each number."""
    service.start()
    try:
        await until(lambda: _sent_at_least(hop, total // 4), 60, service)
        service.kill()
        left = await outbox_statuses(db)
        assert left["queued"] + left["sending"] > 0, "the kill came too late to test anything"
        service.start()

        async def all_sent():
            statuses = await outbox_statuses(db)
            return statuses["queued"] + statuses["sending"] == 0

        await until(all_sent, 90, service)
    finally:
        service.stop()
    assert set(await outbox_statuses(db)) == {"sent"}
    return Counter(request.form["To"][0] for request in hop.requests)


async def _sent_at_least(hop, count: int) -> bool:
    return len(hop.requests) >= count


def within_the_promise(received: Counter[str], everyone: set[str]) -> None:
    assert set(received) == everyone  # nobody missed out
    duplicates = sum(count - 1 for count in received.values())
    assert max(received.values()) <= 2
    assert duplicates <= HELD_AT_MOST


async def test_a_broadcast_survives_a_kill_9_of_the_service(db, recording_prism, tmp_path):
    people = 60
    async with db.sessions.begin() as session:
        numbers = {
            (
                await add_member(session, channel="sms", address=f"+4479112{n:05d}")
            ).id: f"+4479112{n:05d}"
            for n in range(people)
        }
    env = environment(db, recording_prism.url)
    said = await command(
        env, tmp_path, "broadcast", "The venue has changed: room B.", "--to", "all", "--urgent"
    )
    assert f"queued for {people} people" in said

    received = await crash_and_recover(db, Service(env, tmp_path), recording_prism, people)
    within_the_promise(received, set(numbers.values()))
    assert {r.form["Body"][0] for r in recording_prism.requests} == {
        "The venue has changed: room B."
    }


async def test_an_invitation_wave_survives_a_kill_9_of_the_command_and_of_the_service(
    db, recording_prism, tmp_path
):
    people = 60
    pool = tmp_path / "pool.csv"
    phones = [f"+447700900{n:03d}" for n in range(100, 100 + people)]
    pool.write_text(
        "id,phone,telegram,language,household,region,age\n"
        + "".join(f"R{n:03d},{phone},,en,H{n:03d},north,65+\n" for n, phone in enumerate(phones))
    )
    # The example without quiet hours: invitations written at night would wait for 08:00.
    text = (EXAMPLE / "assembly.toml").read_text()
    quiet = 'quiet_hours = "21:00-08:00"'
    assert quiet in text
    awake = tmp_path / "assembly.toml"
    awake.write_text(text.replace(quiet, 'quiet_hours = ""'))
    assembly = load_assembly(awake)
    parsed = recruitment.parse_pool(pool, assembly)
    assert not parsed.bad
    await recruitment.import_pool(db.sessions, assembly, parsed.rows)
    env = environment(db, recording_prism.url, CONCORDER_ASSEMBLY=str(awake))

    # The wave is killed while it runs, then run again: it resumes. A chunk of invitations
    # (with its outbox rows and audit events) commits whole or not at all.
    invite = subprocess.Popen(
        [CONCORDER, "invite", "--bot-username", "RiversideJuryBot"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    await asyncio.sleep(1.0)
    assert invite.poll() is None, "the wave ended before the kill: nothing was tested"
    os.kill(invite.pid, signal.SIGKILL)
    invite.wait(10)
    async with db.sessions() as session:
        invited = await session.execute(select(func.count()).select_from(Invitation))
        assert invited.scalar_one() in (0, people)
    assert sum((await outbox_statuses(db)).values()) in (0, people)
    said = await command(env, tmp_path, "invite", "--bot-username", "RiversideJuryBot")
    assert "Invitations sent" in said
    async with db.sessions() as session:
        invited = await session.execute(select(func.count()).select_from(Invitation))
        assert invited.scalar_one() == people
    assert sum((await outbox_statuses(db)).values()) == people  # one invitation each

    received = await crash_and_recover(db, Service(env, tmp_path), recording_prism, people)
    within_the_promise(received, set(phones))
    assert all("t.me/RiversideJuryBot" in r.form["Body"][0] for r in recording_prism.requests)
