"""A confirmed panel, the ballots of tests/ballots/ballots.toml, and voting through the
service's own inbound turn (bot.services.turns.receive): what the ballot tests share."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from bot.services import turns
from bot.services.ballots import records
from flows.ballot_spec import load_ballots
from store.models import Contact, OutboxMessage, Participant
from store.recruitment import CONFIRMED, REGISTERED, Invitation, Selection

BALLOTS_FILE = Path(__file__).resolve().parent / "ballots" / "ballots.toml"
LANGUAGES = ["en", "fr", "es"]


@dataclass(frozen=True)
class Voter:
    id: str
    channel: str
    address: str
    language: str


def voter(n: int, channel: str | None = None, language: str = "en") -> Voter:
    channel = channel or ("sms" if n % 2 else "telegram")
    address = f"+4477009{n:05d}" if channel == "sms" else str(7100000 + n)
    return Voter(f"PV{n:010d}"[:13], channel, address, language)


async def panel(sessions, voters: list[Voter], *, invited: bool = False) -> None:
    """Confirmed panel members, as the draw and their CONFIRM leave them; `invited` gives
    them the registered invitation they came through (WITHDRAW then has a stage to end)."""
    async with sessions.begin() as session:
        for v in voters:
            session.add(Participant(id=v.id, language=v.language, state={"language": v.language}))
            await session.flush()
            session.add(
                Contact(participant_id=v.id, channel=v.channel, address=v.address, sms_consent=True)
            )
            session.add(Selection(participant_id=v.id, draw_id="D1", status=CONFIRMED))
            if invited:
                session.add(
                    Invitation(
                        participant_id=v.id,
                        code_hash=uuid.uuid4().hex,
                        channel=v.channel,
                        language=v.language,
                        status=REGISTERED,
                    )
                )


async def create_ballots(sessions, now: datetime | None = None) -> None:
    async with sessions.begin() as session:
        await records.create(session, load_ballots(str(BALLOTS_FILE), LANGUAGES), source="file")


async def say(relay, v: Voter, text: str = "", button: str | None = None, now=None):
    return await turns.receive(
        relay,
        channel=v.channel,
        address=v.address,
        text=text,
        button=button,
        provider_id=f"t-{uuid.uuid4().hex}",
        now=now,
    )


async def last_message(sessions, v: Voter) -> OutboxMessage:
    async with sessions() as session:
        return (
            await session.execute(
                select(OutboxMessage)
                .where(OutboxMessage.participant_id == v.id)
                .order_by(OutboxMessage.id.desc())
                .limit(1)
            )
        ).scalar_one()


async def press(relay, v: Voter, key: str, now=None):
    """A press on the button `key` of the voter's latest keyboard (Telegram); a message
    without buttons since (the results at a close) leaves that keyboard on screen."""
    async with relay.sessions() as session:
        keyboards = (
            await session.execute(
                select(OutboxMessage.buttons)
                .where(OutboxMessage.participant_id == v.id)
                .order_by(OutboxMessage.id.desc())
            )
        ).scalars()
        buttons = next(k for k in keyboards if k)
    data = next(b["data"] for b in buttons if b["data"].endswith(f":{key}"))
    return await say(relay, v, button=data, now=now)


def tracker_of(text: str) -> str:
    """The receipt code a confirmation gives ('... code is K7QX-M2PD ...')."""
    import re

    return re.search(r"\b([2-9A-Z]{4})-([2-9A-Z]{4})\b", text).group(0).replace("-", "")


async def messages(sessions, v: Voter) -> list[str]:
    """Every message queued to the voter, in order (those still queued keep their text)."""
    async with sessions() as session:
        return list(
            (
                await session.execute(
                    select(OutboxMessage.text)
                    .where(OutboxMessage.participant_id == v.id)
                    .order_by(OutboxMessage.id)
                )
            ).scalars()
        )
