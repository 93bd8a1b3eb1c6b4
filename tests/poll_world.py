"""A confirmed panel and the poll below, answered through the service's own inbound turn
(bot.services.turns.receive): what the poll tests share."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from bot.services.polls.records import store_polls
from flows.config_file import AssemblyFile
from flows.poll_spec import PollDef, check
from tests.ballot_world import LANGUAGES, Voter, messages, panel, press, say, voter

__all__ = ["LANGUAGES", "Voter", "messages", "panel", "press", "say", "voter"]

POLL_FILE = Path(__file__).resolve().parent / "polls" / "views.toml"


def poll_defs(text: str | None = None) -> list[PollDef]:
    file = AssemblyFile.parse(text or POLL_FILE.read_text(), str(POLL_FILE))
    return check(file.raw["polls"], file.text, file.path, LANGUAGES, None)


async def create_poll(sessions, now: datetime, polls: list[PollDef] | None = None) -> None:
    async with sessions.begin() as session:
        await store_polls(session, polls or poll_defs(), None, now)
