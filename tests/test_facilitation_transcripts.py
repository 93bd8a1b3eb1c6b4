"""A facilitator's side of a table, in every shipped language: the facilitator of table 1
(by SMS or on Telegram) and an organiser (on Telegram) run a prompt with chat commands
while the members talk; tests/transcripts/facilitation/*.txt, played on a real database
(SQLite and PostgreSQL) through the service's own turns and timers.

The format is the table transcripts' (tests/test_deliberation_transcripts.py), with:

    facilitator: sms          the facilitator of table 1 and their channel
    F> text                   the facilitator writes
    O> text                   the organiser writes (on Telegram)
    F< text / O< text         what they receive (the facilitator first, the organiser last)

Table 2 has one member, who is not the facilitator's. Regenerate after a change of wording:

    .venv/bin/python -m tests.test_facilitation_transcripts
"""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from bot.bootstrap import build
from bot.services import deliberation, turns
from bot.services.facilitation import name_facilitator
from bot.settings import Settings
from flows.assembly import load_assembly
from flows.i18n import shipped_languages
from tests.conftest import EXAMPLE_ASSEMBLY
from tests.deliberation_world import ORGANISER_CHAT, World, seat_table
from tests.test_deliberation_transcripts import Player
from tests.transcript_harness import record, replays

FILES = sorted((Path(__file__).resolve().parent / "transcripts" / "facilitation").glob("*.txt"))
ADDRESSES = {"sms": "+447700900777", "telegram": "880777"}


class FacilitatorPlayer(Player):
    def __init__(self, world: World, channel: str, language: str):
        super().__init__(world)
        self.channel, self.language = channel, language
        self.facilitator: str | None = None

    async def step(self, line: str) -> list[str]:
        who, _, text = line.partition("> ")
        if who not in ("F", "O"):
            return await super().step(line)
        channel, address = (
            (self.channel, ADDRESSES[self.channel]) if who == "F" else ("telegram", ORGANISER_CHAT)
        )
        self.now += timedelta(seconds=20)
        self.world.provider += 1
        await turns.receive(
            self.world.relay,
            channel=channel,
            address=address,
            text=text,
            provider_id=f"in-{self.world.provider}",
            language_hint=self.language,
            now=self.now,
        )
        await deliberation.run_due(self.world.relay, now=self.now)
        return await self.heard()

    async def heard(self) -> list[str]:
        mine: list[str] = []
        if self.facilitator is None:
            self.facilitator = await self._facilitator_id()
        if self.facilitator is not None:
            for text in await self.world.read(self.facilitator):
                first, *more = text.split("\n")
                mine.append(f"F< {first}")
                mine += [f"| {m}" if m else "|" for m in more]
        others = [line.replace("organiser<", "O<", 1) for line in await super().heard()]
        others = [line for line in others if line != "(silence)"]
        return mine + others or ["(silence)"]

    async def _facilitator_id(self) -> str | None:
        from sqlalchemy import select

        from store.models import Contact

        async with self.world.relay.sessions() as session:
            return (
                await session.execute(
                    select(Contact.participant_id).where(Contact.address == ADDRESSES[self.channel])
                )
            ).scalar_one_or_none()


def parse(text: str) -> tuple[str, str, list[tuple[str, str]], list[str]]:
    language, channel, seats, steps = "en", "sms", [], []
    for raw in text.splitlines():
        line = raw.rstrip()
        if line.startswith("language:"):
            language = line.split(":", 1)[1].strip()
        elif line.startswith("facilitator:"):
            channel = line.split(":", 1)[1].strip()
        elif line.startswith("seat "):
            letter, _, seat_channel = line[5:].partition(":")
            seats.append((letter.strip(), seat_channel.strip()))
        elif line.startswith("!") or (">" in line.split(" ", 1)[0]):
            steps.append(line)
    return language, channel, seats, steps


async def play(text: str, sessions, settings: Settings) -> str:
    language, channel, seats, steps = parse(text)
    relay = build(
        settings, assembly=load_assembly(EXAMPLE_ASSEMBLY / "assembly.toml"), sessions=sessions
    )
    world = await seat_table(relay, [(letter, c, language) for letter, c in seats], tables=2)
    async with relay.sessions.begin() as session:
        await name_facilitator(
            session, f"{'tg:' if channel == 'telegram' else ''}{ADDRESSES[channel]}", 1
        )
    player = FacilitatorPlayer(world, channel, language)
    await player.heard()
    out = [line for line in text.splitlines() if line.startswith("#")]
    out += [f"language: {language}", f"facilitator: {channel}"]
    out += [f"seat {letter}: {c}" for letter, c in seats]
    for step in steps:
        out += ["", step]
        out += await player.step(step)
    return "\n".join(out) + "\n"


def test_every_shipped_language_has_a_facilitators_transcript_on_both_channels():
    found = {(p.name.split(".")[1], parse(p.read_text())[1]) for p in FILES}
    assert {language for language, _ in found} == set(shipped_languages())
    assert {channel for _, channel in found} == {"sms", "telegram"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
async def test_facilitators_transcript(path, settings, db):
    await replays(path, play, db.sessions, settings)


if __name__ == "__main__":
    asyncio.run(record([Path(p).resolve() for p in sys.argv[1:]] or FILES, play))
