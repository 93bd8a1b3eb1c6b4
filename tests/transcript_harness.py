"""What every transcript runner shares: a person's conversation on the simulated channels, the
lines that make up a transcript, the loop that plays one, and re-recording the expectations.

The format (tests/transcripts/*.txt):

    # a comment
    language: fr              the language of the person's phone (before the first ===)
    === sms: a title          a new conversation from a new address, on sms or telegram
    > text                    what the person sends
    > [button:key]            a press on the button `key` of the latest Telegram keyboard
    > [earlier button:key]    a press on the keyboard before that one (a stale button)
    > [N characters of "x"]   a long message: "x" repeated up to N characters
    > [voice note]            an attachment with no words (also [photo], [video], [document],
    > [photo] words           [sticker], [location]); words after it are its caption or MMS body
    * something happens       an organiser's or the clock's doing (runners say which)
    < text                    a message that comes back (one SMS or Telegram message)
    | more text               its next lines ("|" alone is an empty line)
      [Label] [Label]         its Telegram buttons
    (silence)                 nothing comes back
"""

from __future__ import annotations

import re
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.bootstrap import build
from bot.channels.simulator import SimulatorTransport
from bot.channels.transport import Outgoing
from bot.delivery.dispatcher import Dispatcher
from bot.relay import Relay
from bot.services import turns as service
from bot.settings import Settings
from flows.i18n import shipped_languages
from store.models import OutboxMessage, utcnow

TRANSCRIPTS = Path(__file__).resolve().parent / "transcripts"
EXPECTATION = ("<", "|", "  [", "(silence)")
LONG = re.compile(r'^\[(\d+) characters of "(.+)"\]$')
BUTTON = re.compile(r"^\[(earlier )?button:([^\]]+)\]$")
# What a `> [kind]` line sends, as the channel adapters name the kinds of attachment.
ATTACHMENTS = {
    "voice note": "voice",
    "photo": "photo",
    "video": "video",
    "document": "document",
    "sticker": "sticker",
    "location": "location",
}
ATTACHMENT = re.compile(r"^\[(" + "|".join(ATTACHMENTS) + r")\](?: (.*))?$")


def attachment(line: str) -> tuple[str, str | None]:
    """A `>` line without its attachment, and the kind of that attachment if it has one."""
    if match := ATTACHMENT.match(line):
        return match[2] or "", ATTACHMENTS[match[1]]
    return line, None


Sessions = async_sessionmaker[AsyncSession]
# A runner's player: the transcript's text -> the same with what the service says now.
Player = Callable[[str, Sessions, Settings], Awaitable[str]]


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
    now: datetime | None = None  # the conversation's own clock; None: the real one

    @property
    def sessions(self) -> Sessions:
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
            now=self.now,
            media=media,
        )
        return await self.shown()

    async def act(self, what: str) -> list[str]:
        """A `*` line; runners whose transcripts have them say what they mean."""
        raise TranscriptError(f"unknown action {what!r}")

    def reading(self, row: OutboxMessage) -> str:
        """The text as the transcript writes it (runners mask what is random)."""
        return row.text

    async def shown(self) -> list[str]:
        lines: list[str] = []
        for row in await self.deliver():
            lines += message_lines(self.reading(row), row.buttons)
            if row.buttons:
                self.keyboards.append(row.buttons)
        return lines

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


# A new conversation: (channel, address, language, its number from 1) -> the conversation.
Starter = Callable[[str, str, str | None, int], Awaitable[Conversation]]


async def play_conversations(
    script: str, start: Starter, telegram_base: int, started: int = 0
) -> str:
    """The transcript with what the service answers now in place of the expectations."""
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
            channel, address = conversation_address(line, number, started, telegram_base)
            conversation = await start(channel, address, language, started)
        elif line.startswith(("> ", "* ")):
            if conversation is None:
                raise TranscriptError(f"line {number}: a turn before the first ===")
            try:
                if line.startswith("> "):
                    shown = await conversation.send(line[2:])
                else:
                    shown = await conversation.act(line[2:])
            except TranscriptError as exc:
                raise TranscriptError(f"line {number}: {exc}") from None
            out += shown or ["(silence)"]
        elif line.strip() and not line.startswith("#"):
            raise TranscriptError(f"line {number}: not transcript syntax: {line!r}")
    return "\n".join(out) + "\n"


def member_player(member: Callable[..., Conversation], telegram_base: int) -> Player:
    """A transcript player whose every conversation is a new `member(relay, channel,
    address, language, number=N)` that first `join()`s (the panel runners' shape)."""

    async def play(script: str, sessions: Sessions, settings: Settings) -> str:
        relay = build(settings, sessions=sessions)

        async def start(channel: str, address: str, language: str | None, number: int):
            conversation = member(relay, channel, address, language, number=number)
            await conversation.join()
            return conversation

        return await play_conversations(script, start, telegram_base)

    return play


def missing_languages(files: Iterable[Path]) -> list[str]:
    """'group lacks xx' for every transcript group without a file in a shipped language."""
    names = {path.name for path in files}
    groups = {name.split(".")[0] for name in names}
    return [
        f"{group} lacks {language}"
        for group in sorted(groups)
        for language in shipped_languages()
        if f"{group}.{language}.txt" not in names
    ]


def one_channel_only(files: Iterable[Path]) -> list[str]:
    """Files that do not hold a conversation on both SMS and Telegram."""
    return [
        path.name
        for path in files
        if not ("=== sms:" in (text := path.read_text()) and "=== telegram:" in text)
    ]


async def replays(path: Path, player: Player, sessions: Sessions, settings: Settings) -> None:
    """The file reads exactly as the service plays it now."""
    expected = path.read_text(encoding="utf-8")
    assert await player(expected, sessions, settings) == expected


async def record(paths: list[Path], player: Player) -> None:
    """Play each transcript on a fresh SQLite database and write back what the service said."""
    from store.db import make_engine, sessionmaker, upgrade_async

    with tempfile.TemporaryDirectory() as scratch:
        for path in paths:
            url = f"sqlite+aiosqlite:///{scratch}/{path.stem}.db"
            await upgrade_async(url)
            engine = make_engine(url)
            try:
                settings = Settings(CONCORDER_DATABASE_URL=url, _env_file=None)
                text = path.read_text(encoding="utf-8")
                path.write_text(await player(text, sessionmaker(engine), settings))
                print(f"recorded {path}")
            finally:
                await engine.dispose()
