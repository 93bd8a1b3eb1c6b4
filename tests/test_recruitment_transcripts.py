"""Recruitment conversations as an invited person sees them, in every shipped language, on
SMS and Telegram: invitation, consent, registration, WITHDRAW and STOP, the draw's outcome.

The files tests/transcripts/recruitment-*.txt use the transcript format of
tests/transcript_harness.py (read its docstring), played on the example assembly
(examples/citizens-jury/assembly.toml), plus lines for what the organiser and the clock do:

    * invited                      this person joins the pool, in the file's language, and
                                   is invited: by SMS on sms, by a letter on telegram
    * invited, knowing age=30-49   the pool file already gives that answer
    > /start CODE                  opening the letter's link in Telegram
    * 3 days later                 the clock moves on and the service's timers run
                                   (reminders, lapsed invitations, expired places)
    * the draw: selected           the draw puts this person on the panel (or: reserve,
                                   not selected) and the organiser tells everyone

What comes back follows, as for a message; "(silence)" when nothing does. CODE stands for
this person's one-time invitation code wherever it appears. Every conversation starts on
1 December 2026 at 09:00 UTC.

After a deliberate change of wording, regenerate the expectations and read the diff:

    .venv/bin/python -m tests.test_recruitment_transcripts [tests/transcripts/FILE ...]
"""

from __future__ import annotations

import asyncio
import csv
import re
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.bootstrap import build, read_assembly_file
from bot.services import invite_codes, recruitment
from bot.settings import Settings
from store.models import OutboxMessage, Participant, new_participant_id
from store.recruitment import RESERVE, SELECTED, Invitation, Selection, hash_code
from tests.transcript_harness import (
    TRANSCRIPTS,
    Conversation,
    TranscriptError,
    missing_languages,
    one_channel_only,
    play_conversations,
    record,
    replays,
)

PREFIX = "recruitment-"
FILES = sorted(TRANSCRIPTS.glob(f"{PREFIX}*.txt"))
ASSEMBLY = Path(__file__).resolve().parent.parent / "examples" / "citizens-jury" / "assembly.toml"
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
BOT = "RiversideJuryBot"
INVITED = re.compile(r"^invited(?:, knowing (.+))?$")
LATER = re.compile(r"^(\d+) (day|hour|minute)s? later$")
DRAW = {
    "the draw: selected": SELECTED,
    "the draw: reserve": RESERVE,
    "the draw: not selected": None,
}


@dataclass
class Invitee(Conversation):
    """One invited person's conversation, on the transcript's own clock."""

    number: int = 0
    now: datetime = START
    code: str | None = None
    participant_id: str | None = None
    assembly: object = None
    scratch: Path = field(default_factory=Path)

    async def send(self, line: str) -> list[str]:
        return await super().send(line.replace("CODE", self.code or "CODE"))

    def reading(self, row: OutboxMessage) -> str:
        # What the person reads: the invitation's code filled in, as the dispatcher does.
        text = invite_codes.reveal(row.text, row.kind, self.relay.invite_key)
        return text.replace(self.code, "CODE") if self.code else text

    async def act(self, what: str) -> list[str]:
        """An organiser's or the clock's doing (a `*` line)."""
        if match := INVITED.match(what):
            await self.invite(self.assembly, self.scratch, match[1])
        elif match := LATER.match(what):
            self.now += timedelta(**{match[2] + "s": int(match[1])})
            await recruitment.recruitment_tick(self.relay, self.now)
        elif what in DRAW:
            await self.drawn(DRAW[what], self.assembly)
        else:
            raise TranscriptError(f"unknown action {what!r}")
        return await self.shown()

    async def invite(self, assembly, scratch: Path, known: str | None) -> None:
        if self.code is not None:
            raise TranscriptError("this person is already invited")
        attributes = dict(pair.strip().split("=", 1) for pair in known.split(",")) if known else {}
        handle = f"juror_{self.number:04d}"
        pool = scratch / f"pool-{self.number}.csv"
        with pool.open("w", newline="") as fp:
            writer = csv.writer(fp)
            writer.writerow(["phone", "telegram", "language", "household", *attributes])
            writer.writerow(
                [
                    self.address if self.channel == "sms" else "",
                    handle if self.channel == "telegram" else "",
                    self.language or "",
                    f"H{self.number}",
                    *attributes.values(),
                ]
            )
        parsed = recruitment.parse_pool(pool, assembly)
        if parsed.bad:
            raise TranscriptError(f"bad pool row: {parsed.bad[0].reason}")
        await recruitment.import_pool(self.sessions, assembly, parsed.rows, now=self.now)
        nonce = f"Transcript{self.number:016d}"
        self.code = invite_codes.code_for(nonce, self.relay.invite_key)
        with mock.patch.object(invite_codes, "new_nonce", lambda: nonce):
            await recruitment.send_invitations(
                self.sessions,
                self.settings,
                assembly,
                BOT,
                letters_path=scratch / "letters.csv",
                now=self.now,
            )
        async with self.sessions() as session:
            self.participant_id = await session.scalar(
                select(Invitation.participant_id).where(
                    Invitation.code_hash == hash_code(self.code)
                )
            )

    async def drawn(self, status: str | None, assembly) -> None:
        if self.participant_id is None:
            raise TranscriptError("nobody to draw: this person was never invited")
        async with self.sessions.begin() as session:
            if status is None:
                # Someone else took the place: a draw happened without this person.
                other = Participant(id=new_participant_id(), language="en", state={})
                session.add(other)
                await session.flush()
                session.add(
                    Selection(
                        participant_id=other.id,
                        draw_id="transcript",
                        status=SELECTED,
                        notified_at=self.now,
                    )
                )
            else:
                session.add(
                    Selection(
                        participant_id=self.participant_id,
                        draw_id="transcript",
                        status=status,
                        selected_at=self.now,
                        reserve_rank=1 if status == RESERVE else None,
                    )
                )
        await recruitment.notify_draw_outcome(self.relay, assembly, self.now)


async def play(script: str, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> str:
    """The transcript with what the service actually answers in place of the expectations."""
    assembly, calendar = read_assembly_file(str(ASSEMBLY))
    relay = build(settings, assembly=assembly, calendar=calendar, sessions=sessions)
    with tempfile.TemporaryDirectory() as scratch:

        async def start(channel: str, address: str, language: str | None, number: int):
            return Invitee(
                relay,
                channel,
                address,
                language,
                number=number,
                assembly=assembly,
                scratch=Path(scratch),
            )

        return await play_conversations(script, start, telegram_base=800_000)


def test_every_recruitment_transcript_exists_in_every_language_on_both_channels():
    assert {path.name.split(".")[0] for path in FILES} >= {
        f"{PREFIX}{flow}" for flow in ("invitation", "consent", "registration", "withdraw", "draw")
    }
    assert missing_languages(FILES) == []
    assert one_channel_only(FILES) == []
    for path in FILES:
        assert f"language: {path.name.split('.')[1]}" in path.read_text(), f"{path.name}"


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
async def test_recruitment_transcript(path, sqlite_db):
    settings = Settings(CONCORDER_DATABASE_URL=sqlite_db.url, _env_file=None)
    await replays(path, play, sqlite_db.sessions, settings)


async def test_a_recruitment_transcript_reads_the_same_on_postgresql(db, settings):
    """SQLite above; the same conversations on PostgreSQL (and SQLite again)."""
    await replays(TRANSCRIPTS / f"{PREFIX}draw.fr.txt", play, db.sessions, settings)


if __name__ == "__main__":
    asyncio.run(record([Path(arg).resolve() for arg in sys.argv[1:]] or FILES, play))
