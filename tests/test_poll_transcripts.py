"""A deliberative poll as a panel member sees it, in every shipped language, on SMS and
Telegram: agreement questions 1 to 5, a knowledge question A, B, C, SKIP, garbage, a
reminder, STOP in the middle, a reply after the wave closed.

The files tests/transcripts/poll.*.txt use the transcript format of
tests/test_transcripts.py (read its docstring); each conversation is a new confirmed
member of the panel, and the poll is that of tests/polls/views.toml, with these actions:

    * wave before opens         the wave is sent (every member is asked)
    * a day passes              the reminders' tick, a day later
    * wave before closes        the wave closes

After a deliberate change of wording, regenerate the expectations and read the diff:

    .venv/bin/python -m tests.test_poll_transcripts [tests/transcripts/FILE ...]
"""

from __future__ import annotations

import asyncio
import re
import sys
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from bot.services import turns as service
from bot.services.polls import waves
from bot.settings import Settings
from flows.i18n import shipped_languages
from store.models import utcnow
from store.polls import PollWave
from store.recruitment import DECLINED, Selection
from tests.poll_world import Voter, create_poll, panel, poll_defs
from tests.transcript_harness import (
    TRANSCRIPTS,
    Conversation,
    TranscriptError,
    attachment,
    member_player,
    message_lines,
    record,
)

PREFIX = "poll"
FILES = sorted(TRANSCRIPTS.glob(f"{PREFIX}.*.txt"))
ACTION = re.compile(r"^(wave (\S+) (opens|closes)|a day passes)$")


@dataclass
class Member(Conversation):
    """One panel member's conversation, with a poll of its own."""

    number: int = 0

    @property
    def poll(self) -> str:
        return f"views-{self.number}"

    async def send(self, line: str) -> list[str]:
        line, media = attachment(line)
        text, button = self.inbound(line)
        await service.receive(
            self.relay,
            channel=self.channel,
            address=self.address,
            text=text,
            button=button,
            provider_id=f"transcript-{uuid.uuid4().hex}",
            language_hint=self.language,
            media=media,
        )
        return await self.shown()

    async def shown(self) -> list[str]:
        lines: list[str] = []
        for row in await self.deliver():
            lines += message_lines(row.text, row.buttons)
            if row.buttons:
                self.keyboards.append(row.buttons)
        return lines

    async def join(self) -> None:
        """A confirmed member; the previous conversation's member leaves the panel."""
        async with self.sessions.begin() as session:
            await session.execute(update(Selection).values(status=DECLINED))
        who = Voter(f"PP{self.number:06d}", self.channel, self.address, self.language or "en")
        await panel(self.sessions, [who])
        own = [p.model_copy(update={"id": self.poll}) for p in poll_defs()]
        await create_poll(self.sessions, utcnow(), own)

    async def act(self, what: str) -> list[str]:
        match = ACTION.match(what)
        if not match:
            raise TranscriptError(f"unknown action {what!r}")
        if match[1] == "a day passes":
            await waves.remind_due(self.relay, utcnow() + timedelta(hours=25))
        elif match[3] == "opens":
            await waves.open_wave(self.relay, self.poll, match[2])
        else:
            async with self.sessions.begin() as session:
                await session.execute(
                    update(PollWave)
                    .where(PollWave.poll_id == self.poll, PollWave.wave_id == match[2])
                    .values(closes_at=utcnow())
                )
            await waves.close_due(self.relay)
        return await self.shown()


play = member_player(Member, telegram_base=950_000)


def test_every_shipped_language_has_its_poll_transcript():
    names = {path.name for path in FILES}
    for language in shipped_languages():
        assert f"{PREFIX}.{language}.txt" in names, f"no poll transcript in {language}"
    for path in FILES:
        script = path.read_text()
        assert "=== sms:" in script and "=== telegram:" in script, f"{path.name}: both channels"
        for what in ("* a day passes", "> STOP", "closes"):
            assert what in script, f"{path.name}: no {what!r}"


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
async def test_poll_transcript(path, sqlite_db):
    settings = Settings(CONCORDER_DATABASE_URL=sqlite_db.url, _env_file=None)
    expected = path.read_text()
    assert await play(expected, sqlite_db.sessions, settings) == expected


async def test_a_poll_transcript_reads_the_same_on_postgresql(db, settings):
    expected = (TRANSCRIPTS / f"{PREFIX}.fr.txt").read_text()
    assert await play(expected, db.sessions, settings) == expected


if __name__ == "__main__":
    asyncio.run(record([Path(arg).resolve() for arg in sys.argv[1:]] or FILES, play))
