"""The opinion map's statements as a panel member sees them, in every shipped language, on
SMS (letters and words) and Telegram (buttons): garbage, going round again with OPINIONS
(the last answer counts), a proposal of one's own approved and sent, STOP in between.

The files tests/transcripts/statements.*.txt use the transcript format of
tests/test_transcripts.py (read its docstring); each conversation is a new confirmed
member of the panel, with these organisers' actions:

    * statements sent        two statements (in en, fr, es) added and sent to the panel
    * proposal approved      the latest proposal approved and sent

After a deliberate change of wording, regenerate the expectations and read the diff:

    .venv/bin/python -m tests.test_statements_transcripts [tests/transcripts/FILE ...]
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.services.synthesis import records
from bot.settings import Settings
from flows.i18n import shipped_languages
from store.recruitment import DECLINED, Selection
from store.statements import PROPOSED, REJECTED, Statement
from tests.ballot_world import Voter, panel
from tests.test_ballot_transcripts import Member as BallotMember
from tests.transcript_harness import (
    TRANSCRIPTS,
    TranscriptError,
    member_player,
    record,
)

PREFIX = "statements"
FILES = sorted(TRANSCRIPTS.glob(f"{PREFIX}.*.txt"))
STATEMENTS = [
    {
        "en": "Buses should be free for everyone under 18.",
        "fr": "Les bus devraient être gratuits pour les moins de 18 ans.",
        "es": "Los autobuses deberían ser gratis para los menores de 18 años.",
    },
    {
        "en": "The town centre should be closed to cars on Saturdays.",
        "fr": "Le centre-ville devrait être fermé aux voitures le samedi.",
        "es": "El centro debería cerrarse a los coches los sábados.",
    },
]


@dataclass
class Member(BallotMember):
    """One panel member; the statements of earlier conversations are withdrawn."""

    async def join(self) -> None:
        async with self.sessions.begin() as session:
            await session.execute(update(Selection).values(status=DECLINED))
            await session.execute(update(Statement).values(status=REJECTED))
        who = Voter(f"PS{self.number:06d}", self.channel, self.address, self.language or "en")
        await panel(self.sessions, [who])

    async def act(self, what: str) -> list[str]:
        if what == "statements sent":
            async with self.sessions.begin() as session:
                for texts in STATEMENTS:
                    await records.add(session, texts)
        elif what == "proposal approved":
            async with self.sessions.begin() as session:
                latest = (
                    await session.execute(
                        select(Statement.id)
                        .where(Statement.status == PROPOSED)
                        .order_by(Statement.id.desc())
                    )
                ).scalar()
                if latest is None:
                    raise TranscriptError("no proposal to approve")
                await records.decide(session, latest, approve=True)
        else:
            raise TranscriptError(f"unknown action {what!r}")
        await records.send(self.relay)
        return await self.shown()


play = member_player(Member, telegram_base=910_000)


def test_every_shipped_language_has_its_statements_transcript():
    names = {path.name for path in FILES}
    for language in shipped_languages():
        assert f"{PREFIX}.{language}.txt" in names, f"no statements transcript in {language}"
    for path in FILES:
        script = path.read_text()
        assert "=== sms:" in script and "=== telegram:" in script, f"{path.name}: both channels"
        assert "* proposal approved" in script, f"{path.name}: no proposal"


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
async def test_statements_transcript(path, sqlite_db):
    settings = Settings(CONCORDER_DATABASE_URL=sqlite_db.url, _env_file=None)
    expected = path.read_text()
    assert await play(expected, sqlite_db.sessions, settings) == expected


async def test_a_statements_transcript_reads_the_same_on_postgresql(db, settings):
    expected = (TRANSCRIPTS / f"{PREFIX}.fr.txt").read_text()
    assert await play(expected, db.sessions, settings) == expected


if __name__ == "__main__":
    asyncio.run(record([Path(arg).resolve() for arg in sys.argv[1:]] or FILES, play))
