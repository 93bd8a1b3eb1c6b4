"""A table of six through a whole prompt, as each member reads it, in every shipped
language: tests/transcripts/deliberation.*.txt (and deliberation-withdraw.*.txt: WITHDRAW
at a table), played on a real database (SQLite and PostgreSQL) through the service's own
turns, timers and facilitators' functions. Every member came through an invitation.

The format (one table; every member speaks the file's language):

    language: fr              the members' language
    seat A: sms               a member: their letter and channel (sms or telegram)
    ! open PROMPT             the assembly file's prompt opens at the table
    ! wait 5                  five minutes pass (due nudges, digests, closes run)
    ! hide A                  a facilitator hides A's latest message
    ! post TEXT | ! pause | ! resume | ! end      the other facilitators' operations
    A> text                   member A writes
    A< text                   what member A receives next ("|" continues it)
    organiser< text           what the organiser receives (REPORT)
    (silence)                 nobody receives anything

After each step every new message is listed, members in letter order, the organiser last.
After a deliberate change of wording, regenerate and read the diff:

    .venv/bin/python -m tests.test_deliberation_transcripts
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.bootstrap import build
from bot.services import deliberation
from bot.settings import Settings
from flows.assembly import load_assembly
from flows.i18n import shipped_languages
from store.deliberation import Contribution
from tests.conftest import EXAMPLE_ASSEMBLY
from tests.deliberation_world import START, World, seat_table
from tests.transcript_harness import missing_languages, record, replays

TRANSCRIPTS = Path(__file__).resolve().parent / "transcripts"
FILES = sorted(TRANSCRIPTS.glob("deliberation*.txt"))


class Player:
    def __init__(self, world: World):
        self.world = world
        self.now = START

    async def step(self, line: str) -> list[str]:
        relay = self.world.relay
        if line.startswith("!"):
            command, _, rest = line[1:].strip().partition(" ")
            await self.facilitate(command, rest.strip())
        else:
            letter, _, text = line.partition("> ")
            self.now += timedelta(seconds=20)
            await self.world.send(letter, text, self.now)
        await deliberation.run_due(relay, now=self.now)
        return await self.heard()

    async def facilitate(self, command: str, rest: str) -> None:
        relay, now = self.world.relay, self.now
        if command == "open":
            await deliberation.open_prompt(relay, round_no=1, prompt=rest, now=now)
        elif command == "wait":
            self.now += timedelta(minutes=float(rest))
        elif command == "hide":
            member = self.world.member(rest)
            async with relay.sessions() as session:
                latest = (
                    await session.execute(
                        select(Contribution.id)
                        .where(Contribution.participant_id == member.participant_id)
                        .order_by(Contribution.id.desc())
                        .limit(1)
                    )
                ).scalar_one()
            await deliberation.hide(relay, latest, by="cli", now=now)
        elif command == "post":
            await deliberation.post(relay, rest, round_no=1, by="cli", now=now)
        elif command in ("pause", "resume", "end"):
            await getattr(deliberation, command)(relay, round_no=1, by="cli", now=now)
        else:
            raise ValueError(f"unknown step: ! {command}")

    async def heard(self) -> list[str]:
        lines: list[str] = []
        targets = [(m.letter, m.participant_id) for m in self.world.members.values()]
        organiser = await self.world.organiser_id()  # made when first told something
        if organiser is not None:
            targets.append(("organiser", organiser))
        for label, pid in targets:
            for text in await self.world.read(pid):
                first, *more = text.split("\n")
                lines.append(f"{label}< {first}")
                lines += [f"| {m}" if m else "|" for m in more]
        return lines or ["(silence)"]


def parse_header(text: str) -> tuple[str, list[tuple[str, str]], list[str]]:
    language, seats, steps = "en", [], []
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.startswith("language:"):
            language = line.split(":", 1)[1].strip()
        elif line.startswith("seat "):
            letter, _, channel = line[5:].partition(":")
            seats.append((letter.strip(), channel.strip()))
        elif line.startswith("!") or (">" in line.split(" ", 1)[0]):
            steps.append(line)
    return language, seats, steps


async def play(text: str, sessions, settings: Settings) -> str:
    """The transcript as the service plays it now (the header and steps as written)."""
    language, seats, steps = parse_header(text)
    relay = build(
        settings, assembly=load_assembly(EXAMPLE_ASSEMBLY / "assembly.toml"), sessions=sessions
    )
    seated = [(letter, channel, language) for letter, channel in seats]
    world = await seat_table(relay, seated, invited=True)
    player = Player(world)
    await player.heard()  # nothing before the first step
    out = [line for line in text.splitlines() if line.startswith("#")]
    out.append(f"language: {language}")
    out += [f"seat {letter}: {channel}" for letter, channel in seats]
    for step in steps:
        out.append("")
        out.append(step)
        out += await player.step(step)
    return "\n".join(out) + "\n"


def test_every_shipped_language_has_a_table_transcript():
    assert not missing_languages(FILES)
    assert {p.name.split(".")[1] for p in FILES} == set(shipped_languages())


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
async def test_table_transcript(path, settings, db):
    await replays(path, play, db.sessions, settings)


if __name__ == "__main__":
    asyncio.run(record([Path(p).resolve() for p in sys.argv[1:]] or FILES, play))
