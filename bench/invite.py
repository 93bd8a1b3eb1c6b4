"""Benchmark: invite a pool of 250,000 people into a temporary SQLite database.

Prints the time per invitation (invitation row, conversation state, outbox rows and
audit events, committed chunk by chunk) and the peak memory of the process. Targets:
under 1 ms per invitation and under 300 MB.

    .venv/bin/python bench/invite.py [--people 250000]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from bot.services import recruitment
from bot.settings import Settings
from flows.assembly import load_assembly
from store import audit
from store.db import make_engine, sessionmaker, upgrade
from store.models import OutboxMessage
from store.recruitment import Invitation

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "citizens-jury" / "assembly.toml"
LANGUAGES = ("en", "en", "en", "fr", "es")


def pool_rows(start: int, stop: int) -> list[recruitment.PoolRow]:
    """Fictional people: most with a phone, some with a phone and a handle, some a handle."""
    rows = []
    for n in range(start, stop):
        kind = n % 10
        phone = None if kind == 9 else f"+4420{n:08d}"
        handle = f"person_{n:07d}" if kind >= 8 else None
        rows.append(
            recruitment.PoolRow(
                lines=[n + 2],
                phone=phone,
                telegram=handle,
                language=LANGUAGES[n % 5],
                household=f"H{n // 2}",
                attributes={"age": ("16-29", "30-49", "50-64", "65+")[n % 4]},
            )
        )
    return rows


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


async def main(people: int) -> int:
    assembly = load_assembly(EXAMPLE)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        upgrade(url)
        settings = Settings(CONCORDER_DATABASE_URL=url, _env_file=None)
        engine = make_engine(url)
        sessions = sessionmaker(engine)
        started = time.perf_counter()
        for start in range(0, people, 25_000):
            await recruitment.import_pool(
                sessions, assembly, pool_rows(start, min(people, start + 25_000))
            )
        imported = time.perf_counter() - started
        print(
            f"pool import: {people} people in {imported:.1f} s "
            f"({imported / people * 1e6:.0f} µs per person)"
        )

        started, cpu = time.perf_counter(), time.process_time()
        result = await recruitment.send_invitations(
            sessions, settings, assembly, "BenchBot", letters_path=Path(tmp) / "letters.csv"
        )
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        await audit.sequence_all(sessions)  # what the service's sequencer does meanwhile
        async with sessions() as session:
            invitations = await session.scalar(select(func.count(Invitation.id)))
            outbox = await session.scalar(select(func.count(OutboxMessage.id)))
            chain = await audit.verify(session)
        await engine.dispose()
    per = elapsed / max(invitations, 1) * 1000
    print(
        f"invitations: {invitations} ({dict(result.invited)}), outbox rows: {outbox}, "
        f"letter links: {result.letters}"
    )
    print(
        f"time: {elapsed:.1f} s, {per:.3f} ms per invitation (target < 1 ms); "
        f"CPU {cpu / max(invitations, 1) * 1000:.3f} ms per invitation"
    )
    print(f"peak memory: {peak_mb():.0f} MB (target < 300 MB)")
    print(f"audit chain: {'intact' if chain.ok else 'BROKEN'}, {chain.checked} events")
    ok = invitations == people and per < 1 and peak_mb() < 300 and chain.ok
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=250_000)
    sys.exit(asyncio.run(main(parser.parse_args().people)))
