"""Voting as a panel member sees it, in every shipped language, on SMS and Telegram: yes/no,
single choice, ranking and scale ballots, a revote, garbage, STOP during a vote, a reply
after the close.

The files tests/transcripts/ballot-voting.*.txt use the transcript format of
tests/transcript_harness.py (read its docstring); each conversation is a new confirmed
member of the panel, and the ballots are those of tests/ballots/ballots.toml, plus:

    * ballot first opens           the organisers open the ballot (every member is asked)
    * ballot first closes          the organisers close it

A receipt code reads XXXX-XXXX (they are random). After a deliberate change of wording,
regenerate the expectations and read the diff:

    .venv/bin/python -m tests.test_ballot_transcripts [tests/transcripts/FILE ...]
"""

from __future__ import annotations

import asyncio
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import update

from bot.services.ballots import opening, records
from bot.settings import Settings
from flows.ballot_spec import load_ballots
from flows.i18n import shipped_languages
from store.models import OutboxMessage
from store.recruitment import DECLINED, Selection
from tests.ballot_world import BALLOTS_FILE, LANGUAGES, Voter, panel
from tests.transcript_harness import (
    TRANSCRIPTS,
    Conversation,
    TranscriptError,
    member_player,
    one_channel_only,
    record,
    replays,
)

PREFIX = "ballot-voting"
FILES = sorted(TRANSCRIPTS.glob(f"{PREFIX}.*.txt"))
ACTION = re.compile(r"^ballot (\S+) (opens|closes)$")
CODE = re.compile(r"\b[2-9A-Z]{4}-[2-9A-Z]{4}\b")


@dataclass
class Member(Conversation):
    """One panel member's conversation; ballot ids are made this conversation's own."""

    number: int = 0

    def reading(self, row: OutboxMessage) -> str:
        return CODE.sub("XXXX-XXXX", row.text)

    async def join(self) -> None:
        """A confirmed member; the previous conversation's member leaves the panel."""
        async with self.sessions.begin() as session:
            await session.execute(update(Selection).values(status=DECLINED))
        who = Voter(f"PT{self.number:06d}", self.channel, self.address, self.language or "en")
        await panel(self.sessions, [who])
        ballots = load_ballots(str(BALLOTS_FILE), LANGUAGES)
        own = [b.model_copy(update={"id": f"{b.id}-{self.number}"}) for b in ballots]
        async with self.sessions.begin() as session:
            await records.create(session, own, source="file")

    async def act(self, what: str) -> list[str]:
        match = ACTION.match(what)
        if not match:
            raise TranscriptError(f"unknown action {what!r}")
        ballot_id = f"{match[1]}-{self.number}"
        if match[2] == "opens":
            await opening.open_ballot(self.relay, ballot_id)
        else:
            await records.close_ballot(self.relay, ballot_id)
        return await self.shown()


play = member_player(Member, telegram_base=900_000)


def test_every_shipped_language_has_its_ballot_transcript():
    names = {path.name for path in FILES}
    for language in shipped_languages():
        assert f"{PREFIX}.{language}.txt" in names, f"no ballot transcript in {language}"
    assert one_channel_only(FILES) == []
    for path in FILES:
        script = path.read_text()
        for method in ("yes/no", "single", "ranking", "scale"):
            assert f": {method}" in script, f"{path.name}: no {method} conversation"


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
async def test_ballot_transcript(path, sqlite_db):
    settings = Settings(CONCORDER_DATABASE_URL=sqlite_db.url, _env_file=None)
    await replays(path, play, sqlite_db.sessions, settings)


async def test_a_ballot_transcript_reads_the_same_on_postgresql(db, settings):
    await replays(TRANSCRIPTS / f"{PREFIX}.es.txt", play, db.sessions, settings)


if __name__ == "__main__":
    asyncio.run(record([Path(arg).resolve() for arg in sys.argv[1:]] or FILES, play))
