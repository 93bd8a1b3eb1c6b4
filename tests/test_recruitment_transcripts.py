"""Recruitment conversations as an invited person sees them, in every shipped language, on
SMS and Telegram: invitation, consent, registration, WITHDRAW and STOP, the draw's outcome.

The files tests/transcripts/recruitment-*.txt use the transcript format of
tests/test_transcripts.py (read its docstring), played on the example assembly
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
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.bootstrap import build, read_assembly_file
from bot.services import invite_codes, recruitment
from bot.services import turns as service
from bot.settings import Settings
from flows.i18n import shipped_languages
from store.models import Participant, new_participant_id
from store.recruitment import RESERVE, SELECTED, Invitation, Selection, hash_code
from tests.test_transcripts import (
    EXPECTATION,
    TRANSCRIPTS,
    Conversation,
    TranscriptError,
    conversation_address,
    language_line,
    record,
)
from tests.test_transcripts import message_lines as transcript_lines

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

    async def send(self, line: str) -> list[str]:
        text, button = self.inbound(line.replace("CODE", self.code or "CODE"))
        await service.receive(
            self.relay,
            channel=self.channel,
            address=self.address,
            text=text,
            button=button,
            provider_id=f"transcript-{uuid.uuid4().hex}",
            language_hint=self.language,
            now=self.now,
        )
        return await self.shown()

    async def shown(self) -> list[str]:
        lines: list[str] = []
        for row in await self.deliver():
            # What the person reads: the invitation's code filled in, as the dispatcher does.
            text = invite_codes.reveal(row.text, row.kind, self.relay.invite_key)
            lines += transcript_lines(text, row.buttons)
            if row.buttons:
                self.keyboards.append(row.buttons)
        return [line.replace(self.code, "CODE") if self.code else line for line in lines]

    async def act(self, what: str, assembly, scratch: Path) -> list[str]:
        """An organiser's or the clock's doing (a `*` line)."""
        if match := INVITED.match(what):
            await self.invite(assembly, scratch, match[1])
        elif match := LATER.match(what):
            self.now += timedelta(**{match[2] + "s": int(match[1])})
            await recruitment.recruitment_tick(self.relay, self.now)
        elif what in DRAW:
            await self.drawn(DRAW[what], assembly)
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
    out: list[str] = []
    language: str | None = None
    person: Invitee | None = None
    started = 0
    with tempfile.TemporaryDirectory() as scratch:
        for number, line in enumerate(script.splitlines(), start=1):
            if line.startswith(EXPECTATION):
                continue
            out.append(line)
            if line.startswith("language:"):
                language = language_line(line, number)
            elif line.startswith("=== "):
                started += 1
                channel, address = conversation_address(line, number, started, 800_000)
                person = Invitee(relay, channel, address, language, number=started)
            elif line.startswith(("> ", "* ")):
                if person is None:
                    raise TranscriptError(f"line {number}: a turn before the first ===")
                try:
                    if line.startswith("> "):
                        shown = await person.send(line[2:])
                    else:
                        shown = await person.act(line[2:], assembly, Path(scratch))
                except TranscriptError as exc:
                    raise TranscriptError(f"line {number}: {exc}") from None
                out += shown or ["(silence)"]
            elif line.strip() and not line.startswith("#"):
                raise TranscriptError(f"line {number}: not transcript syntax: {line!r}")
    return "\n".join(out) + "\n"


def test_every_recruitment_transcript_exists_in_every_language_on_both_channels():
    names = {path.name for path in FILES}
    groups = {name.split(".")[0] for name in names}
    assert groups >= {
        f"{PREFIX}{flow}" for flow in ("invitation", "consent", "registration", "withdraw", "draw")
    }
    for group in groups:
        for language in shipped_languages():
            assert f"{group}.{language}.txt" in names, f"{group} lacks {language}"
    for path in FILES:
        script = path.read_text()
        assert "=== sms:" in script and "=== telegram:" in script, f"{path.name}: both channels"
        assert f"language: {path.name.split('.')[1]}" in script, f"{path.name}: its language"


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
async def test_recruitment_transcript(path, sqlite_db):
    settings = Settings(CONCORDER_DATABASE_URL=sqlite_db.url, _env_file=None)
    expected = path.read_text()
    assert await play(expected, sqlite_db.sessions, settings) == expected


async def test_a_recruitment_transcript_reads_the_same_on_postgresql(db, settings):
    """SQLite above; the same conversations on PostgreSQL (and SQLite again)."""
    expected = (TRANSCRIPTS / f"{PREFIX}draw.fr.txt").read_text()
    assert await play(expected, db.sessions, settings) == expected


if __name__ == "__main__":
    asyncio.run(record([Path(arg).resolve() for arg in sys.argv[1:]] or FILES, play))
