"""Whole conversations as a person sees them, in every shipped language, on SMS and Telegram.

Each file in tests/transcripts/ is played through the service (bot.services.turns.receive and the
outbox, delivered on the simulated channels) on a real database, and what comes back must
read exactly as written. The format:

    # a comment
    language: fr              the language of the person's phone (before the first ===)
    === sms: a title          a new conversation from a new address, on sms or telegram
    > text                    what the person sends
    > [button:key]            a press on the button `key` of the latest Telegram keyboard
    > [earlier button:key]    a press on the keyboard before that one (a stale button)
    > [N characters of "x"]   a long message: "x" repeated up to N characters
    < text                    a message that comes back (one SMS or Telegram message)
    | more text               its next lines ("|" alone is an empty line)
      [Label] [Label]         its Telegram buttons
    (silence)                 nothing comes back

After a deliberate change of wording, regenerate the expectations and read the diff:

    .venv/bin/python -m tests.test_transcripts [tests/transcripts/FILE ...]
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.bootstrap import build
from bot.channels.simulator import SimulatorTransport
from bot.channels.transport import Outgoing
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.ratelimit import DeliveryLimits
from bot.relay import Relay
from bot.services import turns as service
from bot.settings import Settings
from flows.i18n import shipped_languages
from store.models import OutboxMessage, utcnow

TRANSCRIPTS = Path(__file__).resolve().parent / "transcripts"
# Recruitment transcripts need an assembly and an invitation first: they have their own
# runner, tests/test_recruitment_transcripts.py; a table's, tests/test_deliberation_transcripts.py;
# ballots', tests/test_ballot_transcripts.py; the opinion map's statements',
# tests/test_statements_transcripts.py.
OWN_RUNNERS = ("recruitment-", "deliberation.", "ballot-", "statements.")
FILES = sorted(p for p in TRANSCRIPTS.glob("*.txt") if not p.name.startswith(OWN_RUNNERS))
EXPECTATION = ("<", "|", "  [", "(silence)")
LONG = re.compile(r'^\[(\d+) characters of "(.+)"\]$')
BUTTON = re.compile(r"^\[(earlier )?button:([^\]]+)\]$")


class TranscriptError(Exception):
    """The transcript itself is wrong (not the service): a bad line or an unknown button."""


@dataclass
class Conversation:
    relay: Relay
    channel: str
    address: str
    language: str | None
    seen: int = 0  # the seq of the last message shown
    # The real outbox dispatcher, or None for the quick path (a direct simulator send).
    dispatcher: Dispatcher | None = None
    keyboards: list[list[dict[str, str]]] = field(default_factory=list)

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self.relay.sessions

    @property
    def settings(self) -> Settings:
        return self.relay.settings

    def inbound(self, line: str) -> tuple[str, str | None]:
        """The text and button data a `>` line stands for."""
        if match := LONG.match(line):
            size, piece = int(match[1]), match[2]
            return (piece * (size // len(piece) + 1))[:size], None
        if match := BUTTON.match(line):
            if self.channel != "telegram":
                raise TranscriptError(f"{line}: buttons exist on Telegram only")
            back = 2 if match[1] else 1
            if len(self.keyboards) < back:
                raise TranscriptError(f"{line}: no such keyboard yet")
            keyboard = self.keyboards[-back]
            for button in keyboard:
                if button["data"].partition(":")[2] == match[2]:
                    return "", button["data"]
            keys = [b["data"].partition(":")[2] for b in keyboard]
            raise TranscriptError(f"{line}: that keyboard has the keys {keys}")
        return line, None

    async def send(self, line: str) -> list[str]:
        text, button = self.inbound(line)
        await service.receive(
            self.relay,
            channel=self.channel,
            address=self.address,
            text=text,
            button=button,
            provider_id=f"transcript-{uuid.uuid4().hex}",
            language_hint=self.language,
        )
        shown = []
        for row in await self.deliver():
            shown += message_lines(row.text, row.buttons)
            if row.buttons:
                self.keyboards.append(row.buttons)
        return shown

    async def deliver(self) -> list[OutboxMessage]:
        """What reaches the person: the queued rows, handed to the simulator in order."""
        if self.dispatcher is not None:
            await self.dispatcher.drain()
        async with self.sessions.begin() as session:
            rows = (
                (
                    await session.execute(
                        select(OutboxMessage)
                        .where(
                            OutboxMessage.channel == self.channel,
                            OutboxMessage.address == self.address,
                            OutboxMessage.seq > self.seen,
                        )
                        .order_by(OutboxMessage.seq)
                    )
                )
                .scalars()
                .all()
            )
            for row in rows:
                self.seen = row.seq
                if row.status == "queued":  # quick path: the dispatcher's simulator send
                    sent = await SimulatorTransport(row.channel).send(
                        Outgoing(
                            id=row.id,
                            channel=row.channel,
                            address=row.address,
                            text=row.text,
                            buttons=row.buttons,
                        )
                    )
                    row.status, row.provider_id = "delivered", sent.provider_id
                    row.sent_at = row.delivered_at = utcnow()
        # Anything else (cancelled because the person opted out first) was never seen.
        return [row for row in rows if row.status in ("sent", "delivered")]


def message_lines(text: str, buttons: list[dict[str, str]] | None) -> list[str]:
    first, *rest = text.split("\n")
    lines = [f"< {first}".rstrip()]
    lines += [f"| {line}".rstrip() for line in rest]
    if buttons:
        lines.append("  " + " ".join(f"[{b['label']}]" for b in buttons))
    return lines


def language_line(line: str, number: int) -> str:
    """The language a 'language: xx' line sets, if it is shipped."""
    language = line.partition(":")[2].strip()
    if language not in shipped_languages():
        raise TranscriptError(f"line {number}: {language!r} is not a shipped language")
    return language


def conversation_address(
    line: str, number: int, started: int, telegram_base: int
) -> tuple[str, str]:
    """The channel of a '=== channel: title' line and a fresh address on it."""
    channel = line[4:].partition(":")[0].strip()
    if channel == "sms":
        return channel, f"+44770090{started:04d}"
    if channel == "telegram":
        return channel, str(telegram_base + started)
    raise TranscriptError(f"line {number}: channel must be sms or telegram")


async def play(
    script: str,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    dispatcher: Dispatcher | None = None,
    started: int = 0,
) -> str:
    """The transcript with what the service actually answers in place of the expectations.
    Conversations use addresses numbered from `started` + 1."""
    relay = build(settings, sessions=sessions)
    out: list[str] = []
    language: str | None = None
    conversation: Conversation | None = None
    for number, line in enumerate(script.splitlines(), start=1):
        if line.startswith(EXPECTATION):
            continue
        out.append(line)
        if line.startswith("language:"):
            language = language_line(line, number)
        elif line.startswith("=== "):
            started += 1
            channel, address = conversation_address(line, number, started, 700_000)
            conversation = Conversation(relay, channel, address, language, dispatcher=dispatcher)
        elif line.startswith("> "):
            if conversation is None:
                raise TranscriptError(f"line {number}: a message before the first ===")
            out += await conversation.send(line[2:]) or ["(silence)"]
        elif line.strip() and not line.startswith("#"):
            raise TranscriptError(f"line {number}: not transcript syntax: {line!r}")
    return "\n".join(out) + "\n"


def test_every_shipped_language_has_its_transcripts():
    names = {path.name for path in FILES}
    groups = {name.split(".")[0] for name in names}
    assert groups >= {"welcome", "keywords", "robustness"}
    for group in groups:
        for language in shipped_languages():
            assert f"{group}.{language}.txt" in names, f"{group} lacks {language}"
    for path in FILES:
        script = path.read_text()
        assert "=== sms:" in script and "=== telegram:" in script, f"{path.name}: both channels"


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
async def test_transcript(path, sqlite_db):
    settings = Settings(CONCORDER_DATABASE_URL=sqlite_db.url, _env_file=None)
    expected = path.read_text()
    assert await play(expected, sqlite_db.sessions, settings) == expected


async def test_transcripts_read_the_same_through_the_dispatcher(db, settings):
    """The quick path above gives what the real dispatcher delivers, on both databases."""
    transports = {channel: SimulatorTransport(channel) for channel in ("sms", "telegram")}
    dispatcher = Dispatcher(db.sessions, transports, settings, limits=DeliveryLimits.off())
    expected = (TRANSCRIPTS / "keywords.fr.txt").read_text()  # both channels, opt-outs
    assert await play(expected, db.sessions, settings, dispatcher) == expected


async def record(paths: list[Path], player=None) -> None:
    """Play each transcript on a fresh database and write back what the service said."""
    from store.db import make_engine, sessionmaker, upgrade_async

    player = player or play

    with tempfile.TemporaryDirectory() as scratch:
        for path in paths:
            url = f"sqlite+aiosqlite:///{scratch}/{path.stem}.db"
            await upgrade_async(url)
            engine = make_engine(url)
            try:
                settings = Settings(CONCORDER_DATABASE_URL=url, _env_file=None)
                path.write_text(await player(path.read_text(), sessionmaker(engine), settings))
                print(f"recorded {path}")
            finally:
                await engine.dispose()


if __name__ == "__main__":
    asyncio.run(record([Path(arg).resolve() for arg in sys.argv[1:]] or FILES))
