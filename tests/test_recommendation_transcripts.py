"""A panel member told of the authority's responses to the assembly's recommendations, in
every shipped language, on SMS and Telegram.

The files tests/transcripts/recommendation-response.*.txt use the transcript format of
tests/transcript_harness.py (read its docstring); each conversation is a new confirmed
member of the panel, and the recommendations are tests/recommendations/recommendations.toml:

    * the authority responds to ID        accepted (tests/recommendations/response-accepted.toml)
    * the authority changes its response to ID    partly (response-partly.md)

After a deliberate change of wording, regenerate the expectations and read the diff:

    .venv/bin/python -m tests.test_recommendation_transcripts [tests/transcripts/FILE ...]
"""

from __future__ import annotations

import asyncio
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from bot.bootstrap import build
from bot.services import recommendations as recs
from bot.settings import Settings
from flows.i18n import shipped_languages
from store.recommendations import RecommendationResponse
from store.recruitment import DECLINED, Selection
from tests.ballot_world import Voter, panel
from tests.recommendation_world import DAYTIME, accepted, partly, recorded
from tests.transcript_harness import (
    TRANSCRIPTS,
    Conversation,
    TranscriptError,
    one_channel_only,
    play_conversations,
    record,
    replays,
)

PREFIX = "recommendation-response"
FILES = sorted(TRANSCRIPTS.glob(f"{PREFIX}.*.txt"))
ACTION = re.compile(r"^the authority (responds|changes its response) to (\S+)$")


@dataclass
class Member(Conversation):
    number: int = 0

    async def join(self) -> None:
        """A confirmed member; the previous conversation's member leaves the panel."""
        async with self.sessions.begin() as session:
            await session.execute(update(Selection).values(status=DECLINED))
        who = Voter(f"PR{self.number:06d}", self.channel, self.address, self.language or "en")
        await panel(self.sessions, [who])

    async def act(self, what: str) -> list[str]:
        match = ACTION.match(what)
        if not match:
            raise TranscriptError(f"unknown action {what!r}")
        async with self.sessions() as session:
            current = await session.scalar(
                select(func.max(RecommendationResponse.version)).where(
                    RecommendationResponse.recommendation_id == match[2]
                )
            )
        response = accepted() if match[1] == "responds" else partly()
        await recs.respond(self.relay, match[2], response, replaces=current, now=self.now)
        return await self.shown()


async def play(script: str, sessions, settings: Settings) -> str:
    relay = build(settings, sessions=sessions)
    await recorded(sessions)

    async def start(channel: str, address: str, language: str | None, number: int) -> Member:
        member = Member(relay, channel, address, language, number=number, now=DAYTIME)
        await member.join()
        return member

    return await play_conversations(script, start, telegram_base=910_000)


def test_every_shipped_language_has_its_recommendation_transcript():
    names = {path.name for path in FILES}
    for language in shipped_languages():
        assert f"{PREFIX}.{language}.txt" in names, f"no recommendation transcript in {language}"
    assert one_channel_only(FILES) == []


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
async def test_recommendation_transcript(path, sqlite_db):
    settings = Settings(CONCORDER_DATABASE_URL=sqlite_db.url, _env_file=None)
    await replays(path, play, sqlite_db.sessions, settings)


async def test_a_recommendation_transcript_reads_the_same_on_postgresql(db, settings):
    await replays(TRANSCRIPTS / f"{PREFIX}.fr.txt", play, db.sessions, settings)


if __name__ == "__main__":
    asyncio.run(record([Path(arg).resolve() for arg in sys.argv[1:]] or FILES, play))
