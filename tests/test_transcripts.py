"""Whole conversations as a person sees them, in every shipped language, on SMS and Telegram.

Each file in tests/transcripts/ is played through the service (bot.services.turns.receive and the
outbox, delivered on the simulated channels) on a real database, and what comes back must
read exactly as written. The format is in tests/transcript_harness.py.

After a deliberate change of wording, regenerate the expectations and read the diff:

    .venv/bin/python -m tests.test_transcripts [tests/transcripts/FILE ...]
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.bootstrap import build
from bot.channels.simulator import SimulatorTransport
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.ratelimit import DeliveryLimits
from bot.settings import Settings
from tests.transcript_harness import (
    TRANSCRIPTS,
    Conversation,
    missing_languages,
    one_channel_only,
    play_conversations,
    record,
    replays,
)

# Recruitment transcripts need an assembly and an invitation first: they have their own
# runner, tests/test_recruitment_transcripts.py; a table's, tests/test_deliberation_transcripts.py;
# ballots', tests/test_ballot_transcripts.py; a poll's, tests/test_poll_transcripts.py; the
# opinion map's statements', tests/test_statements_transcripts.py; a recommendation's,
# tests/test_recommendation_transcripts.py.
OWN_RUNNERS = (
    "recruitment-",
    "deliberation",  # deliberation*.txt: tests/test_deliberation_transcripts.py
    "ballot-",
    "poll.",
    "statements.",
    "recommendation-",
)
FILES = sorted(p for p in TRANSCRIPTS.glob("*.txt") if not p.name.startswith(OWN_RUNNERS))


async def play(
    script: str,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    dispatcher: Dispatcher | None = None,
) -> str:
    """The transcript with what the service actually answers in place of the expectations."""
    relay = build(settings, sessions=sessions)

    async def start(channel: str, address: str, language: str | None, _: int) -> Conversation:
        return Conversation(relay, channel, address, language, dispatcher=dispatcher)

    return await play_conversations(script, start, telegram_base=700_000)


def test_every_shipped_language_has_its_transcripts():
    assert {path.name.split(".")[0] for path in FILES} >= {"welcome", "keywords", "robustness"}
    assert missing_languages(FILES) == []
    assert one_channel_only(FILES) == []


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
async def test_transcript(path, sqlite_db):
    settings = Settings(CONCORDER_DATABASE_URL=sqlite_db.url, _env_file=None)
    await replays(path, play, sqlite_db.sessions, settings)


async def test_transcripts_read_the_same_through_the_dispatcher(db, settings):
    """The quick path above gives what the real dispatcher delivers, on both databases."""
    transports = {channel: SimulatorTransport(channel) for channel in ("sms", "telegram")}
    dispatcher = Dispatcher(db.sessions, transports, settings, limits=DeliveryLimits.off())
    expected = (TRANSCRIPTS / "keywords.fr.txt").read_text()  # both channels, opt-outs
    assert await play(expected, db.sessions, settings, dispatcher) == expected


if __name__ == "__main__":
    asyncio.run(record([Path(arg).resolve() for arg in sys.argv[1:]] or FILES, play))
